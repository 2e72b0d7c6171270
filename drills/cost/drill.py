"""The cost side of a drill run: projection + budget guard before anything is touched,
measured cost and FOCUS exports at the end.

`CostHooks` plugs into the engine's hooks and reads only the run record: what the
target is made of (`record.cost_inventory`), the drill window (the journal), the
bytes each region sent to the other (`record.out_bytes_*`), what was acknowledged.
It puts its findings in `record.sections["cost"]`, which the evidence carries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drills.cost.catalog import Catalog
from drills.cost.focus import FORMATS, write
from drills.cost.model import Inventory, Usage, price
from drills.hooks import Hooks
from drills.journal import DrillRefused
from drills.record import RunRecord

# Projection: how long each phase may take at most (seconds) where the spec sets no bound.
PHASE_ALLOWANCE_S = {"preflight": 30.0, "cutover": 60.0, "verify_teardown": 60.0}
RECORD_OVERHEAD_BYTES = 70  # per record on the wire: headers, batch framing, MM2 metadata
EVIDENCE_PUTS = 12  # objects a run directory uploads (evidence, journal, history, exports)


ALLOC_TAG = {"incremental": "incr", "allocated": "alloc"}


class BudgetExceeded(DrillRefused):
    """The projected cost is over the spec's cost.budget_usd: the drill must not start."""


def inventory_of(record: RunRecord) -> Inventory:
    """What the drill's target is made of, in AWS terms (the target said so at the start)."""
    if record.cost_inventory is None:
        raise ValueError(record.cost_inventory_error or "the target gave no cost inventory")
    return record.cost_inventory


def budget_of(spec) -> float | None:
    c = getattr(spec, "cost", None)
    return getattr(c, "budget_usd", None) if c is not None else None


def projected_window_s(spec) -> tuple[float, dict[str, float]]:
    """An upper bound on the drill's duration from its spec (timeouts, not hopes)."""
    d = spec.decision
    decide = {"delay": d.delay_s or 0.0, "approval": d.approval_timeout_s or 0.0}.get(d.mode, 0.0)
    parts = {
        "preflight": PHASE_ALLOWANCE_S["preflight"],
        "steady_state": spec.steady_state.duration_s,
        "after_s": spec.fault.after_s or 0.0,
        "detect": spec.detection.timeout_s,
        "decide": float(decide),
        "cutover": PHASE_ALLOWANCE_S["cutover"],
        "serve": spec.cutover.run_after_s,
        "verify_teardown": PHASE_ALLOWANCE_S["verify_teardown"],
    }
    return sum(parts.values()), parts


def project(spec, inv: Inventory, cat: Catalog, now: datetime | None = None):
    """The cost the drill will generate at most: every resource for the bounded window, the
    offered workload crossing regions for all of it, and the evidence upload."""
    window, parts = projected_window_s(spec)
    w = spec.workload
    rate = getattr(w, "peak_rate", w.rate)  # "at most": the shape's peak (a step, a ramp)
    offered = rate * w.producers * (w.record_bytes + RECORD_OVERHEAD_BYTES)
    start = now or datetime.now(UTC)
    usage = Usage(
        start, start + timedelta(seconds=window),
        transfer_bytes={(inv.primary, inv.standby): int(offered * window)},
        produced_bytes=int(rate * w.producers * w.record_bytes * window),
        s3_tier1={inv.standby: EVIDENCE_PUTS},
    )  # fmt: skip
    report = price(inv, usage, cat, basis="projected")
    report.assumptions = {"window_s": window, "window_parts_s": parts,
                          "offered_bytes_per_s": offered, "evidence_puts": EVIDENCE_PUTS}  # fmt: skip
    return report


def guard(record: RunRecord, cat: Catalog | None = None) -> None:
    """Before anything is touched: project the cost, refuse over budget. The projection
    goes into the record's cost section either way."""
    budget = budget_of(record.spec)
    section = record.sections.setdefault("cost", {"budget_usd": budget, "projected": None})
    report = project(record.spec, inventory_of(record), cat or Catalog.load())
    section["projected"] = report.to_dict() | {"budget_usd": budget}
    if budget is not None and report.total > budget:
        section["refused"] = True
        raise BudgetExceeded(
            f"refused: projected cost ${report.total:.4f} exceeds cost.budget_usd ${budget:.4f} "
            f"({report.assumptions['window_s']:.0f}s window at most, {len(report.lines)} cost lines; "
            f"raise the budget or shorten the drill)"
        )


def measured_usage(record: RunRecord, inv: Inventory, extra_puts: int = 0) -> Usage:
    """What the drill generated: its window, the bytes each region sent the other, the bytes
    produced (for cross-AZ replication), and the objects the evidence upload PUTs."""
    start = datetime.fromtimestamp(record.started, UTC)
    end = datetime.fromtimestamp(record.ended, UTC)
    names = list(inv.local_regions)
    transfer: dict[tuple[str, str], int] = {}
    for name, delta in record.out_bytes_by_region().items():
        others = [o for o in names if o != name]
        if delta and others and name in inv.local_regions:
            key = (inv.local_regions[name], inv.local_regions[others[0]])
            transfer[key] = transfer.get(key, 0) + delta
    run_dir = Path(record.run_dir)
    files = sum(1 for f in run_dir.rglob("*") if f.is_file()) if run_dir.exists() else 0
    return Usage(start, end, transfer_bytes=transfer,
                 produced_bytes=record.acknowledged * record.spec.workload.record_bytes,
                 s3_tier1={inv.standby: files + extra_puts})  # fmt: skip


def evidence(record: RunRecord) -> dict[str, Any]:
    """The evidence's `cost` section; writes the FOCUS exports into the run directory.
    Never raises: a cost failure is recorded, the rest of the evidence still lands."""
    out: dict[str, Any] = {"budget_usd": budget_of(record.spec), "projected": None}
    out.update(record.sections.get("cost") or {})
    try:
        cat = Catalog.load()
        inv = inventory_of(record)
        # the exports and evidence.json are uploaded too: count their PUTs
        pending = len(FORMATS) + (0 if (record.run_dir / "evidence.json").exists() else 1)
        report = price(inv, measured_usage(record, inv, pending), cat)
        meta = {"drill_id": record.run_id, "drill": record.drill, "run_dir": record.run_dir.name}
        out["final"] = report.to_dict()
        out["exports"] = [
            write(report, meta, record.run_dir, fmt, cat.region_name, cat.gb_bytes).name
            for fmt in FORMATS
        ]
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    return out


class CostHooks(Hooks):
    """The budget guard when the drill starts, the priced drill and its exports at the end."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog

    def started(self, record: RunRecord) -> None:
        guard(record, self.catalog)  # a drill whose cost cannot be projected does not start

    def finishing(self, record: RunRecord) -> None:
        record.sections["cost"] = evidence(record)


def summary_lines(ev: dict[str, Any]) -> list[str]:
    c = ev.get("cost") or {}
    lines = []
    proj = c.get("projected") or {}
    if c.get("refused"):
        lines.append(
            f"cost: REFUSED: projected ${proj.get('total_usd', 0):.4f} > budget ${c['budget_usd']:.4f}"
        )
    final = c.get("final")
    if final:
        mode = " (local stack priced as its AWS regions)" if final["mode"] == "local" else ""
        lines.append(f"cost: ${final['total_usd']:.6f} {final['currency']} at list prices{mode}")
        for x in final["lines"]:
            lines.append(
                f"  {x['usage_type']:<26} {x['quantity']:>10.6f} {x['unit']:<8} "
                f"x ${x['unit_price']:<8g} = ${x['cost']:.6f} {ALLOC_TAG.get(x.get('allocation'), '')}"
            )
        split = final.get("split_usd")
        if split:
            lines.append(f"  incremental (caused by the drill):     ${split['incremental']:.6f}")
            lines.append(f"  allocated (share of standing resources): ${split['allocated']:.6f}")
        if proj:
            budget = c.get("budget_usd")
            tail = f", budget ${budget:.2f}" if budget is not None else ""
            lines.append(f"  projected before inject ${proj['total_usd']:.6f}{tail}")
        if c.get("exports"):
            lines.append(f"  FOCUS 1.2 export: {', '.join(c['exports'])}")
    if c.get("error"):
        lines.append(f"cost: not computed: {c['error']}")
    return lines

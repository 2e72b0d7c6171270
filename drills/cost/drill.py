"""The cost side of a drill run: projection + budget guard before inject, measured cost and
FOCUS exports at the end. The engine and the evidence writer call the three functions
here (`guard`, `evidence`, `summary_lines`) and know nothing else about cost.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drills.cost.catalog import Catalog
from drills.cost.focus import FORMATS, write
from drills.cost.model import Inventory, Usage, inventory_local, price

if TYPE_CHECKING:
    from drills.engine import Drill

# Projection: how long each phase may take at most (seconds) where the spec sets no bound.
PHASE_ALLOWANCE_S = {"preflight": 30.0, "cutover": 60.0, "verify_teardown": 60.0}
RECORD_OVERHEAD_BYTES = 70  # per record on the wire: headers, batch framing, MM2 metadata
EVIDENCE_PUTS = 12  # objects a run directory uploads (evidence, journal, history, exports)


class BudgetExceeded(Exception):
    """The projected cost is over the spec's cost.budget_usd: the drill must not start."""


@dataclass
class Meter:
    """Counters at the start of the drill, per AWS source region."""

    started: float = field(default_factory=time.time)
    out_bytes: dict[str, int] = field(default_factory=dict)  # local region -> out_bytes
    projection: dict[str, Any] | None = None


def inventory_for(target) -> Inventory:
    """What the drill's target is made of, in AWS terms."""
    inv = getattr(target, "cost_inventory", None)
    if callable(inv):
        return inv()
    pair = getattr(target, "pair", None)
    if pair is not None:
        return inventory_local(pair.cfg)
    raise ValueError(f"cannot tell what {type(target).__name__} is made of: no cost inventory")


def _region_out_bytes(target) -> dict[str, int]:
    """Bytes each local region has sent over its backbone link (nftables counters)."""
    pair = getattr(target, "pair", None)
    if pair is None:
        return {}
    from components.local import network
    from components.local.errors import LocalEnvError

    out = {}
    for r in pair.regions:
        with contextlib.suppress(LocalEnvError):
            out[r.name] = network.read_counters(r.namespace).get("out_bytes", 0)
    return out


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
    offered = w.rate * w.producers * (w.record_bytes + RECORD_OVERHEAD_BYTES)
    start = now or datetime.now(UTC)
    usage = Usage(
        start, start + timedelta(seconds=window),
        transfer_bytes={(inv.primary, inv.standby): int(offered * window)},
        produced_bytes=int(w.rate * w.producers * w.record_bytes * window),
        s3_tier1={inv.standby: EVIDENCE_PUTS},
    )  # fmt: skip
    report = price(inv, usage, cat, basis="projected")
    report.assumptions = {"window_s": window, "window_parts_s": parts,
                          "offered_bytes_per_s": offered, "evidence_puts": EVIDENCE_PUTS}  # fmt: skip
    return report


def guard(drill: Drill, cat: Catalog | None = None) -> None:
    """Before anything is touched: start the meter, project the cost, refuse over budget."""
    meter = Meter(out_bytes=_region_out_bytes(drill.target))
    drill.cost_meter = meter
    cat = cat or Catalog.load()
    report = project(drill.spec, inventory_for(drill.target), cat)
    budget = budget_of(drill.spec)
    meter.projection = report.to_dict() | {"budget_usd": budget}
    if budget is not None and report.total > budget:
        raise BudgetExceeded(
            f"refused: projected cost ${report.total:.4f} exceeds cost.budget_usd ${budget:.4f} "
            f"({report.assumptions['window_s']:.0f}s window at most, {len(report.lines)} cost lines; "
            f"raise the budget or shorten the drill)"
        )


def measured_usage(drill: Drill, inv: Inventory, extra_puts: int = 0) -> Usage:
    meter: Meter = getattr(drill, "cost_meter", None) or Meter(started=drill.journal.started)
    start = datetime.fromtimestamp(drill.journal.started, UTC)
    end = datetime.fromtimestamp(drill.journal.ended or time.time(), UTC)
    now = _region_out_bytes(drill.target)
    names = list(inv.local_regions)
    transfer: dict[tuple[str, str], int] = {}
    for name, n in now.items():
        delta = max(0, n - meter.out_bytes.get(name, 0))
        others = [o for o in names if o != name]
        if delta and others:
            key = (inv.local_regions[name], inv.local_regions[others[0]])
            transfer[key] = transfer.get(key, 0) + delta
    acked = drill.rec.acks_between(0, float("inf"))
    files = sum(1 for f in Path(drill.dir).rglob("*") if f.is_file()) if drill.dir.exists() else 0
    return Usage(start, end, transfer_bytes=transfer,
                 produced_bytes=acked * drill.spec.workload.record_bytes,
                 s3_tier1={inv.standby: files + extra_puts})  # fmt: skip


def evidence(drill: Drill, status: str) -> dict[str, Any]:
    """The evidence's `cost` section; writes the FOCUS exports into the run directory.
    Never raises: a cost failure is recorded, the rest of the evidence still lands."""
    meter: Meter | None = getattr(drill, "cost_meter", None)
    out: dict[str, Any] = {
        "budget_usd": budget_of(drill.spec),
        "projected": meter.projection if meter else None,
    }
    if status == "refused":
        out["refused"] = True
    try:
        cat = Catalog.load()
        inv = inventory_for(drill.target)
        # the exports and evidence.json are uploaded too: count their PUTs
        pending = len(FORMATS) + (0 if (drill.dir / "evidence.json").exists() else 1)
        report = price(inv, measured_usage(drill, inv, pending), cat)
        meta = {"drill_id": drill.run_id, "drill": drill.spec.name, "run_dir": drill.dir.name}
        out["final"] = report.to_dict()
        out["exports"] = [
            write(report, meta, drill.dir, fmt, cat.region_name).name for fmt in FORMATS
        ]
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    return out


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
                f"x ${x['unit_price']:<8g} = ${x['cost']:.6f}"
            )
        if proj:
            budget = c.get("budget_usd")
            tail = f", budget ${budget:.2f}" if budget is not None else ""
            lines.append(f"  projected before inject ${proj['total_usd']:.6f}{tail}")
        if c.get("exports"):
            lines.append(f"  FOCUS 1.2 export: {', '.join(c['exports'])}")
    if c.get("error"):
        lines.append(f"cost: not computed: {c['error']}")
    return lines

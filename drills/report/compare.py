"""Runs side by side: RTO and its parts, RPO, duplicates, skipped, conflicts, cost -- and
regressions.

The first run given is the baseline. A threshold says how far a later run's
figure may exceed the baseline's before it counts as a regression: `rto=20%`
(relative) or `rpo_records=0` (absolute). Higher is worse for every figure.

Across patterns (bench/patterns.py runs one drill per recovery pattern) three more rows
say what tells them apart:
- pattern: the evidence's pattern name and the spec's `replication.engine`;
- conflicts: what two writers made of one key. active-active: the checker's conflict
  count (the evidence's `active_active` section); dual-write: records only in the lost
  region's log (`dual_write.logged.one_sided[lost]`), the writes the two histories disagree
  on that a reconciliation must settle when it returns -- not the divergent keys, which
  count every key written after the loss (the survivor's records, expected); single-writer
  patterns
  (active-passive, backup-restore): split-brain writes, the only way they get two
  histories of a key (acknowledged by the old primary after the fence);
- standby monthly USD: what keeping the standby ready costs a month, from the cost model
  (drills/cost/standby.py: the stack the run used -- the local pair priced as AWS, or the
  AWS stack --, replication at the rate the run measured), with what the pattern runs in
  the standby: no MirrorMaker 2 under dual-write or backup-restore, MirrorMaker 2 in both
  regions under active-active (`standby_note` says which applied).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from drills.report.load import read_evidence

FIGURES = {
    "rto": "RTO s",
    "detect": "detect s",
    "decide": "decide s",
    "cutover": "cutover s",
    "first_consume": "first consume s",
    "rpo_records": "RPO records",
    "rpo_seconds": "RPO s",
    "duplicates": "duplicates",
    "skipped": "skipped",
    "conflicts": "conflicts",
    "cost_usd": "drill cost USD",
    "standby_monthly_usd": "standby USD/month",
}
DEFAULT_THRESHOLDS = "rto=20%,rpo_records=0,skipped=0"


class ThresholdError(ValueError):
    pass


@dataclass(frozen=True)
class Threshold:
    figure: str
    amount: float
    relative: bool

    def allows(self, base: float, value: float) -> bool:
        limit = base * (1 + self.amount) if self.relative else base + self.amount
        return value <= limit + 1e-9

    def __str__(self) -> str:
        return (
            f"{self.figure}={self.amount * 100:g}%"
            if self.relative
            else f"{self.figure}={self.amount:g}"
        )


def parse_thresholds(text: str) -> list[Threshold]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in FIGURES:
            raise ThresholdError(
                f"threshold {part!r}: expected FIGURE=N or FIGURE=N% with FIGURE one of {', '.join(FIGURES)}"
            )
        rel = value.endswith("%")
        try:
            amount = float(value.rstrip("%"))
        except ValueError:
            raise ThresholdError(f"threshold {part!r}: {value!r} is not a number") from None
        if amount < 0:
            raise ThresholdError(f"threshold {part!r}: must not be negative")
        out.append(Threshold(name, amount / 100 if rel else amount, rel))
    return out


@dataclass
class Run:
    name: str
    drill: str
    stack: str
    verdict: str
    figures: dict[str, float | None]
    pattern: str = "-"
    standby_note: str = ""


#: Patterns that run no MirrorMaker 2 in the standby / run it in both regions.
NO_MM2 = ("dual-write", "backup-restore")
BOTH_WAYS = ("active-active",)


def pattern_of(ev: dict[str, Any]) -> str:
    """`active-passive (mirrormaker2)`, `dual-write`, ...: the pattern and its engine."""
    engine = ((ev.get("spec") or {}).get("replication") or {}).get("engine") or "mirrormaker2"
    name = (ev.get("pattern") or {}).get("name") or (
        "active-passive" if engine in ("mirrormaker2", "msk-replicator") else engine
    )
    return name if name == engine else f"{name} ({engine})"


def _count(x: Any) -> float | None:
    """A count as the sections give it: a number, a list of cases, or {count|total|records|keys}
    (records before keys: active-active's conflicts are records, its keys a second figure)."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, int | float):
        return x
    if isinstance(x, list):
        return len(x)
    if isinstance(x, dict):
        for k in ("count", "total", "records", "keys"):
            if isinstance(x.get(k), int | float):
                return x[k]
    return None


def conflicts(ev: dict[str, Any]) -> float | None:
    """Conflicts by pattern (the module docstring); None when the run measured none."""
    aa = ev.get("active_active")
    if isinstance(aa, dict):
        return _count(aa.get("conflicts"))
    dw = ev.get("dual_write")
    if isinstance(dw, dict):
        one_sided = (dw.get("logged") or {}).get("one_sided") or {}
        return _count(one_sided.get(dw.get("lost")))
    rpo = (ev.get("measurements") or {}).get("rpo") or {}
    return rpo.get("split_brain")


def standby_monthly(ev: dict[str, Any], run_dir: Path | None) -> tuple[float | None, str]:
    """(USD a month to keep the standby ready, how it was priced): the cost model's standby
    report for the stack the run used, with the pattern's replication parts."""
    from drills.cost.catalog import Catalog
    from drills.cost.model import inventory_aws, inventory_local
    from drills.cost.standby import (
        StandbyAssumptions,
        StandbyError,
        load_stack,
        measured_rate,
        standby_report,
    )

    cost = ev.get("cost") or {}
    basis = cost.get("final") or cost.get("projected") or {}
    a = StandbyAssumptions()
    if run_dir is not None:
        # no measured transfer: the model's configured default rate
        with contextlib.suppress(StandbyError, KeyError, ValueError, OSError):
            a.rate_bytes_per_s, a.rate_source = measured_rate(run_dir)
    try:
        if basis.get("mode") == "aws":
            cfg = load_stack(basis["stack"])
            inv = inventory_aws(basis["stack"], cfg)
        else:
            from components.local import config as local_config

            cfg, inv = None, inventory_local(local_config.load("local"))
    except (StandbyError, KeyError, ValueError, OSError) as e:
        return None, f"not priced: {str(e).splitlines()[0][:120]}"
    engine = ((ev.get("spec") or {}).get("replication") or {}).get("engine") or "mirrormaker2"
    mm2 = [r for r in inv.resources if "MirrorMaker 2" in (r.resource_type or "")]
    note = "standby as the stack runs it"
    if engine in NO_MM2 and mm2:
        inv.resources = [r for r in inv.resources if r not in mm2]
        note = f"{engine}: no MirrorMaker 2 worker in the standby"
    elif engine in BOTH_WAYS and mm2:
        from dataclasses import replace

        inv.resources.append(replace(mm2[0], resource_id=mm2[0].resource_id + "-reverse"))
        note = f"{engine}: a second MirrorMaker 2 worker for the reverse flow"
    report = standby_report(inv, Catalog.load(), a, cfg)
    return report.total, f"{note}; replication {a.rate_source}"


def figures(ev: dict[str, Any]) -> dict[str, float | None]:
    m = ev.get("measurements") or {}
    rto, rpo, cont = m.get("rto") or {}, m.get("rpo") or {}, m.get("continuity")
    cost = ev.get("cost") or {}
    final = cost.get("final") or cost.get("projected") or {}
    return {
        "rto": rto.get("seconds"),
        "detect": rto.get("detect"),
        "decide": rto.get("decide"),
        "cutover": rto.get("cutover"),
        "first_consume": rto.get("first_consume"),
        "rpo_records": rpo.get("records"),
        "rpo_seconds": rpo.get("seconds"),
        "duplicates": None if cont is None else sum(c["duplicates"] for c in cont),
        "skipped": None if cont is None else sum(c["skipped"] for c in cont),
        "conflicts": conflicts(ev),
        "cost_usd": final.get("total_usd"),
        "standby_monthly_usd": None,  # load() prices it (it needs the run directory)
    }


def load(run_dir: Path) -> Run:
    from drills.report.model import verdict_word

    ev = read_evidence(run_dir)
    figs = figures(ev)
    figs["standby_monthly_usd"], note = standby_monthly(ev, Path(run_dir))
    return Run(
        Path(run_dir).name,
        ev.get("drill"),
        (ev.get("spec") or {}).get("target", {}).get("stack"),
        verdict_word(ev),
        figs,
        pattern_of(ev),
        note,
    )


def regressions(runs: list[Run], thresholds: list[Threshold]) -> list[str]:
    base, out = runs[0], []
    for run in runs[1:]:
        for t in thresholds:
            b, v = base.figures.get(t.figure), run.figures.get(t.figure)
            if v is None and b is not None:
                out.append(f"{run.name}: {t.figure} not measured (baseline {b:g})")
            elif b is not None and v is not None and not t.allows(b, v):
                out.append(f"{run.name}: {t.figure} {v:g} vs baseline {b:g} (threshold {t})")
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return (
        f"{x:,}" if isinstance(x, int) else f"{x:.3f}" if abs(x) >= 0.001 or x == 0 else f"{x:.2e}"
    )


def rows(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    head = ["figure", *(r.name for r in runs)]
    body = [
        ["pattern", *(r.pattern for r in runs)],
        ["drill", *(r.drill for r in runs)],
        ["stack", *(r.stack for r in runs)],
        ["verdict", *(r.verdict for r in runs)],
    ]
    body += [[label, *(_fmt(r.figures[k]) for r in runs)] for k, label in FIGURES.items()]
    return head, body


def notes(runs: list[Run]) -> list[str]:
    """How each run's standby month was priced (printed under the table)."""
    return [f"{r.name}: standby USD/month: {r.standby_note}" for r in runs if r.standby_note]


def html(runs: list[Run], found: list[str]) -> str:
    head, body = rows(runs)
    th = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in body)
    reg = "".join(f"<li>{escape(x)}</li>" for x in found) or "<li>none</li>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>kdrill compare</title>'
        "<style>body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}</style></head><body>"
        f"<h1>kdrill compare ({len(runs)} runs; baseline {escape(runs[0].name)})</h1>"
        f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"
        f"<h2>Regressions</h2><ul>{reg}</ul></body></html>\n"
    )

"""Runs side by side: RTO and its parts, RPO, duplicates, skipped, cost -- and regressions.

The first run given is the baseline. A threshold says how far a later run's
figure may exceed the baseline's before it counts as a regression: `rto=20%`
(relative) or `rpo_records=0` (absolute). Higher is worse for every figure.
"""

from __future__ import annotations

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
    "cost_usd": "cost USD",
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
        "cost_usd": final.get("total_usd"),
    }


def load(run_dir: Path) -> Run:
    from drills.report.model import verdict_word

    ev = read_evidence(run_dir)
    return Run(
        Path(run_dir).name,
        ev.get("drill"),
        (ev.get("spec") or {}).get("target", {}).get("stack"),
        verdict_word(ev),
        figures(ev),
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
        ["drill", *(r.drill for r in runs)],
        ["stack", *(r.stack for r in runs)],
        ["verdict", *(r.verdict for r in runs)],
    ]
    body += [[label, *(_fmt(r.figures[k]) for r in runs)] for k, label in FIGURES.items()]
    return head, body


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

"""report.html: one self-contained file (inline CSS and SVG, no scripts, no URLs), printable."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from drills.report.model import Report

CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;border-bottom:1px solid #ccc;margin-top:28px}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{background:#1a7f37;color:#fff} .fail{background:#cf222e;color:#fff} .norun{background:#9a6700;color:#fff}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:bold;font-size:16px}
.met{color:#1a7f37} .MISSED{color:#cf222e;font-weight:bold} .nm{color:#6e7781;font-style:italic}
.fired{background:#fff8c5} .meta{color:#57606a} svg{max-width:100%;height:auto}
details{margin:4px 0} code{font-size:12px}
@media print{body{margin:0;max-width:none} h2{break-after:avoid} table,figure{break-inside:avoid} details{display:block}}
"""


def _e(x: Any) -> str:
    """Escaped text, with URL schemes dropped so the file names no http(s) address."""
    if x is None:
        return "-"
    return escape(re.sub(r"\bhttps?://", "", str(x)))


def _table(head: list[str], rows: list[list[Any]], cls: list[str] | None = None) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    thead = f"<thead><tr>{h}</tr></thead>" if any(head) else ""
    body = []
    for i, r in enumerate(rows):
        c = f' class="{cls[i]}"' if cls and cls[i] else ""
        body.append(
            f"<tr{c}>"
            + "".join(f"<td>{v if isinstance(v, _Raw) else _e(v)}</td>" for v in r)
            + "</tr>"
        )
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    pass


def _state(c) -> _Raw:
    cls = {"met": "met", "MISSED": "MISSED"}.get(c.state, "nm")
    return _Raw(f'<span class="{cls}">{escape(c.state)}</span>')


def render(rep: Report) -> str:
    ev, h = rep.run.ev, rep.header
    verdict_cls = {"PASS": "pass", "OBJECTIVES MISSED": "fail"}.get(h["verdict"], "norun")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>kdrill report: {_e(h['drill'])} {_e(ev.get('run_id'))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Drill {_e(h['drill'])} <small class=meta>run {_e(ev.get('run_id'))}</small></h1>",
        f'<p><span id="verdict" class="verdict {verdict_cls}">{_e(h["verdict"])}</span> '
        f"status {_e(h['status'])}, exit code {_e(ev.get('exit_code'))}</p>",
        _table(["", ""], [[k, v] for k, v in h["facts"]]),
        '<h2 id="rto">Recovery time and recovery point</h2>',
        _table(["figure", "value"], h["figures"]),
        '<h2 id="timeline">Timeline</h2>',
    ]
    if rep.svg:
        ms = "".join(
            f'<li data-marker="{escape(m.id)}">{_e(m.label)}: {m.at:+.3f} s</li>'
            for m in rep.markers
        )
        parts.append(
            f'<figure id="timeline-figure">{rep.svg}<figcaption><ul>{ms}</ul>'
            "Replication lag is shown as sampled in the steady state, then the lag at the "
            "fault (RPO seconds); after the fault the primary may be gone, so it is not "
            "sampled.</figcaption></figure>"
        )
    else:
        parts.append(f'<p class="nm">No timeline: {_e(rep.run.history_note)}</p>')
    parts.append('<h2 id="continuity">Consumer continuity</h2>')
    if rep.continuity_rows:
        parts.append(
            _table(
                [
                    "group",
                    "topic",
                    "partition",
                    "role",
                    "committed",
                    "ideal",
                    "resume",
                    "source",
                    "duplicates",
                    "skipped",
                    "dup. vs processed",
                ],
                rep.continuity_rows,
                [
                    "fired" if r[7] == "reset" and r[3] != "local" else ""
                    for r in rep.continuity_rows
                ],
            )
        )
    else:
        parts.append('<p class="nm">Not measured: the history was not checked.</p>')
    parts.append('<h2 id="layers">The five layers</h2>')
    for layer, cs in rep.layers.items():
        parts.append(f'<h3 data-layer="{escape(layer)}">{_e(layer)}</h3>')
        parts.append(
            _table(
                ["check", "measured", "bound", "met", "note"],
                [
                    [c.name, c.value if c.measured else "not measured", c.bound, _state(c), c.note]
                    for c in cs
                ],
            )
        )
    parts.append('<h2 id="diagnosis">Diagnosis</h2>')
    fired = [f for f in rep.findings if f.fired]
    if fired:
        for f in fired:
            ev_items = "".join(f"<li>{_e(x)}</li>" for x in f.evidence)
            parts.append(
                f'<div class="finding fired" data-rule="{escape(f.rule)}"><b>{_e(f.title)}</b>'
                f"<ul>{ev_items}</ul><p>Likely cause: {_e(f.cause)}<br>Next move: {_e(f.action)}</p></div>"
            )
    else:
        parts.append("<p>No rule fired.</p>")
    parts.append("<h3>Every rule evaluated</h3>")
    parts.append(
        _table(
            ["rule", "decision table", "fired", "values"],
            [
                [
                    f.title,
                    "yes" if f.table_row else "",
                    {True: "FIRED", False: "no", None: "could not evaluate"}[f.fired],
                    _fmt(f.values),
                ]
                for f in rep.findings
            ],
            ["fired" if f.fired else "" for f in rep.findings],
        )
    )
    parts.append('<h2 id="risks">Unresolved risks</h2>')
    parts.append(
        "<ul>" + "".join(f"<li>{_e(r)}</li>" for r in rep.risks) + "</ul>"
        if rep.risks
        else "<p>None.</p>"
    )
    parts.append('<h2 id="anomalies">Anomalies</h2>')
    if rep.anomalies:
        for kind, a in rep.anomalies.items():
            parts.append(
                f"<h3>{_e(kind)}: {a['count']} records{' (tolerated by the spec)' if a.get('tolerated') else ''}</h3>"
            )
            parts.append(_table(["producer", "key", "seq", "count", "proof (sampled)"], a["rows"]))
    else:
        parts.append(
            "<p>None found.</p>" if rep.run.measurements else '<p class="nm">Not checked.</p>'
        )
    parts.append('<h2 id="journal">Journal</h2>')
    parts.append(_table(["phase", "step", "status", "duration", "detail"], rep.journal_rows))
    parts.append('<h2 id="cost">Cost</h2>')
    if rep.cost_rows:
        parts.append(f"<p>{_e(rep.cost_note)}</p>")
        parts.append(_table(["line", "quantity", "unit", "unit price", "cost"], rep.cost_rows))
    else:
        parts.append('<p class="nm">No cost section.</p>')
    parts.append(
        f'<p class="meta">Generated by kdrill {_e(h["kdrill"])} at <span id="generated">{_e(rep.generated)}</span> '
        "from evidence.json and the history.</p></body></html>"
    )
    return "\n".join(parts)


def _fmt(values: dict) -> str:
    return "; ".join(f"{k}: {v}" for k, v in values.items())

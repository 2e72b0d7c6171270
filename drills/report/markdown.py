"""report.md: the short form that fits a pull-request comment (GitHub caps comments at 65,536 chars)."""

from __future__ import annotations

from drills.report.model import Report

LIMIT = 60_000


def _c(x) -> str:
    return "-" if x is None else str(x).replace("|", "\\|").replace("\n", " ")


def render(rep: Report) -> str:
    h, ev = rep.header, rep.run.ev
    lines = [f"### kdrill {h['drill']} ({ev.get('run_id')}): **{h['verdict']}**", ""]
    lines += [f"- {k}: {_c(v)}" for k, v in h["facts"][1:]]
    lines += ["", "| figure | value |", "| --- | --- |"]
    lines += [f"| {_c(a)} | {_c(b)} |" for a, b in h["figures"]]
    v = ev.get("verdict")
    if v:
        lines += ["", "| objective | value | bound | met |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {_c(c['objective'])} | {_c(c['value'])} | {_c(c['bound'])} | {'yes' if c['met'] else '**no**'} |"
            for c in v["checks"]
        ]
    fired = [f for f in rep.findings if f.fired]
    lines += ["", "**Diagnosis**" + ("" if fired else ": no rule fired")]
    for f in fired:
        lines.append(
            f"- **{f.title}** - {'; '.join(f.evidence)[:400]}. Cause: {f.cause}. Next: {f.action}."
        )
    missed = [c for c in rep.checks if c.state == "MISSED"]
    lines += [
        "",
        f"**Five layers**: {sum(c.state == 'met' for c in rep.checks)} met, {len(missed)} missed, "
        f"{sum(not c.measured for c in rep.checks)} not measured",
    ]
    lines += [f"- MISSED {c.layer}: {c.name} = {c.value} (bound {c.bound})" for c in missed]
    if rep.risks:
        lines += (
            ["", "<details><summary>Unresolved risks</summary>", ""]
            + [f"- {_c(r)}" for r in rep.risks]
            + ["", "</details>"]
        )
    lines += ["", "Full report: `report.html` in the run directory."]
    text = "\n".join(lines) + "\n"
    return text if len(text) <= LIMIT else text[: LIMIT - 40] + "\n\n(truncated)\n"

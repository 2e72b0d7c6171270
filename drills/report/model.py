"""The report's content, assembled once from a run directory; html and markdown only lay it out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from drills.history import backup as backup_restore
from drills.report.diagnosis import Finding, diagnose, unresolved_risks
from drills.report.facts import Facts, derive
from drills.report.layers import LAYERS, Check, checks
from drills.report.load import RunData
from drills.report.plot import Marker, markers, render_svg

CASES_SHOWN = 5  # anomaly cases shown per type (the evidence keeps a sample already)


@dataclass
class Report:
    run: RunData
    facts: Facts
    header: dict[str, Any]
    markers: list[Marker]
    svg: str | None
    continuity_rows: list[list[Any]]
    layers: dict[str, list[Check]]
    findings: list[Finding]
    risks: list[str]
    anomalies: dict[str, dict[str, Any]]
    journal_rows: list[list[Any]]
    cost_rows: list[list[Any]] = field(default_factory=list)
    cost_note: str = ""
    generated: str = ""

    @property
    def checks(self) -> list[Check]:
        return [c for cs in self.layers.values() for c in cs]


def verdict_word(ev: dict[str, Any]) -> str:
    v = ev.get("verdict")
    if ev.get("status") != "completed" or not v:
        return f"DID NOT RUN ({ev.get('status')})"
    return "PASS" if v.get("passed") else "OBJECTIVES MISSED"


def _s(x) -> str:
    return "n/a" if x is None else f"{x:.3f} s"


def header(run: RunData) -> dict[str, Any]:
    ev, spec = run.ev, run.spec
    env = ev.get("environment") or {}
    rep = env.get("replication") or {}
    tgt = env.get("target") or {}
    j = ev.get("journal") or {}
    started = j.get("started")
    when = (
        dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if started
        else "-"
    )
    timeline = spec.get("faults") or []
    fault = spec.get("fault") or next((f for f in timeline if f.get("incident")), {})
    m = run.measurements
    rto, rpo = m.get("rto") or {}, m.get("rpo") or {}
    versions = ", ".join(
        f"{k} {env[k]}"
        for k in ("kdrill", "kafka", "confluent_kafka", "librdkafka", "python")
        if env.get(k)
    )
    cost = ev.get("cost") or {}
    final = cost.get("final") or cost.get("projected") or {}
    facts = [
        ("drill", f"{ev.get('drill')}: {spec.get('description', '')}"),
        ("stack", (spec.get("target") or {}).get("stack")),
        ("regions", f"primary {tgt.get('primary', '-')} -> standby {tgt.get('standby', '-')}"),
        (
            "pattern",
            f"{(ev.get('pattern') or {}).get('describe') or _async(rep)}; "
            f"fault {fault.get('kind')} {fault.get('region') or fault.get('link') or ''}; "
            f"{'failover' if (spec.get('cutover') or {}).get('failover', True) else 'no failover'}",
        ),
        *_timeline_facts(ev),
        *_detection_facts(ev),
        ("versions", versions),
        (
            "decision",
            f"{(spec.get('decision') or {}).get('mode')}; approver {ev.get('approver') or '-'}",
        ),
        ("time", f"{when}, {j.get('duration', '-')} s on host {j.get('host', '-')}"),
    ]
    figures = [
        ["RTO", _s(rto.get("seconds"))],
        ["  detect (T_detect - T_fault)", _s(rto.get("detect"))],
        ["  decide (T_decide - T_detect)", _s(rto.get("decide"))],
        ["  fence (T_fence - T_fault)", _s(rto.get("fence", run.instant("t_fence")))],
        ["  cutover (T_cut - T_decide)", _s(rto.get("cutover"))],
        ["  first consume (max T_consume - T_cut)", _s(rto.get("first_consume"))],
        [
            "RPO (records)",
            "n/a"
            if rpo.get("records") is None
            else f"{rpo['records']:,} of {rpo.get('acknowledged', 0):,} acknowledged",
        ],
        ["RPO (seconds)", _s(rpo.get("seconds"))],
        [
            "split-brain / late / indeterminate",
            "n/a"
            if not rpo
            else f"{rpo.get('split_brain')} / {rpo.get('late_replicated')} / {rpo.get('indeterminate')}",
        ],
        *_dual_write_figures(ev.get("dual_write")),
        *backup_restore.figures(ev.get("backup_restore")),
        *_active_active_figures(ev.get("active_active")),
        [
            "cost",
            f"{final.get('total_usd', 0):.4f} {final.get('currency', 'USD')} ({final.get('basis')})"
            if final
            else "n/a",
        ],
    ]
    return {
        "drill": ev.get("drill"),
        "status": ev.get("status"),
        "verdict": verdict_word(ev),
        "kdrill": env.get("kdrill"),
        "facts": facts,
        "figures": figures,
    }


def _async(rep: dict[str, Any]) -> str:
    """The pattern line of evidence written before it named the pattern."""
    return f"asynchronous replication ({rep.get('engine', '-')}, {rep.get('policy') or 'default'} policy)"


def _dual_write_figures(dw: dict[str, Any] | None) -> list[list[str]]:
    """A dual-write drill's own figures (drills/history/dualwrite.py)."""
    if not dw:
        return []
    lost, surv = dw["lost"], dw["survivor"]
    ack, log, div = dw["acknowledged"], dw["logged"], dw["divergence"]
    return [
        ["dual-write: acknowledged by one region only",
         f"{ack['one_sided_total']:,} ({lost} {ack['one_sided'].get(lost, 0):,}, "
         f"{surv} {ack['one_sided'].get(surv, 0):,}) of {dw['records']:,}"],
        ["dual-write: in one region's log only",
         f"{log['one_sided_total']:,} ({lost} {log['one_sided'].get(lost, 0):,}, "
         f"{surv} {log['one_sided'].get(surv, 0):,})"],
        ["dual-write: keys diverging between the regions", f"{div['keys']:,} of {div['of_keys']:,}"],
        *[[f"dual-write: deduplication in group {d['group']}",
           f"{d['removed']:,} removed (checker: {d['expected_removed']:,}), {d['delivered']:,} "
           f"delivered, {d['delivered_twice']} delivered twice"] for d in dw["dedup"]],
    ]  # fmt: skip


def _active_active_figures(aa: dict[str, Any] | None) -> list[list[str]]:
    """An active-active drill's own figures (drills/history/activeactive.py)."""
    if not aa:
        return []
    c, copies = aa["conflicts"], aa["copies"]
    return [
        ["active-active: records acknowledged", ", ".join(f"{r} {n:,}" for r, n in aa["records"].items())],
        ["active-active: records in conflict (same key, both regions, within the lag)",
         f"{c['records']:,} on {c['keys']:,} of {c['of_keys']:,} keys "
         f"(window {aa['window_s']:.2f} s; " + ", ".join(f"{r} {n:,}" for r, n in c["by_region"].items()) + ")"],
        ["active-active: keys whose cross-region order differs between the regions' consumers",
         f"{aa['ordering']['keys_differing']:,}"],
        ["active-active: crossed twice (loops, re-copies)",
         f"{aa['crossed_twice']:,} (loop topics {len(aa['loop_topics'])}; " + ", ".join(
             f"{r}: {x['duplicated']:,} duplicated, {x['misplaced']:,} misplaced" for r, x in copies.items()) + ")"],
        ["active-active: acknowledged, never reached the other region",
         ", ".join(f"{r} {n:,}" for r, n in aa["lost"].items())],
        [f"active-active: stranded by the loss of {aa['lost_region']} (late on return)", f"{aa['stranded']:,}"],
    ]  # fmt: skip


def _timeline_facts(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """A line per fault of a timeline of more than one: when it was due, applied, cleared
    (seconds since the incident), and which is the incident."""
    faults = ev.get("faults") or []
    if len(faults) < 2:
        return []

    def t(x: float | None) -> str:
        return "-" if x is None else f"{x:+.2f} s"

    return [
        (
            f"fault {f['index'] + 1}" + (" (incident)" if f.get("incident") else ""),
            f"{f.get('describe')}: due at {f.get('at_s'):g} s, applied {t(f.get('applied_since_incident_s'))}"
            f" (late {f.get('late_s') if f.get('late_s') is not None else '-'} s), cleared "
            f"{t(f.get('cleared_since_incident_s'))} since the incident",
        )
        for f in faults
    ]


def _detection_facts(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """Which detection rule fired, on what, and the observation."""
    det = ev.get("detection") or {}
    fired = det.get("fired")
    if not fired:
        return [("detection", f"rule {det.get('rule')}: did not fire")] if det else []
    leaf = fired
    while leaf.get("parts") and len(leaf["parts"]) == 1:
        leaf = leaf["parts"][0]
    what = (
        "; ".join(
            f"{p['rule']} ({p['path']}) on {p['on']}: {p['observation']}" for p in leaf["parts"]
        )
        if leaf.get("parts")
        else f"{leaf['rule']} ({leaf['path']}) on {leaf['on']}: {leaf['observation']}"
    )
    return [("detection", f"rule {det.get('rule')} fired: {what}")]


def _anomalies(ev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind, a in (ev.get("anomalies") or {}).items():
        rows = []
        for c in (a.get("cases") or [])[:CASES_SHOWN]:
            seq = (
                f"{c.get('first_seq')}..{c.get('last_seq')}"
                if "first_seq" in c
                else c.get("seq", "-")
            )
            proof = (
                "; ".join(
                    f"gseq {w.get('gseq')} at {w.get('at', {}).get('topic')}[{w.get('at', {}).get('partition')}]@{w.get('at', {}).get('offset')} acked {w.get('ack_time')}"
                    for w in (c.get("writes") or [])[:3]
                )
                or ", ".join(
                    f"{k}={v}" for k, v in c.items() if k not in ("anomaly", "producer", "key")
                )[:300]
            )
            rows.append([c.get("producer"), c.get("key"), seq, c.get("count", 1), proof])
        out[kind] = {"count": a.get("count"), "tolerated": a.get("tolerated"), "rows": rows}
    return out


def _journal(ev: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for s in (ev.get("journal") or {}).get("steps") or []:
        out = s.get("output")
        detail = s.get("error") or ""
        if not detail and isinstance(out, dict) and s.get("phase") not in ("preflight", "verify"):
            detail = ", ".join(f"{k}={v}" for k, v in out.items())[:200]
        rows.append([s.get("phase"), s.get("name"), s.get("status"), _s(s.get("duration")), detail])
    return rows


def _cost(ev: dict[str, Any]) -> tuple[list[list[Any]], str]:
    cost = ev.get("cost") or {}
    final = cost.get("final") or cost.get("projected")
    if not final:
        return [], ""
    rows = [
        [
            ln.get("description"),
            f"{ln.get('quantity', 0):.4g}",
            ln.get("unit"),
            ln.get("unit_price"),
            f"{ln.get('cost', 0):.6f}",
        ]
        for ln in final.get("lines") or []
    ]
    rows.append(
        ["total", "", "", "", f"{final.get('total_usd', 0):.6f} {final.get('currency', 'USD')}"]
    )
    return rows, f"{final.get('basis')}: {final.get('note', '')}"


def build(run: RunData, generated: str | None = None) -> Report:
    f = derive(run)
    cs = checks(run, f)
    layers = {name: [c for c in cs if c.layer == name] for name in LAYERS}
    findings = diagnose(run, f)
    passed = (run.ev.get("verdict") or {}).get("passed")
    cont = [
        [
            c["group"],
            c["topic"],
            c["partition"],
            c.get("role"),
            c.get("committed"),
            c.get("ideal"),
            c.get("resume"),
            c.get("resume_source"),
            c.get("duplicates"),
            c.get("skipped"),
            c.get("duplicates_processed"),
        ]
        for c in f.continuity
    ]
    cost_rows, cost_note = _cost(run.ev)
    return Report(
        run=run,
        facts=f,
        header=header(run),
        markers=markers(run),
        svg=render_svg(run),
        continuity_rows=cont,
        layers=layers,
        findings=findings,
        risks=unresolved_risks(findings, cs, passed),
        anomalies=_anomalies(run.ev),
        journal_rows=_journal(run.ev),
        cost_rows=cost_rows,
        cost_note=cost_note,
        generated=generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )

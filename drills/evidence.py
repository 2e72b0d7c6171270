"""A drill's evidence: evidence.json, written from the run record.

`evidence.json` is the machine-readable record SREs keep: schema version, the
spec, the journal, the timeline of instants (monotonic and wall clock),
measurements, anomalies with their ranges and proof, the verdict, the
environment and tool versions, and the sections other listeners added (cost).
`EvidenceHooks` writes it when the drill finishes, and again once the engine
has uploaded the run directory (to add where it went, or why it did not).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from typing import Any

from drills import cost
from drills.history import activeactive
from drills.history import backup as backup_restore
from drills.history.dualwrite import pattern_facts
from drills.history.dualwrite import summary_lines as dual_write_lines
from drills.hooks import Hooks
from drills.record import RunRecord

EVIDENCE_VERSION = 1


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(record: RunRecord) -> dict[str, Any]:
    t = record.target
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "kdrill": _version("kdrill"),
        "confluent_kafka": _version("confluent-kafka"),
        "librdkafka": __import__("confluent_kafka").libversion()[0],
        **t.versions,
        "replication": {
            "engine": t.replication_engine,
            "policy": t.policy,
            **t.replication_settings,
        },
        "target": {"primary": t.primary, "standby": t.standby},
    }


def timeline(record: RunRecord) -> dict[str, Any]:
    """Each instant on the monotonic clock, relative to T_fault, and as wall time."""
    ins = record.instants
    now_m, now_w = time.monotonic(), time.time()
    t0 = ins.get("t_fault")
    return {
        name: {
            "monotonic": t,
            "since_fault_s": round(t - t0, 3) if t is not None and t0 is not None else None,
            "wall": round(now_w - (now_m - t), 3) if t is not None else None,
        }
        for name, t in ins.items()
    }


def measurements_of(result) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The evidence's `measurements` and `anomalies` sections of a history CheckResult."""
    if result is None:
        return None, {}
    full = result.to_dict(full=False)
    measurements = {
        "rto": full["rto"],
        "rpo": full["rpo"],
        "continuity": full["continuity"],
        "valid": full["valid"],
        "anomalies_found": full["found"],
        "anomalies_tolerated": full["tolerated"],
        "notes": full["notes"],
    }
    return measurements, full["anomalies"]


def build(record: RunRecord) -> dict[str, Any]:
    """The evidence document of a run record."""
    measurements, anomalies = measurements_of(record.result)
    evidence: dict[str, Any] = {
        "schema_version": EVIDENCE_VERSION,
        "drill": record.drill,
        "run_id": record.run_id,
        "status": record.status,
        "exit_code": record.exit_code,
        "verdict": record.verdict or None,
        "spec": record.spec.to_dict(),
        "pattern": backup_restore.pattern_facts()
        if record.spec.replication.engine == backup_restore.PATTERN
        else activeactive.pattern_facts(record.spec.replication.engine, record.target.policy)
        or pattern_facts(record.spec.replication.engine, record.target.policy),
        "timeline": timeline(record),
        "faults": record.faults,
        "detection": record.detection or None,
        "steady_state": record.steady_before,
        "measurements": measurements,
        "anomalies": anomalies,
        "capacity": record.steady_after,
        "inter_region_bytes": record.inter_region_bytes,
        "approver": record.approver,
        **record.sections,  # what other listeners added, e.g. "cost"
        "environment": environment(record),
        "journal": record.journal.to_dict(),
    }
    if record.uploaded_to:
        evidence["uploaded_to"] = record.uploaded_to
    if record.upload_error:
        evidence["upload_error"] = record.upload_error
    return evidence


class EvidenceHooks(Hooks):
    """Writes `evidence.json` into the run directory; `document` is the last one written."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {}

    def write(self, record: RunRecord) -> None:
        self.document = build(record)
        path = record.run_dir / "evidence.json"
        path.write_text(json.dumps(self.document, indent=2, default=str))

    def finishing(self, record: RunRecord) -> None:
        self.write(record)  # before the upload, so it is uploaded too

    def finished(self, record: RunRecord) -> None:
        self.write(record)  # with where the upload went


def summary_lines(ev: dict[str, Any]) -> list[str]:
    """The terminal summary: the figures an SRE reads first."""
    lines = [f"drill {ev['drill']} ({ev['run_id']}): {ev['status']}"]
    if ev.get("pattern"):
        lines.append(f"pattern: {ev['pattern']['describe']}")
    m = ev.get("measurements")
    if m:
        rto, rpo = m["rto"], m["rpo"]

        def f(x):
            return "n/a" if x is None else f"{x:.2f}s"

        lines.append(
            f"RTO {f(rto['seconds'])} = detect {f(rto['detect'])} + decide {f(rto['decide'])} + "
            f"cutover {f(rto['cutover'])} + first consume {f(rto['first_consume'])}"
        )
        lines.append(
            f"RPO {rpo['records']} records / {f(rpo['seconds'])} of {rpo['acknowledged']} acknowledged; "
            f"split-brain {rpo['split_brain']}, late {rpo['late_replicated']}, indeterminate {rpo['indeterminate']}"
        )
        dup = sum(c["duplicates"] for c in m["continuity"])
        skipped = sum(c["skipped"] for c in m["continuity"])
        sources = sorted({c["resume_source"] for c in m["continuity"]})
        lines.append(
            f"consumers: {dup} duplicates, {skipped} skipped, resumed from {', '.join(sources) or '-'}"
        )
        lines.append(f"anomalies: {', '.join(m['anomalies_found']) or 'none'}")
    lines += dual_write_lines(ev.get("dual_write"))
    lines += backup_restore.summary_lines(ev.get("backup_restore"))
    lines += activeactive.summary_lines(ev.get("active_active"))
    fb = ev.get("failback")
    if fb:
        lines += _failback_lines(fb)
    cap = ev.get("capacity") or {}
    if cap.get("throughput_drop") is not None:
        lines.append(
            f"capacity: {cap['region']} acknowledged {cap['throughput_rps']:g} of "
            f"{cap['offered_rps']:g} records/s offered after cutover (drop {cap['throughput_drop']:.1%}; "
            f"{cap.get('shape', 'steady')}; pre-fault {cap.get('pre_fault_throughput_rps')})"
        )
    v = ev.get("verdict")
    if v:
        for c in v["checks"]:
            lines.append(
                f"  {'met ' if c['met'] else 'MISSED'} {c['objective']}: {c['value']} (bound {c['bound']})"
            )
        for finding in v.get("findings") or ():
            lines.append(f"  finding {finding['kind']}: {finding['detail']}")
        lines.append(f"verdict: {'PASS' if v['passed'] else 'OBJECTIVES MISSED'}")
    lines += cost.summary_lines(ev)
    if ev.get("uploaded_to"):
        lines.append(f"evidence uploaded to {ev['uploaded_to']}")
    if ev.get("upload_error"):
        lines.append(f"evidence upload failed (kept on disk): {ev['upload_error']}")
    return lines


def _failback_lines(fb: dict[str, Any]) -> list[str]:
    """The failback's figures (drills/failback.py) for the terminal summary."""
    if not fb.get("completed"):
        return [f"failback: not completed ({fb.get('why')})"]
    rto, rpo, res = fb["rto"], fb["rpo"], fb.get("resurrected") or {}

    def f(x):
        return "n/a" if x is None else f"{x:.2f}s"

    sb = sum(v or 0 for v in fb["split_brain"].values())
    return [
        f"failback {fb['from']} -> {fb['to']}: RTO {f(rto['seconds'])} (cutover {f(rto['cutover'])} + "
        f"first consume {f(rto['first_consume'])}); RPO {rpo['records']} records of {rpo['acknowledged']}; "
        f"split-brain {sb} (both directions)",
        f"failback resurrected: {res.get('count')} of {res.get('lost_at_failover')} lost at failover "
        f"(read again {res.get('read_again')}){'; topics rebuilt' if fb.get('rebuild') else ''}",
    ]

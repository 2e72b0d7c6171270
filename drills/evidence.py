"""A drill's evidence: evidence.json, the raw history, the journal, and an upload to S3.

`evidence.json` is the machine-readable record SREs keep: schema version, the
spec, the journal, the timeline of instants (monotonic and wall clock),
measurements, anomalies with their ranges and proof, the verdict, the
environment and tool versions. The run directory is then uploaded to the
standby region's evidence bucket; a failed upload is reported, never fatal.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

from drills import cost

if TYPE_CHECKING:
    from drills.engine import Drill

EVIDENCE_VERSION = 1


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(drill: Drill) -> dict[str, Any]:
    from components.local import kafka_dist

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "kdrill": _version("kdrill"),
        "confluent_kafka": _version("confluent-kafka"),
        "librdkafka": __import__("confluent_kafka").libversion()[0],
        "kafka": kafka_dist.pinned_version(),
        "replication": {"engine": "mirrormaker2", "policy": drill.target.policy},
        "target": {"primary": drill.target.primary, "standby": drill.target.standby},
    }


def timeline(drill: Drill) -> dict[str, Any]:
    """Each instant on the monotonic clock, relative to T_fault, and as wall time."""
    ins = drill.instants
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


def write_evidence(drill: Drill, status: str, code: int) -> dict[str, Any]:
    r = drill.result
    measurements = None
    if r is not None:
        full = r.to_dict(full=False)
        measurements = {
            "rto": full["rto"],
            "rpo": full["rpo"],
            "continuity": full["continuity"],
            "valid": full["valid"],
            "anomalies_found": full["found"],
            "anomalies_tolerated": full["tolerated"],
            "notes": full["notes"],
        }
        anomalies = full["anomalies"]
    else:
        anomalies = {}
    evidence: dict[str, Any] = {
        "schema_version": EVIDENCE_VERSION,
        "drill": drill.spec.name,
        "run_id": drill.run_id,
        "status": status,
        "exit_code": code if status == "completed" else 2,
        "verdict": drill.verdict or None,
        "spec": drill.spec.to_dict(),
        "timeline": timeline(drill),
        "steady_state": drill.steady,
        "measurements": measurements,
        "anomalies": anomalies,
        "capacity": next((s.output for s in drill.journal.steps if s.phase == "serve"), None),
        "inter_region_bytes": max(0, drill.target.bytes_between_regions() - drill.bytes_start),
        "approver": drill.approver,
        "cost": cost.evidence(drill, status),  # also writes the FOCUS exports into the run dir
        "environment": environment(drill),
        "journal": drill.journal.to_dict(),
    }
    path = drill.dir / "evidence.json"
    path.write_text(json.dumps(evidence, indent=2, default=str))
    try:
        evidence["uploaded_to"] = drill.target.upload_evidence(drill.dir)
    except Exception as e:  # the evidence is on disk either way
        evidence["upload_error"] = (
            f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        )
    path.write_text(json.dumps(evidence, indent=2, default=str))
    return evidence


def summary_lines(ev: dict[str, Any]) -> list[str]:
    """The terminal summary: the figures an SRE reads first."""
    lines = [f"drill {ev['drill']} ({ev['run_id']}): {ev['status']}"]
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
    v = ev.get("verdict")
    if v:
        for c in v["checks"]:
            lines.append(
                f"  {'met ' if c['met'] else 'MISSED'} {c['objective']}: {c['value']} (bound {c['bound']})"
            )
        lines.append(f"verdict: {'PASS' if v['passed'] else 'OBJECTIVES MISSED'}")
    lines += cost.summary_lines(ev)
    if ev.get("uploaded_to"):
        lines.append(f"evidence uploaded to {ev['uploaded_to']}")
    if ev.get("upload_error"):
        lines.append(f"evidence upload failed (kept on disk): {ev['upload_error']}")
    return lines

"""Figures derived from a run once, read by the layers, the diagnosis and the outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc

from drills.report.load import RunData

#: MirrorMaker 2 settings of the local stack when the evidence does not record them
#: (components/local/config.py: replication.intervalSeconds, offsetLagMax).
LOCAL_MM2_DEFAULTS = {"sync_interval_s": 2.0, "offset_lag_max": 100}


@dataclass
class Facts:
    status: str
    failover: bool
    rto: dict[str, Any]
    rpo: dict[str, Any]
    continuity: list[dict[str, Any]]
    duplicates: int
    skipped: int
    sources: dict[str, list[str]]  # group -> resume sources of its replicated partitions
    reset_groups: dict[str, list[dict[str, Any]]]  # group -> its partitions resumed from reset
    failed_sends: int | None
    sends: int | None
    steady: dict[str, Any]
    capacity: dict[str, Any] | None
    parity: dict[str, Any] | None
    acls: tuple[int, int] | None  # primary, standby
    mm2: dict[str, Any]
    mm2_source: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    anomalies: dict[str, Any] = field(default_factory=dict)

    @property
    def recovered(self) -> bool:
        return self.rto.get("seconds") is not None


def _replicated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in rows if c.get("role") != "local"]


def derive(run: RunData) -> Facts:
    ev, m = run.ev, run.measurements
    continuity = m.get("continuity") or []
    sources: dict[str, list[str]] = {}
    reset: dict[str, list[dict[str, Any]]] = {}
    for c in _replicated(continuity):
        sources.setdefault(c["group"], []).append(c["resume_source"])
        if c["resume_source"] == "reset":
            reset.setdefault(c["group"], []).append(c)
    failed = sends = None
    if run.history is not None:
        w = run.history.writes
        sends = w.num_rows
        failed = sends - pc.sum(pc.is_null(w["error"]).cast("int64")).as_py() if sends else 0
    steps = (ev.get("journal") or {}).get("steps") or []
    pre = next((s for s in steps if s.get("phase") == "preflight"), None)
    out = (pre or {}).get("output") or {}
    parity = out.get("diff") if isinstance(out, dict) else None
    acls = None
    if isinstance(out.get("primary"), dict) and isinstance(out.get("standby"), dict):
        acls = (len(out["primary"].get("acls") or []), len(out["standby"].get("acls") or []))
    repl = (ev.get("environment") or {}).get("replication") or {}
    if "offset_lag_max" in repl and "sync_interval_s" in repl:
        mm2 = {k: repl[k] for k in LOCAL_MM2_DEFAULTS}
        mm2_source = "recorded in the evidence"
    else:
        mm2 = dict(LOCAL_MM2_DEFAULTS)
        mm2_source = "assumed: the local stack's defaults (not recorded in the evidence)"
    return Facts(
        status=ev.get("status", "?"),
        failover=bool((run.spec.get("cutover") or {}).get("failover", True)),
        rto=m.get("rto") or {},
        rpo=m.get("rpo") or {},
        continuity=continuity,
        duplicates=sum(c["duplicates"] for c in continuity),
        skipped=sum(c["skipped"] for c in continuity),
        sources=sources,
        reset_groups=reset,
        failed_sends=failed,
        sends=sends,
        steady=ev.get("steady_state") or {},
        capacity=ev.get("capacity"),
        parity=parity,
        acls=acls,
        mm2=mm2,
        mm2_source=mm2_source,
        steps=steps,
        anomalies=ev.get("anomalies") or {},
    )


def predicted_duplicates(run: RunData, f: Facts) -> dict[str, dict[str, Any]]:
    """Per group: the duplicates MirrorMaker 2's offset sync allows, beside those measured.

    A group resumed from a synced or translated offset may re-read, per partition, up to
    offset.lag.max records (the sync's granularity) plus what it consumed during one
    sync interval; a group resumed by auto.offset.reset re-reads all it had committed.
    """
    rate = (f.steady or {}).get("throughput_rps") or 0.0
    parts = max(1, len({(c["topic"], c["partition"]) for c in _replicated(f.continuity)}))
    per_part = f.mm2["offset_lag_max"] + rate / parts * f.mm2["sync_interval_s"]
    out: dict[str, dict[str, Any]] = {}
    for c in _replicated(f.continuity):
        g = out.setdefault(c["group"], {"predicted": 0, "measured": 0, "sources": set()})
        g["sources"].add(c["resume_source"])
        g["measured"] += c["duplicates"]
        if c["resume_source"] == "reset":
            g["predicted"] += c.get("committed") or 0
        else:
            g["predicted"] += int(round(per_part))
    for g in out.values():
        g["sources"] = sorted(g["sources"])
    return out


def step_seconds(f: Facts, phase: str) -> float:
    return sum(s.get("duration") or 0.0 for s in f.steps if s.get("phase") == phase)

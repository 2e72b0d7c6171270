"""Topic coverage: primary partitions MirrorMaker 2 never replicated (a coverage gap).

A partition added to a topic (or a topic recreated) while the drill runs exists in the
primary at once, but MirrorMaker 2 copies it only after its next topic refresh and task
reconfiguration. Records acknowledged there until then are absent from the standby even
though replication "works": its lag covers the partitions it knows. After a failover they
are lost, and the question the seed's data-freshness layer asks ("topic coverage") is which
partitions, and how many acknowledged records.

From the history alone (no fault ledger): a primary partition is *uncovered* when the
primary acknowledged records there (by T_fence) and none of them is in the standby's log,
while records of the same topic acknowledged later than its first one were replicated --
MirrorMaker 2 was copying the topic, just not this partition. Only failover drills have a
standby log to compare with.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow.compute as pc

from drills.history.model import History

IDENT = ("producer", "key", "seq")


@dataclass(frozen=True)
class CoverageGap:
    topic: str  # the primary topic
    partition: int
    standby_topic: str  # where MirrorMaker 2 would have put it
    in_standby: bool  # the standby had the partition at cutover (end offsets snapshot)
    acknowledged: int  # records the primary acknowledged there by T_fence
    never_replicated: int  # of them, absent from the standby (all, by definition)
    first_ack: float
    last_ack: float


def coverage_gaps(history: History) -> list[CoverageGap]:
    """The uncovered primary partitions of the drill's topics, by topic and partition."""
    meta = history.meta
    if not meta.failover:
        return []
    t_fence = meta.instants.t_fence
    w = history.writes
    acked = w.filter(
        pc.and_(pc.equal(w["cluster"], meta.primary), pc.is_valid(w["ack_time"]))
    ).to_pylist()
    if t_fence is not None:
        acked = [r for r in acked if r["ack_time"] <= t_fence]
    log = history.log
    standby = log.filter(pc.equal(log["cluster"], meta.standby))
    there = set(zip(*(standby[k].to_pylist() for k in IDENT), strict=True))
    e = history.end_offsets
    ends = e.filter(pc.equal(e["cluster"], meta.standby)).to_pylist()
    snapshot = {(r["topic"], r["partition"]) for r in ends}

    by_part: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    last_replicated: dict[str, float] = {}
    for r in acked:
        by_part[(r["topic"], r["partition"])].append(r)
        if tuple(r[k] for k in IDENT) in there:
            last_replicated[r["topic"]] = max(last_replicated.get(r["topic"], 0.0), r["ack_time"])
    gaps = []
    for (topic, part), rows in sorted(by_part.items()):
        if any(tuple(r[k] for k in IDENT) in there for r in rows):
            continue
        first = min(r["ack_time"] for r in rows)
        if topic not in last_replicated or last_replicated[topic] <= first:
            continue  # nothing of the topic replicated after it: a lost tail, not a gap
        remote = meta.mapping.replicated(topic)
        gaps.append(
            CoverageGap(
                topic,
                part,
                remote,
                (remote, part) in snapshot,
                len(rows),
                len(rows),
                round(first, 6),
                round(max(r["ack_time"] for r in rows), 6),
            )  # fmt: skip
        )
    return gaps


COVERAGE_FINDING = "coverage-gap"


def finding_detail(gaps: list[CoverageGap], primary: str, standby: str) -> str:
    """One line: which partitions, how many acknowledged records never replicated."""
    by_topic: dict[str, list[CoverageGap]] = defaultdict(list)
    for g in gaps:
        by_topic[g.topic].append(g)
    parts = "; ".join(
        f"{t} partitions {', '.join(str(g.partition) for g in gs)}" for t, gs in by_topic.items()
    )
    n = sum(g.never_replicated for g in gaps)
    return (
        f"{n} records {primary} acknowledged were never replicated to {standby}: {parts} "
        "(MirrorMaker 2 had not picked these partitions up; it learns new partitions at its "
        "next topic refresh, refresh.topics.interval.seconds)"
    )


def section(gaps: list[CoverageGap]) -> dict[str, Any]:
    """The evidence's `coverage` section."""
    return {
        "uncovered_partitions": [asdict(g) for g in gaps],
        "never_replicated": sum(g.never_replicated for g in gaps),
    }

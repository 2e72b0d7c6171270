"""One drill history, two windows: the failover and the failback, each checked by `check()`.

A drill that fails back records one history: the primary's writes before the fault, the
standby's while it served, the old primary's again after the failback. The checker knows
one direction (a primary, a standby it fails over to), so a failback is checked as a
failover of its own, the roles swapped:

- ``failover_window``: everything but what the old primary took, served and logged after
  the failback began (``since``): the failover's figures are those of a drill that never
  failed back.
- ``failback_window``: the standby is the "primary" (its writes are the ones that must
  reach the old primary below the end offsets snapshotted at the switch), the old primary
  the "standby"; instants are the failback's. The old primary's topics written locally
  hold its pre-fault records below ``starts`` (the end offsets at the switch); they are
  not this window's, so its log starts there.
- ``resurrected``: records the old primary acknowledged that never reached the standby
  (the failover's lost records), back in the topics consumers read after the failback,
  with the groups that read them again: the anomaly a failback without a rebuild leaves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drills.history.cases import LOST_INTERIOR, LOST_TAIL, Case
from drills.history.checker import CheckResult
from drills.history.model import TABLES, DrillMeta, History

RESURRECTED = "resurrected"

# the column each table is timed by (a row of the old primary at or after `since` is the
# failback's); the others (log, end offsets, resumes) are split by cluster alone
_TIME = {"writes": "send_time", "reads": "poll_time", "commits": "commit_time"}


def _mask(table: pa.Table, name: str, cluster: str, since: float) -> np.ndarray:
    """Rows of `cluster` that belong to the failback (at or after `since`, when timed)."""
    on = pc.equal(table["cluster"], cluster).to_numpy(zero_copy_only=False)
    if name in _TIME:
        on &= pc.greater_equal(table[_TIME[name]], since).to_numpy(zero_copy_only=False)
    return on.astype(bool)


def failover_window(history: History, old_primary: str, since: float) -> History:
    """The history without the failback: no row of the old primary from `since` on, and
    none of its log, end offsets or resumes (the failover never reads them back)."""
    tables = {}
    for name in TABLES:
        t = history.table(name)
        if name in _TIME:
            keep = ~_mask(t, name, old_primary, since)
        else:
            keep = ~pc.equal(t["cluster"], old_primary).to_numpy(zero_copy_only=False).astype(bool)
        tables[name] = t.filter(pa.array(keep))
    return History(history.meta, **tables)


def failback_window(
    history: History,
    meta: DrillMeta,
    since: float,
    starts: dict[tuple[str, int], int],
) -> History:
    """The failback as a failover from `meta.primary` (the standby that served) to
    `meta.standby` (the old primary): the standby's rows whole, the old primary's from
    `since` on, its log from `starts` (topic, partition -> first offset of this window)."""
    serving, old = meta.primary, meta.standby
    tables = {}
    for name in TABLES:
        t = history.table(name)
        if name in _TIME:
            of_standby = pc.equal(t["cluster"], serving).to_numpy(zero_copy_only=False)
            keep = of_standby.astype(bool) | _mask(t, name, old, since)
        elif name == "log":
            keep = pc.equal(t["cluster"], old).to_numpy(zero_copy_only=False).astype(bool)
            topic = t["topic"].to_numpy(zero_copy_only=False)
            part = t["partition"].to_numpy(zero_copy_only=False)
            offset = t["offset"].to_numpy(zero_copy_only=False)
            for (name_, p), start in starts.items():
                keep &= ~((topic == name_) & (part == p) & (offset < start))
        else:  # end offsets snapshotted and resumes recorded at the failback: the old primary's
            keep = pc.equal(t["cluster"], old).to_numpy(zero_copy_only=False).astype(bool)
        tables[name] = t.filter(pa.array(keep))
    return History(meta, **tables)


@dataclass(frozen=True)
class ResurrectedCase(Case):
    """A record the old primary acknowledged but never replicated (lost at the failover),
    back in a topic consumers read after the failback; `read_by`: who did read it there."""

    anomaly: ClassVar[str] = RESURRECTED
    producer: str
    key: str
    seq: int
    gseq: int
    acked_at: dict  # where the old primary acknowledged it: topic, partition, offset, ack_time
    found_at: tuple[dict, ...]  # where the read-back found it after the failback
    read_by: tuple[dict, ...]  # group, topic, partition, offset, poll_time of each read


@dataclass(frozen=True)
class Resurrected:
    lost: int  # records of the old primary the failover counted lost (tail and interior)
    count: int  # of those, back in a topic consumers read after the failback
    read_again: int  # of those, read by some group after the failback (distinct records)
    by_group: dict[str, int]  # distinct records each group read again
    cases: tuple[ResurrectedCase, ...] = field(default_factory=tuple)

    def to_dict(self, limit: int | None = None) -> dict:
        return {
            "lost_at_failover": self.lost,
            "count": self.count,
            "read_again": self.read_again,
            "by_group": dict(self.by_group),
            "records": [c.to_dict() for c in self.cases[:limit]],
        }


def resurrected(
    failover: CheckResult,
    history: History,
    old_primary: str,
    topics: set[str],
    since: float,
) -> Resurrected:
    """The failover's lost records (acknowledged by `old_primary`) found in its `topics`
    (those consumers read after the failback) when it was read back, with the reads of
    them by groups at or after `since`. Every one is a record consumers can read again: a
    group whose position is below it does, and so does any new group."""
    lost = {}
    for name in (LOST_TAIL, LOST_INTERIOR):
        for case in failover.anomalies.get(name, ()):
            for w in case.writes:
                if w.cluster == old_primary:  # what the old primary kept and took back
                    lost[(w.producer, w.gseq)] = w
    if not lost:
        return Resurrected(0, 0, 0, {})
    gseqs = pa.array(sorted({g for _, g in lost}), pa.int64())
    found: dict[tuple[str, int], list[dict]] = {}
    log = history.table("log")
    log = log.filter(pc.and_(pc.equal(log["cluster"], old_primary),
                             pc.is_in(log["gseq"], value_set=gseqs)))  # fmt: skip
    for r in log.to_pylist():
        ident = (r["producer"], r["gseq"])
        if ident in lost and r["topic"] in topics:
            found.setdefault(ident, []).append({k: r[k] for k in ("topic", "partition", "offset")})
    reads = history.table("reads")
    after = reads.filter(pa.array(_mask(reads, "reads", old_primary, since)))
    after = after.filter(pc.is_in(after["gseq"], value_set=gseqs))
    read: dict[tuple[str, int], list[dict]] = {}
    for r in after.to_pylist():
        ident = (r["producer"], r["gseq"])
        if ident in found:
            read.setdefault(ident, []).append(
                {k: r[k] for k in ("group", "topic", "partition", "offset", "poll_time")}
            )
    cases = []
    for ident in sorted(found):
        w = lost[ident]
        at = asdict(w.at) if w.at is not None else {}
        cases.append(
            ResurrectedCase(
                producer=w.producer,
                key=w.key,
                seq=w.seq,
                gseq=w.gseq,
                acked_at={**at, "ack_time": w.ack_time},
                found_at=tuple(found[ident]),
                read_by=tuple(read.get(ident, ())),
            )
        )
    groups: dict[str, set] = {}
    for ident, rs in read.items():
        for r in rs:
            groups.setdefault(r["group"], set()).add(ident)
    return Resurrected(
        lost=len(lost),
        count=len(cases),
        read_again=len(read),
        by_group={g: len(s) for g, s in sorted(groups.items())},
        cases=tuple(cases),
    )

"""Lost writes: acknowledged records that the serving cluster does not hold where it should.

A primary write (acknowledged by T_fence) must be in the standby below the end
offset E snapshotted at cutover; a write to the serving cluster must be in its
log. Lost records are grouped into runs of consecutive sequence numbers per
producer and key, and each run is *interior* when a later sequence of the same
key and segment was found (replication skipped something: a gap) or *tail*
otherwise (the asynchronous replication lag at the fault: RPO).

The segment (primary vs serving) matters: producers keep numbering after
cutover, so without it every record lost at the primary's tail would look
interior because of the post-cutover writes that follow it.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc

from drills.history.cases import LOST_INTERIOR, LOST_TAIL, LostCase, Write
from drills.history.index import SEGMENT_PRIMARY, HistoryIndex


def lost_runs(index: HistoryIndex) -> list[LostCase]:
    """All runs of lost records, tail and interior, ordered by producer, key and sequence."""
    writes = index.writes
    lost = writes.filter(writes["lost"])
    if not lost.num_rows:
        return []
    present = writes.filter(
        pc.and_(writes["present"], pc.is_in(writes["kid"], pc.unique(lost["kid"])))
    )
    highest = {
        (row["kid"], row["segment"]): row["seq_max"]
        for row in present.group_by(["kid", "segment"]).aggregate([("seq", "max")]).to_pylist()
    }
    runs = _runs(
        lost.sort_by([("kid", "ascending"), ("segment", "ascending"), ("seq", "ascending")])
    )
    interior = {
        (run[0]["kid"], run[0]["segment"])
        for run in runs
        if run[-1]["seq"] < highest.get((run[0]["kid"], run[0]["segment"]), -1)
    }
    # The later present record proving each gap: looked up only for keys that have a gap.
    later: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    if interior:
        kids = pa.array(sorted({kid for kid, _ in interior}), pa.int64())
        rows = present.filter(pc.is_in(present["kid"], kids))
        for row in rows.select(["kid", "segment", "seq", "first_rank"]).to_pylist():
            later[(row["kid"], row["segment"])].append((row["seq"], row["first_rank"]))
        for seqs in later.values():
            seqs.sort()
    return [
        _case(
            index,
            run,
            highest.get((run[0]["kid"], run[0]["segment"])),
            later.get((run[0]["kid"], run[0]["segment"]), []),
        )
        for run in runs
    ]


def _runs(rows) -> list[list[dict]]:
    """Split sorted lost rows into runs of consecutive sequence numbers of one key and segment."""
    runs: list[list[dict]] = []
    for row in rows.to_pylist():
        last = runs[-1][-1] if runs else None
        if (
            last is not None
            and (last["kid"], last["segment"]) == (row["kid"], row["segment"])
            and row["seq"] == last["seq"] + 1
        ):
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _case(
    index: HistoryIndex, run: list[dict], highest: int | None, present: list[tuple[int, int]]
) -> LostCase:
    first, last = run[0], run[-1]
    after = bisect.bisect_right(present, (last["seq"], float("inf")))
    next_present = None
    if after < len(present):
        (next_present,) = index.found([present[after][1]])
    meta = index.meta
    return LostCase(
        anomaly=LOST_INTERIOR if next_present else LOST_TAIL,
        producer=first["producer"],
        key=first["key"],
        segment=meta.primary if first["segment"] == SEGMENT_PRIMARY else first["cluster"],
        first_seq=first["seq"],
        last_seq=last["seq"],
        count=len(run),
        writes=tuple(Write.from_row(row) for row in run),
        last_present_seq=highest,
        next_present=next_present,
    )

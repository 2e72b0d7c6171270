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
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drills.history.cases import LOST_INTERIOR, LOST_TAIL, LostCase, Write, quick
from drills.history.columns import member
from drills.history.index import SEGMENT_PRIMARY, HistoryIndex
from drills.history.model import plain


def lost_runs(index: HistoryIndex) -> list[LostCase]:
    """All runs of lost records, tail and interior, ordered by producer, key and sequence."""
    a = index.arrays
    lost = np.flatnonzero(a["w_lost"])
    if not len(lost):
        return []
    kid, segment, seq = a["w_kid"], a["w_segment"], a["w_seq"]
    lost = lost[np.lexsort((seq[lost], segment[lost], kid[lost]))]
    unit = kid * 2  # one per (key, segment); built in place (one array of 1M, not three)
    unit += segment
    lost_unit, lost_seq = unit[lost], seq[lost]
    # The highest sequence found per (key, segment), for the units with losses.
    units = np.unique(lost_unit)
    highest_seq, has, rows_of = _highest_present(unit, seq, a["w_present"], units)
    highest = {
        int(u): int(h)
        for u, h, ok in zip(units.tolist(), highest_seq.tolist(), has.tolist(), strict=True)
        if ok
    }
    # Runs: consecutive sequences of one (key, segment).
    starts = np.flatnonzero(
        np.concatenate(
            [[True], (lost_unit[1:] != lost_unit[:-1]) | (lost_seq[1:] != lost_seq[:-1] + 1)]
        )
    )
    ends = np.append(starts[1:], len(lost))
    interior = {
        int(lost_unit[s])
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        if lost_seq[e - 1] < highest.get(int(lost_unit[s]), -1)
    }
    # The later present record proving each gap: looked up only for keys that have a gap.
    later: dict[int, list[tuple[int, int]]] = defaultdict(list)
    if interior:
        gaps = rows_of(np.array(sorted(interior), np.int64))
        for u, q, r in zip(
            unit[gaps].tolist(), seq[gaps].tolist(), a["w_first_rank"][gaps].tolist(), strict=True
        ):
            later[u].append((q, r))
        for seqs in later.values():
            seqs.sort()
    # Decoded before to_pylist: a dictionary column converts value by value (5x slower).
    rows = plain(index.history.stored("writes").select(list(Write.COLUMNS)).take(pa.array(lost)))
    writes = Write.from_table(rows)
    return [
        _case(index, writes[s:e], seg, highest.get(u), later.get(u, []))
        for s, e, u, seg in zip(
            starts.tolist(),
            ends.tolist(),
            lost_unit[starts].tolist(),
            segment[lost[starts]].tolist(),
            strict=True,
        )
    ]


def _highest_present(
    unit: np.ndarray, seq: np.ndarray, present: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Per unit of ``units``: the highest sequence of a present write, whether there is one, and
    a function giving the present writes (ascending) of some units.

    Units are dense small integers (key id * 2 + segment) in the usual case, so a
    table indexed by unit takes one pass over the writes; otherwise the present
    writes are matched against ``units`` through hash sets.
    """
    size = int(unit.max()) + 1 if len(unit) else 1
    if int(unit.min(initial=0)) >= 0 and size <= 4 * len(unit) + (1 << 20):
        at, values = unit[present], seq[present]
        top = np.full(size, -1, np.int64)
        np.maximum.at(top, at, values)
        has = np.bincount(at, minlength=size) > 0

        def dense_rows(wanted: np.ndarray) -> np.ndarray:
            table = np.zeros(size, bool)
            table[wanted] = True
            return np.flatnonzero(present & table[unit])

        return top[units], has[units], dense_rows
    rows = np.flatnonzero(present)
    rows = rows[member(unit[rows], units)]
    top = np.full(len(units), -1, np.int64)
    has = np.zeros(len(units), bool)
    at = pc.index_in(unit[rows], value_set=pa.array(units)).to_numpy(zero_copy_only=False)
    np.maximum.at(top, at, seq[rows])
    has[at] = True
    return top, has, lambda wanted: rows[member(unit[rows], wanted)]


def _case(
    index: HistoryIndex,
    run: list[Write],
    segment: int,
    highest: int | None,
    present: list[tuple[int, int]],
) -> LostCase:
    first, last = run[0], run[-1]
    after = bisect.bisect_right(present, (last.seq, float("inf")))
    next_present = None
    if after < len(present):
        (next_present,) = index.found([present[after][1]])
    meta = index.meta
    return quick(
        LostCase,
        anomaly=LOST_INTERIOR if next_present else LOST_TAIL,
        producer=first.producer,
        key=first.key,
        segment=meta.primary if segment == SEGMENT_PRIMARY else first.cluster,
        first_seq=first.seq,
        last_seq=last.seq,
        count=len(run),
        writes=tuple(run),
        last_present_seq=highest,
        next_present=next_present,
    )

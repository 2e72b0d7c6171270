"""Duplicates: one record (same producer and gseq) stored more than once in the serving log.

Producer retries without idempotence, or MirrorMaker 2 re-copying after a
restart, make a consumer process a record twice even with perfect offsets.
"""

from __future__ import annotations

import numpy as np

from drills.history.cases import DuplicateCase
from drills.history.index import HistoryIndex


def duplicated_ranks(index: HistoryIndex) -> np.ndarray:
    """The log ranks of every row whose record occurs more than once, by record (rid) and then
    rank: numpy over the two columns needed, no filter of the whole log table."""
    a = index.arrays
    ranks = np.flatnonzero(a["log_repeated"])
    return ranks[np.argsort(a["log_rid"][ranks], kind="stable")]


def duplicates(index: HistoryIndex) -> list[DuplicateCase]:
    """One case per duplicated record, listing every position it was found at."""
    ranks = duplicated_ranks(index)
    if not len(ranks):
        return []
    rid = index.arrays["log_rid"][ranks]
    starts = np.flatnonzero(np.diff(rid, prepend=rid[0] - 1))
    found = index.found(ranks.tolist())
    cases = []
    for s, e in zip(starts.tolist(), [*starts[1:].tolist(), len(ranks)], strict=True):
        first = found[s]
        cases.append(
            DuplicateCase(first.producer, first.key, first.seq, first.gseq, tuple(found[s:e]))
        )
    return sorted(cases, key=lambda c: (c.producer, c.key, c.seq))

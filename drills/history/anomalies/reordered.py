"""Reordering: reading the serving log in order, a key's sequence number goes backwards.

Reading order per producer and key is the one a consumer sees: the
replicated topic, then the topic written after cutover, each by offset. A
record is reordered when its sequence is below the highest sequence already
read for its key. Repeated occurrences of a record are duplicates, not
reorderings, so only first occurrences are compared.

Vectorised (numpy): with rows sorted by key then reading order, ``kid * 2**31 + seq``
grows across keys, so one running maximum over the whole column is the running
maximum within each key.
"""

from __future__ import annotations

import numpy as np

from drills.history.cases import ReorderedCase
from drills.history.index import SEQ_LIMIT, HistoryIndex


def reordered(index: HistoryIndex) -> list[ReorderedCase]:
    a = index.arrays
    firsts = np.flatnonzero(a["log_first"])  # ranks of first occurrences, in reading order
    if not len(firsts):
        return []
    kid = a["log_kid"][firsts]
    combined = kid * SEQ_LIMIT + a["log_seq"][firsts]
    running = np.maximum.accumulate(combined)
    before = np.concatenate([[-1], running[:-1]])
    behind = combined < before
    if not behind.any():
        return []
    late = firsts[behind]
    wanted = before[behind]
    # The record holding the running maximum: the earliest occurrence of that (key, seq),
    # which is where the running maximum first reaches it (no sort: it never decreases).
    holders = firsts[np.searchsorted(running, wanted)]
    records = index.found(late.tolist())
    afters = index.found(holders.tolist())
    return [
        ReorderedCase(record.producer, record.key, record, after)
        for record, after in zip(records, afters, strict=True)
    ]

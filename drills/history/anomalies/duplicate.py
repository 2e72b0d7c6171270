"""Duplicates: one record (same producer and gseq) stored more than once in the serving log.

Producer retries without idempotence, or MirrorMaker 2 re-copying after a
restart, make a consumer process a record twice even with perfect offsets.
"""

from __future__ import annotations

from itertools import groupby

import pyarrow as pa

from drills.history.cases import DuplicateCase
from drills.history.index import HistoryIndex


def duplicated_rows(index: HistoryIndex) -> pa.Table:
    """Every serving-log row whose record occurs more than once, in per-key reading order."""
    return index.log.filter(pa.array(index.arrays["log_repeated"]))


def duplicates(index: HistoryIndex) -> list[DuplicateCase]:
    """One case per duplicated record, listing every position it was found at."""
    rows = duplicated_rows(index).sort_by([("rid", "ascending"), ("rank", "ascending")])
    cases = []
    for _, group in groupby(rows.select(["rid", "rank"]).to_pylist(), key=lambda row: row["rid"]):
        found = index.found([row["rank"] for row in group])
        first = found[0]
        cases.append(DuplicateCase(first.producer, first.key, first.seq, first.gseq, tuple(found)))
    return sorted(cases, key=lambda c: (c.producer, c.key, c.seq))

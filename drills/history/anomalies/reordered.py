"""Reordering: reading the serving log in order, a key's sequence number goes backwards.

Reading order per producer and key is the one a consumer sees: the
replicated topic, then the topic written after cutover, each by offset. A
record is reordered when its sequence is below the highest sequence already
read for its key. Repeated occurrences of a record are duplicates, not
reorderings, so only first occurrences are compared.

Vectorised: with rows sorted by key then reading order, ``kid * 2**31 + seq``
grows across keys, so one running maximum over the whole column is the running
maximum within each key.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from drills.history.anomalies.duplicate import duplicated_rows
from drills.history.cases import ReorderedCase
from drills.history.index import SEQ_LIMIT, HistoryIndex


def reordered(index: HistoryIndex) -> list[ReorderedCase]:
    log = index.log
    if not log.num_rows:
        return []
    repeats = duplicated_rows(index)
    first_rank = repeats.group_by("rid").aggregate([("rank", "min")])["rank_min"]
    later = pc.and_(
        pc.is_in(log["rank"], repeats["rank"]), pc.invert(pc.is_in(log["rank"], first_rank))
    )
    firsts = log.filter(pc.invert(later))
    combined = pc.add(pc.multiply(firsts["kid"], SEQ_LIMIT), firsts["seq"])
    running = pc.cumulative_max(combined)
    before = pa.chunked_array(
        [pa.array([-1], pa.int64()), *running.slice(0, len(running) - 1).chunks]
    )
    behind = pc.less(combined, before)
    if not pc.any(behind).as_py():
        return []
    late = firsts.filter(behind)
    wanted_seq = pc.subtract(pc.filter(before, behind), pc.multiply(late["kid"], SEQ_LIMIT))
    # The record holding the running maximum: the earliest occurrence of that (key, seq).
    holders = firsts.select(["kid", "seq", "rank"]).join(
        pa.table({"kid": late["kid"], "seq": wanted_seq}).group_by(["kid", "seq"]).aggregate([]),
        keys=["kid", "seq"],
        join_type="inner",
    )
    holder = {
        (row["kid"], row["seq"]): row["rank_min"]
        for row in holders.group_by(["kid", "seq"]).aggregate([("rank", "min")]).to_pylist()
    }
    rows = late.select(["kid", "rank"]).to_pylist()
    records = index.found([row["rank"] for row in rows])
    afters = index.found(
        [holder[(row["kid"], seq)] for row, seq in zip(rows, wanted_seq.to_pylist(), strict=True)]
    )
    return [
        ReorderedCase(record.producer, record.key, record, after)
        for record, after in zip(records, afters, strict=True)
    ]

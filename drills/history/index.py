"""Shared indexes, built once per check from a History, that every measurement and detector reads.

Jepsen's Kafka checker builds its per-key indexes once and lets each anomaly
detector query them; this is the same idea in columnar form. Strings are
encoded once into integers (``rid`` for a record, ``kid`` for a producer and
key) so that joins, group-bys and sorts over a million rows stay in pyarrow's
vectorised kernels instead of Python loops.

Two derived tables:

- ``log``: the serving cluster's records in *reading order per key*: by key,
  then primary topic, partition, role (the replicated topic before the topic
  written after cutover) and offset. Each row knows its standby end offset E
  and whether it lies below it.
- ``writes``: every send, with where it was found in the serving log and the
  verdicts the definitions need: expected there, present, lost, split-brain.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from drills.history.model import DrillMeta, History, HistoryError, Role

GSEQ_BITS = 40  # rid = producer code << 40 | gseq
SEQ_LIMIT = 1 << 31

#: Segment of a write: which cluster it was sent to. Sequence gaps are judged within a segment,
#: so that records lost at the primary's tail are not "interior" merely because the producer
#: kept numbering after cutover.
SEGMENT_PRIMARY = 0
SEGMENT_SERVING = 1

ROLE_CODES = {Role.REPLICATED: 0, Role.LOCAL: 1}


@dataclass
class HistoryIndex:
    """The indexes of one history; build with ``build_index``."""

    history: History
    log: pa.Table
    writes: pa.Table
    producers: pa.Array
    keys: pa.Array
    notes: list[str] = field(default_factory=list)

    def ids(self, table: pa.Table) -> pa.Table:
        """``table`` with the ``rid`` and ``kid`` columns of this index's encoding appended."""
        return _ids(table, self.producers, self.keys)

    @property
    def meta(self) -> DrillMeta:
        return self.history.meta

    @cached_property
    def end_offsets(self) -> dict[tuple[str, int], int]:
        """E per serving (topic, partition), as snapshotted at cutover."""
        eo = self.history.end_offsets
        eo = eo.filter(pc.equal(eo["cluster"], self.meta.serving))
        return {(r["topic"], r["partition"]): r["end_offset"] for r in eo.to_pylist()}

    @cached_property
    def _by_partition(self) -> tuple[pa.Table, dict[tuple[str, int], tuple[int, int]]]:
        table = self.log.select(["topic", "partition", "offset", "producer", "key", "seq", "gseq"])
        table = table.sort_by(
            [("topic", "ascending"), ("partition", "ascending"), ("offset", "ascending")]
        )
        spans: dict[tuple[str, int], tuple[int, int]] = {}
        counts = table.group_by(["topic", "partition"], use_threads=False).aggregate(
            [("offset", "count")]
        )
        start = 0
        for row in counts.to_pylist():
            spans[(row["topic"], row["partition"])] = (start, start + row["offset_count"])
            start += row["offset_count"]
        return table, spans

    def partitions(self) -> list[tuple[str, int]]:
        """The serving (topic, partition) pairs that hold records of ours."""
        return sorted(self._by_partition[1])

    def partition_records(self, topic: str, partition: int) -> pa.Table:
        """The serving log of one partition, by offset."""
        table, spans = self._by_partition
        start, stop = spans.get((topic, partition), (0, 0))
        return table.slice(start, stop - start)

    def records_between(self, topic: str, partition: int, low: int, high: int) -> pa.Table:
        """Records (not offsets: markers leave gaps) at offsets in [low, high) of a serving partition."""
        records = self.partition_records(topic, partition)
        offsets = _OffsetView(records["offset"])
        start = bisect.bisect_left(offsets, low)
        return records.slice(start, max(0, bisect.bisect_left(offsets, high) - start))


class _OffsetView:
    """A sorted int column seen as a Python sequence, so ``bisect`` can search it in O(log n)."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self._column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, i: int) -> int:
        return self._column[i].as_py()


def build_index(history: History) -> HistoryIndex:
    """Encode identities, order the serving log per key and judge every write, once."""
    notes: list[str] = []
    producers = _dictionary(history, "producer")
    keys = _dictionary(history, "key")
    log = _serving_log(history, producers, keys, notes)
    writes = _judge_writes(history, log, producers, keys)
    return HistoryIndex(
        history=history, log=log, writes=writes, producers=producers, keys=keys, notes=notes
    )


def _dictionary(history: History, column: str) -> pa.Array:
    chunks = [
        chunk
        for table in (history.writes, history.log, history.reads)
        for chunk in table[column].chunks
    ]
    return pc.unique(pa.chunked_array(chunks, type=pa.string()))


def _ids(table: pa.Table, producers: pa.Array, keys: pa.Array) -> pa.Table:
    """Append ``rid`` (one int per record) and ``kid`` (one int per producer and key)."""
    if table.num_rows and pc.max(table["gseq"]).as_py() >= 1 << GSEQ_BITS:
        raise HistoryError(f"gseq must be below 2**{GSEQ_BITS}")
    if table.num_rows and pc.max(table["seq"]).as_py() >= SEQ_LIMIT:
        raise HistoryError("seq must be below 2**31")
    pcode = pc.cast(pc.index_in(table["producer"], value_set=producers), pa.int64())
    kcode = pc.cast(pc.index_in(table["key"], value_set=keys), pa.int64())
    rid = pc.add(pc.shift_left(pcode, GSEQ_BITS), table["gseq"])
    kid = pc.add(pc.multiply(pcode, max(len(keys), 1)), kcode)
    return table.append_column("rid", rid).append_column("kid", kid)


def _serving_log(
    history: History, producers: pa.Array, keys: pa.Array, notes: list[str]
) -> pa.Table:
    meta = history.meta
    log = history.log.filter(pc.equal(history.log["cluster"], meta.serving))
    topic_names = pc.unique(log["topic"]).to_pylist()
    # Per serving topic: (primary topic code, role code); None for topics we do not serve.
    origins = []
    for name in topic_names:
        if not meta.failover:
            origin = (name, Role.REPLICATED) if name in meta.topics else None
        else:
            origin = meta.mapping.origin(name, meta.topics)
        origins.append(origin)
    tcode = pc.index_in(log["topic"], value_set=pa.array(topic_names, pa.string()))
    ptopic = pc.take(
        pa.array([meta.topics.index(o[0]) if o else None for o in origins], pa.int32()), tcode
    )
    role = pc.take(pa.array([ROLE_CODES[o[1]] if o else None for o in origins], pa.int8()), tcode)
    log = log.append_column("ptopic", ptopic).append_column("role", role)
    log = log.filter(pc.is_valid(log["ptopic"]))
    log = _ids(log, producers, keys)
    log = log.append_column("end_offset", _end_offset_column(history, log, notes))
    replicated = pc.equal(log["role"], ROLE_CODES[Role.REPLICATED])
    if meta.failover:
        below = pc.and_(
            replicated,
            pc.or_kleene(pc.is_null(log["end_offset"]), pc.less(log["offset"], log["end_offset"])),
        )
    else:
        below = replicated
    log = log.append_column("below_e", pc.fill_null(below, False))
    order = pc.sort_indices(
        log,
        sort_keys=[
            ("kid", "ascending"),
            ("ptopic", "ascending"),
            ("partition", "ascending"),
            ("role", "ascending"),
            ("offset", "ascending"),
        ],
    )
    log = log.take(order)
    return log.append_column("rank", pa.array(range(log.num_rows), pa.int64()))


def _end_offset_column(history: History, log: pa.Table, notes: list[str]) -> pa.Array:
    meta = history.meta
    if not meta.failover or not log.num_rows:
        return pa.nulls(log.num_rows, pa.int64())
    eo = history.end_offsets.filter(pc.equal(history.end_offsets["cluster"], meta.serving))
    known = {(r["topic"], r["partition"]): r["end_offset"] for r in eo.to_pylist()}
    replicated_topics = {meta.mapping.replicated(t) for t in meta.topics}
    parts = log.filter(pc.is_in(log["topic"], pa.array(sorted(replicated_topics), pa.string())))
    seen = parts.group_by(["topic", "partition"]).aggregate([]).to_pylist()
    for row in sorted(seen, key=lambda r: (r["topic"], r["partition"])):
        if (row["topic"], row["partition"]) not in known:
            notes.append(
                f"no end offset E recorded for {row['topic']}/{row['partition']}: "
                "every record found there counts as replicated before cutover"
            )
    width = int(pc.max(log["partition"]).as_py()) + 1
    names = sorted({t for t, _ in known} | set(pc.unique(log["topic"]).to_pylist()))
    lookup: list[int | None] = [None] * (len(names) * width)
    for (topic, partition), end in known.items():
        if partition < width:
            lookup[names.index(topic) * width + partition] = end
    slot = pc.add(
        pc.multiply(pc.index_in(log["topic"], value_set=pa.array(names, pa.string())), width),
        log["partition"],
    )
    return pc.take(pa.array(lookup, pa.int64()), slot)


def _judge_writes(history: History, log: pa.Table, producers: pa.Array, keys: pa.Array) -> pa.Table:
    meta = history.meta
    writes = _ids(history.writes, producers, keys)
    found = log.group_by("rid").aggregate([("rid", "count"), ("below_e", "any"), ("rank", "min")])
    writes = writes.join(found, keys="rid", join_type="left outer")
    found_any = pc.fill_null(pc.greater(writes["rid_count"], 0), False)
    found_below = pc.fill_null(writes["below_e_any"], False)
    acked = pc.is_valid(writes["ack_time"])
    from_primary = pc.equal(writes["cluster"], meta.primary)
    t_fence = meta.instants.t_fence
    if meta.failover and t_fence is not None:
        split_brain = pc.and_(
            pc.and_(from_primary, acked),
            pc.fill_null(pc.greater(writes["ack_time"], t_fence), False),
        )
    else:
        split_brain = pa.repeat(pa.scalar(False), writes.num_rows)
    # A primary write counts only if it reached the standby before the cutover snapshot (below E).
    present = pc.if_else(from_primary, found_below, found_any) if meta.failover else found_any
    expected = pc.and_(acked, pc.invert(split_brain))
    segment = pc.if_else(from_primary, SEGMENT_PRIMARY, SEGMENT_SERVING).cast(pa.int8())
    writes = writes.drop_columns(["rid_count", "below_e_any"])
    writes = writes.rename_columns(
        ["first_rank" if c == "rank_min" else c for c in writes.column_names]
    )
    return (
        writes.append_column("found", found_any)
        .append_column("acked", acked)
        .append_column("segment", segment)
        .append_column("split_brain", split_brain)
        .append_column("present", present)
        .append_column("lost", pc.and_(expected, pc.invert(present)))
    )

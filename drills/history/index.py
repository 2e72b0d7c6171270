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

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from drills.history.cases import Found
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
    """The indexes of one history; build with ``build_index``.

    ``log`` is narrow (integers only) so sorts and takes over it stay cheap;
    ``found(ranks)`` turns rows of it back into evidence with names.
    """

    history: History
    log: pa.Table
    writes: pa.Table
    occurrences: pa.Table  # per rid in the serving log: count, below_e_any, rank_min, rank_max
    serving_raw: pa.Table  # the serving cluster's log rows that ``log.row`` points into
    topic_names: list[str]  # ``log.tcode`` -> serving topic name
    producers: pa.Array
    keys: pa.Array
    notes: list[str] = field(default_factory=list)
    _slices: dict[tuple[str, int], pa.Table] = field(default_factory=dict)

    @property
    def meta(self) -> DrillMeta:
        return self.history.meta

    def ids(self, table: pa.Table) -> pa.Table:
        """``table`` with the ``rid`` and ``kid`` columns of this index's encoding appended."""
        return _ids(table, self.producers, self.keys)

    def found(self, ranks: list[int]) -> list[Found]:
        """The serving-log records at these ranks, with names and positions, as evidence."""
        if not ranks:
            return []
        rows = self.log["row"].take(pa.array(ranks, pa.int64()))
        serving = self.meta.serving
        return [Found.from_row(r, serving) for r in self.serving_raw.take(rows).to_pylist()]

    def partition_records(self, topic: str, partition: int) -> pa.Table:
        """The serving log rows of one partition (any order)."""
        if (topic, partition) not in self._slices:
            code = self.topic_names.index(topic) if topic in self.topic_names else -1
            mask = pc.and_(
                pc.equal(self.log["tcode"], code), pc.equal(self.log["partition"], partition)
            )
            self._slices[(topic, partition)] = self.log.filter(mask)
        return self._slices[(topic, partition)]

    def serving_partitions(self) -> set[tuple[str, int]]:
        """The serving (topic, partition) pairs holding records of ours."""
        pairs = self.log.group_by(["tcode", "partition"]).aggregate([]).to_pylist()
        return {(self.topic_names[p["tcode"]], p["partition"]) for p in pairs}

    def first_offset(self, topic: str, partition: int) -> int | None:
        """The lowest offset holding a record of ours in a serving partition."""
        return pc.min(self.partition_records(topic, partition)["offset"]).as_py()

    def records_between(self, topic: str, partition: int, low: int, high: int) -> pa.Table:
        """Records (not offsets: markers leave gaps) at offsets in [low, high), by offset."""
        records = self.partition_records(topic, partition)
        offsets = records["offset"]
        mask = pc.and_(pc.greater_equal(offsets, low), pc.less(offsets, high))
        return records.filter(mask).sort_by("offset")


def build_index(history: History) -> HistoryIndex:
    """Encode identities, order the serving log per key and judge every write, once."""
    notes: list[str] = []
    producers = _dictionary(history, "producer")
    keys = _dictionary(history, "key")
    raw, topic_names, log = _serving_log(history, producers, keys, notes)
    occurrences = log.group_by("rid").aggregate(
        [("rid", "count"), ("below_e", "any"), ("rank", "min"), ("rank", "max")]
    )
    writes = _judge_writes(history, occurrences, producers, keys)
    return HistoryIndex(
        history=history,
        log=log,
        writes=writes,
        occurrences=occurrences,
        serving_raw=raw,
        topic_names=topic_names,
        producers=producers,
        keys=keys,
        notes=notes,
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
) -> tuple[pa.Table, list[str], pa.Table]:
    """The serving cluster's rows of our topics, and the narrow per-key-ordered index over them."""
    meta = history.meta
    raw = history.log.filter(pc.equal(history.log["cluster"], meta.serving))
    topic_names = pc.unique(raw["topic"]).to_pylist()
    # Per serving topic: (primary topic code, role code); None for topics we do not serve.
    origins = []
    for name in topic_names:
        if not meta.failover:
            origin = (name, Role.REPLICATED) if name in meta.topics else None
        else:
            origin = meta.mapping.origin(name, meta.topics)
        origins.append(origin)
    tcode = pc.index_in(raw["topic"], value_set=pa.array(topic_names, pa.string()))
    ptopic = pc.take(
        pa.array([meta.topics.index(o[0]) if o else None for o in origins], pa.int32()), tcode
    )
    keep = pc.is_valid(ptopic)
    # One chunk: a take from a chunked table concatenates every chunk first, and ``found``
    # takes evidence rows from ``raw`` once per case batch.
    raw = raw.filter(keep).combine_chunks()
    tcode, ptopic = tcode.filter(keep), ptopic.filter(keep)
    role = pc.take(pa.array([ROLE_CODES[o[1]] if o else None for o in origins], pa.int8()), tcode)
    ided = _ids(raw.select(["producer", "key", "seq", "gseq"]), producers, keys)
    log = pa.table(
        {
            "row": pa.array(range(raw.num_rows), pa.int64()),
            "tcode": tcode,
            "partition": raw["partition"],
            "offset": raw["offset"],
            "seq": raw["seq"],
            "rid": ided["rid"],
            "kid": ided["kid"],
            "ptopic": ptopic,
            "role": role,
        }
    )
    log = log.append_column("end_offset", _end_offset_column(history, raw, log, topic_names, notes))
    replicated = pc.equal(log["role"], ROLE_CODES[Role.REPLICATED])
    if meta.failover:
        below = pc.and_(
            replicated,
            pc.or_kleene(pc.is_null(log["end_offset"]), pc.less(log["offset"], log["end_offset"])),
        )
    else:
        below = replicated
    log = log.append_column("below_e", pc.fill_null(below, False))
    order = _reading_order(log)
    log = log.take(order)
    log = log.append_column("rank", pa.array(range(log.num_rows), pa.int64()))
    return raw, topic_names, log


def _reading_order(log: pa.Table) -> pa.Array:
    """Sort indices by key, primary topic, partition, role, offset.

    When the five fit in 63 bits (they do unless offsets or key counts are huge), they are packed
    into one integer: a one-key sort is markedly faster than a five-key one.
    """
    keys = ["kid", "ptopic", "partition", "role", "offset"]
    if log.num_rows and not any(log[k].null_count for k in keys):
        low = [pc.min(log[k]).as_py() for k in keys]
        high = [pc.max(log[k]).as_py() for k in keys]
        bits = [int(h).bit_length() for h in high]
        if min(low) >= 0 and sum(bits) <= 62:
            packed = pc.cast(log[keys[0]], pa.int64())
            for k, b in zip(keys[1:], bits[1:], strict=True):
                packed = pc.bit_wise_or(pc.shift_left(packed, b), pc.cast(log[k], pa.int64()))
            return pc.sort_indices(packed)
    return pc.sort_indices(log, sort_keys=[(k, "ascending") for k in keys])


def _end_offset_column(
    history: History, raw: pa.Table, log: pa.Table, topic_names: list[str], notes: list[str]
) -> pa.Array:
    """E of each row's partition (null where none was recorded, or without failover)."""
    meta = history.meta
    if not meta.failover or not log.num_rows:
        return pa.nulls(log.num_rows, pa.int64())
    eo = history.end_offsets.filter(pc.equal(history.end_offsets["cluster"], meta.serving))
    known = {(r["topic"], r["partition"]): r["end_offset"] for r in eo.to_pylist()}
    replicated_topics = {meta.mapping.replicated(t) for t in meta.topics}
    parts = raw.filter(pc.is_in(raw["topic"], pa.array(sorted(replicated_topics), pa.string())))
    seen = parts.group_by(["topic", "partition"]).aggregate([]).to_pylist()
    for row in sorted(seen, key=lambda r: (r["topic"], r["partition"])):
        if (row["topic"], row["partition"]) not in known:
            notes.append(
                f"no end offset E recorded for {row['topic']}/{row['partition']}: "
                "every record found there counts as replicated before cutover"
            )
    width = int(pc.max(log["partition"]).as_py()) + 1
    lookup: list[int | None] = [None] * (len(topic_names) * width)
    for (topic, partition), end in known.items():
        if topic in topic_names and partition < width:
            lookup[topic_names.index(topic) * width + partition] = end
    slot = pc.add(pc.multiply(pc.cast(log["tcode"], pa.int64()), width), log["partition"])
    return pc.take(pa.array(lookup, pa.int64()), slot)


def _judge_writes(
    history: History, occurrences: pa.Table, producers: pa.Array, keys: pa.Array
) -> pa.Table:
    """Every send, with where it was found and whether it is expected, present, lost, split-brain."""
    meta = history.meta
    writes = _ids(history.writes, producers, keys)
    at = pc.index_in(writes["rid"], value_set=occurrences["rid"])
    found_any = pc.is_valid(at)
    found_below = pc.fill_null(pc.take(occurrences["below_e_any"], at), False)
    writes = writes.append_column("first_rank", pc.take(occurrences["rank_min"], at))
    writes = writes.append_column("last_rank", pc.take(occurrences["rank_max"], at))
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
    return (
        writes.append_column("found", found_any)
        .append_column("acked", acked)
        .append_column("segment", segment)
        .append_column("split_brain", split_brain)
        .append_column("present", present)
        .append_column("lost", pc.and_(expected, pc.invert(present)))
    )

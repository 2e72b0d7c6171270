"""Shared indexes, built once per check from a History, that every measurement and detector reads.

Jepsen's Kafka checker builds its per-key indexes once and lets each anomaly
detector query them; this is the same idea in columnar form. Strings are
encoded once into integers (``rid`` for a record, ``kid`` for a producer and
key) so that joins, group-bys and sorts over a million rows are numpy array
operations (dense counts, ``ufunc.at``, radix sorts) instead of Python loops
or hash group-bys.

Two derived tables:

- ``log``: the serving cluster's records in *reading order per key*: by key,
  then primary topic, partition, role (the replicated topic before the topic
  written after cutover) and offset. Each row knows its standby end offset E
  and whether it lies below it.
- ``writes``: every send, with where it was found in the serving log and the
  verdicts the definitions need: expected there, present, lost, split-brain.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drills.history.cases import Found, Position, quick
from drills.history.columns import (
    Vocabulary,
    codes,
    equal_to,
    floats,
    ints,
    member,
    rows_where,
    true_runs,
    valid,
)
from drills.history.model import DrillMeta, History, HistoryError, Role, plain

GSEQ_BITS = 40  # rid = producer code << 40 | gseq
SEQ_LIMIT = 1 << 31

#: Segment of a write: which cluster it was sent to. Sequence gaps are judged within a segment,
#: so that records lost at the primary's tail are not "interior" merely because the producer
#: kept numbering after cutover.
SEGMENT_PRIMARY = 0
SEGMENT_SERVING = 1

ROLE_CODES = {Role.REPLICATED: 0, Role.LOCAL: 1}


@dataclass
class Reads:
    """The reads table as numpy columns (strings as codes), for the continuity measurement."""

    group: np.ndarray
    groups: Vocabulary
    cluster: np.ndarray
    clusters: Vocabulary
    topic: np.ndarray
    topics: Vocabulary
    partition: np.ndarray
    offset: np.ndarray
    rid: np.ndarray
    produced_at: np.ndarray
    poll_time: np.ndarray

    def select(self, mask: np.ndarray) -> Reads:
        """The reads where ``mask`` holds; views, not copies, when they are one run of rows
        (a consumer's reads are recorded cluster after cluster, so usually they are)."""
        rows: slice | np.ndarray = mask
        starts, stops = true_runs(mask)
        if len(starts) <= 1:
            rows = slice(int(starts[0]), int(stops[0])) if len(starts) else slice(0, 0)
        return Reads(
            self.group[rows],
            self.groups,
            self.cluster[rows],
            self.clusters,
            self.topic[rows],
            self.topics,
            self.partition[rows],
            self.offset[rows],
            self.rid[rows],
            self.produced_at[rows],
            self.poll_time[rows],
        )

    def __len__(self) -> int:
        return len(self.rid)


@dataclass
class HistoryIndex:
    """The indexes of one history; build with ``build_index``.

    ``log`` is narrow (integers only) so sorts and takes over it stay cheap;
    ``found(ranks)`` turns rows of it back into evidence with names.
    """

    history: History
    occurrences: pa.Table  # per rid stored more than once: count, below_e_any, rank_min, rank_max
    topic_names: list[str]  # ``log.tcode`` -> serving topic name
    producers: Vocabulary
    keys: Vocabulary
    serving_rows: dict[str, np.ndarray]  # per ``log.row`` (stored order): tcode, partition, offset
    arrays: dict[str, np.ndarray]  # numpy columns of ``writes`` and ``log``
    reads: Reads
    primary_log: dict[str, np.ndarray]  # the primary's log rows: rid, topic, partition, offset
    primary_log_topics: Vocabulary
    notes: list[str] = field(default_factory=list)
    nkeys: int = 1  # kid = producer code * nkeys + key code
    #: How to build ``log`` and ``writes``: on first use, since the built-in checks read the
    #: numpy columns in ``arrays`` instead (a table of a million rows costs a pass per column).
    tables: dict[str, Callable[[], pa.Table]] = field(default_factory=dict, repr=False)
    _partitions: tuple | None = None
    _built: dict[str, pa.Table] = field(default_factory=dict, repr=False)

    @property
    def meta(self) -> DrillMeta:
        return self.history.meta

    @property
    def log(self) -> pa.Table:
        """The serving log in reading order per key (module docstring), one row per rank."""
        return self._table("log")

    @property
    def writes(self) -> pa.Table:
        """The ledger as stored plus rid, kid, first/last rank and the verdicts (module docstring)."""
        return self._table("writes")

    def _table(self, name: str) -> pa.Table:
        if name not in self._built:
            self._built[name] = self.tables[name]()
        return self._built[name]

    def found(self, ranks: list[int]) -> list[Found]:
        """The serving-log records at these ranks, with names and positions, as evidence."""
        if not len(ranks):
            return []
        at = np.asarray(ranks, np.int64)
        a = self.arrays
        producer, key = np.divmod(a["log_kid"][at], self.nkeys)
        serving = self.meta.serving
        p, k = self.producers.values, self.keys.values
        names = self.topic_names
        return [
            quick(
                Found,
                producer=p[pc_],
                key=k[kc],
                seq=seq,
                gseq=gseq,
                at=quick(Position, cluster=serving, topic=names[t], partition=part, offset=off),
            )
            for pc_, kc, seq, gseq, t, part, off in zip(
                producer.tolist(),
                key.tolist(),
                a["log_seq"][at].tolist(),
                a["log_gseq"][at].tolist(),
                a["log_tcode"][at].tolist(),
                a["log_partition"][at].tolist(),
                a["log_offset"][at].tolist(),
                strict=True,
            )
        ]

    def by_partition(self) -> tuple:
        """Log ranks sorted by (topic, partition, offset), with the sorted slot and offset keys.

        Sorted from the log's stored order (nearly sorted already: timsort), then
        mapped to ranks; equal positions (a log read back twice) keep rank order.
        Computed on first use and kept (the checker asks for it early, in the thread that
        has time to spare, so the continuity measurement finds it done).
        """
        if self._partitions is None:
            s = self.serving_rows
            n = len(s["offset"])
            width = int(s["partition"].max()) + 1 if n else 1
            slot = s["tcode"].astype(np.int64) * width + s["partition"]
            offset = s["offset"]
            span = int(offset.max()) - int(offset.min()) + 1 if n else 1
            rank_of_row = np.empty(n, np.int64)
            rank_of_row[self.arrays["log_row"]] = np.arange(n, dtype=np.int64)
            if n and int(offset.min()) >= 0 and int(slot.max()) < (1 << 62) // span:
                packed = slot * span + offset
                if (packed[1:] > packed[:-1]).all():  # stored by position already (usual)
                    self._partitions = (width, rank_of_row, slot, offset)
                    return self._partitions
                rows = np.argsort(packed, kind="stable")
                packed = packed[rows]
                if not (packed[1:] == packed[:-1]).any():
                    order = rank_of_row[rows]
                    self._partitions = (width, order, slot[rows], offset[rows])
                    return self._partitions
            a = self.arrays
            ranked = a["log_tcode"].astype(np.int64) * width + a["log_partition"]
            order = np.lexsort((a["log_offset"], ranked))
            self._partitions = (width, order, ranked[order], a["log_offset"][order])
        return self._partitions

    def _bounds(self, topic: str, partition: int) -> tuple[int, int]:
        width, _, slots, _ = self.by_partition()
        if topic not in self.topic_names or not 0 <= partition < width:
            return 0, 0
        slot = self.topic_names.index(topic) * width + partition
        lo, hi = np.searchsorted(slots, [slot, slot + 1])
        return int(lo), int(hi)

    def partition_records(self, topic: str, partition: int) -> pa.Table:
        """The serving log rows of one partition (here: by offset)."""
        lo, hi = self._bounds(topic, partition)
        return self.log.take(self.by_partition()[1][lo:hi])

    def serving_partitions(self) -> set[tuple[str, int]]:
        """The serving (topic, partition) pairs holding records of ours."""
        width, _, slots, _ = self.by_partition()
        distinct = slots[np.flatnonzero(np.diff(slots, prepend=-1))]  # sorted: no np.unique sort
        return {(self.topic_names[s // width], s % width) for s in distinct.tolist()}

    def first_offset(self, topic: str, partition: int) -> int | None:
        """The lowest offset holding a record of ours in a serving partition."""
        lo, hi = self._bounds(topic, partition)
        return int(self.by_partition()[3][lo]) if hi > lo else None

    def _between(self, topic: str, partition: int, low: int, high: int) -> tuple[int, int]:
        lo, hi = self._bounds(topic, partition)
        offsets = self.by_partition()[3][lo:hi]
        a, b = np.searchsorted(offsets, [low, high])
        return lo + int(a), lo + max(int(a), int(b))

    def count_between(self, topic: str, partition: int, low: int, high: int) -> int:
        """How many records (not offsets) lie at offsets in [low, high)."""
        a, b = self._between(topic, partition, low, high)
        return b - a

    def records_between(self, topic: str, partition: int, low: int, high: int) -> pa.Table:
        """Records (not offsets: markers leave gaps) at offsets in [low, high), by offset."""
        return self.log.take(self.ranks_between(topic, partition, low, high))

    def ranks_between(self, topic: str, partition: int, low: int, high: int) -> np.ndarray:
        """The log ranks of ``records_between``, by offset: what evidence needs, without a take
        of every log column."""
        a, b = self._between(topic, partition, low, high)
        return self.by_partition()[1][a:b]


def _check_ids(gseq: np.ndarray, seq: np.ndarray) -> None:
    if len(gseq) and int(gseq.max()) >= 1 << GSEQ_BITS:
        raise HistoryError(f"gseq must be below 2**{GSEQ_BITS}")
    if len(seq) and int(seq.max()) >= SEQ_LIMIT:
        raise HistoryError("seq must be below 2**31")


def build_index(history: History, pool: ThreadPoolExecutor | None = None) -> HistoryIndex:
    """Encode identities, order the serving log per key and judge every write, once.

    Two threads (numpy and arrow release the GIL, so on two cores they overlap): a second
    one, in this order, settles the vocabularies, converts the writes' own columns and judges
    every write against the log (dense ids, occurrences); this one extracts, orders and
    gathers the serving log into reading order (the judging needs the order), then converts
    the reads and narrows the primary log to the unacknowledged primary sends while the
    writes are judged. Each thread's share is about half of the work, so neither waits long
    for the other. See README, "History checker".

    ``pool``: a one-thread executor for the second thread's share; default, one of its own.
    The checker passes the one its detectors use next: glibc gives each thread a heap (arena)
    of its own, so only that same thread reuses the pages its freed arrays leave behind.
    """
    meta = history.meta
    notes: list[str] = []
    writes_t, log_t, reads_t = (history.stored(n) for n in ("writes", "log", "reads"))
    if pool is not None:
        return _build(history, meta, notes, writes_t, log_t, reads_t, pool)
    own = ThreadPoolExecutor(max_workers=1)
    try:
        return _build(history, meta, notes, writes_t, log_t, reads_t, own)
    finally:
        own.shutdown(wait=False)  # the tasks still run; no thread outlives them


def _build(
    history: History,
    meta: DrillMeta,
    notes: list[str],
    writes_t: pa.Table,
    log_t: pa.Table,
    reads_t: pa.Table,
    pool: ThreadPoolExecutor,
) -> HistoryIndex:
    naming = pool.submit(_vocabularies, writes_t, log_t, reads_t)

    # The serving log: rows of the serving cluster in topics we serve.
    serving_t = rows_where(log_t, equal_to(log_t["cluster"], meta.serving))
    # Codes in order of first appearance: code i is the i-th topic met in the serving log.
    tcode, l_topics = codes(serving_t["topic"])
    topic_names = list(l_topics.values)
    origins = []
    for name in topic_names:
        if not meta.failover:
            origin = (name, Role.REPLICATED) if name in meta.topics else None
        else:
            origin = meta.mapping.origin(name, meta.topics)
        origins.append(origin)
    ptopic_of = np.array([meta.topics.index(o[0]) if o else -1 for o in origins] + [-1], np.int32)
    role_of = np.array([ROLE_CODES[o[1]] if o else -1 for o in origins] + [-1], np.int8)
    if not (ptopic_of[: len(topic_names)] >= 0).all():  # else every row is kept: no pass
        keep = ptopic_of[tcode] >= 0
        serving_t = rows_where(serving_t, keep)
        tcode = tcode[keep]
        del keep
    s = {
        "seq": ints(serving_t["seq"]),
        "gseq": ints(serving_t["gseq"]),
        "tcode": tcode,
        "partition": ints(serving_t["partition"]),
        "offset": ints(serving_t["offset"]),
    }
    _check_ids(s["gseq"], s["seq"])
    producers, keys, w_p, w_k, r_p = naming.result()
    nkeys = max(len(keys), 1)
    w_gseq = ints(writes_t["gseq"])
    side = pool.submit(_side, meta, writes_t, w_p, w_k, w_gseq, nkeys)
    pcode = producers.encode(serving_t["producer"])
    kid = _affine(pcode, nkeys, keys.encode(serving_t["key"]), 0)
    del serving_t
    order = _reading_order(kid, ptopic_of[tcode], s["partition"], role_of[tcode], s["offset"])
    kid_o = _by_key(kid, order)
    # Writes, judged against the serving log (second thread).
    judging = pool.submit(_judge, kid_o, nkeys, s["gseq"], order, w_p, w_gseq, len(producers))
    del pcode
    # Into reading order: a gather per column read through ``order`` (random access, the costly
    # part); what follows from the topic and partition is looked up after ordering instead.
    tcode_o, partition_o, offset_o = tcode[order], s["partition"][order], s["offset"][order]
    role_o = role_of[tcode_o]
    end, end_valid = _end_offsets(history, tcode_o, partition_o, topic_names, notes)
    replicated = role_o == ROLE_CODES[Role.REPLICATED]
    below = replicated & (~end_valid | (offset_o < end)) if meta.failover else replicated
    del replicated
    a = {
        "log_row": order,
        "log_tcode": tcode_o,
        "log_partition": partition_o,
        "log_offset": offset_o,
        "log_seq": s["seq"][order],
        "log_kid": kid_o,
        "log_role": role_o,
        "log_end": end,
        "log_end_valid": end_valid,
        "log_below": below,
    }
    del kid, s["seq"], s["gseq"]  # peak memory: only the reading-order copies are kept
    w = side.result()  # the writes' own columns (see _side)
    # While the writes are judged: the reads, and the primary log's rows of unacknowledged
    # primary sends.
    r = _reads_columns(reads_t)
    primary_t, p_rid = _unacked_primary_log(meta, log_t, producers, w)
    j = judging.result()
    a["log_rid"], a["log_gseq"] = j["rid_o"], j["gseq_o"]
    a["log_repeated"], a["log_first"] = j["repeated"], j["first"]
    below_any = np.bincount(j["dense_log"][below], minlength=j["size"]) > 0
    repeated = j["repeated_ids"]
    occurrences = pa.table(
        {
            "rid": pa.array(j["rid_of"](repeated)),
            "rid_count": pa.array(j["count_repeated"]),
            "below_e_any": pa.array(below_any[repeated]),
            "rank_min": pa.array(j["rank_min_repeated"], pa.int64()),
            "rank_max": pa.array(j["rank_max_repeated"], pa.int64()),
        }
    )
    found, first_rank, last_rank = j["found"], j["first_rank"], j["last_rank"]
    found_below = below_any[j["dense_writes"]] if meta.failover else None
    del j, below_any  # peak memory
    from_primary, acked, split_brain = w["from_primary"], w["acked"], w["split_brain"]
    # A primary write counts only if it reached the standby before the cutover snapshot (below E).
    present = np.where(from_primary, found_below, found) if meta.failover else found
    lost = acked & ~split_brain & ~present
    a.update(
        {
            "w_rid": w["rid"],
            "w_cluster": w["cluster"],
            "w_from_primary": from_primary,
            "w_found": found,
            "w_last_rank": last_rank,
            "w_offset_valid": w["offset_valid"],
            "w_kid": w["kid"],
            "w_seq": w["seq"],
            "w_segment": w["segment"],
            "w_present": present,
            "w_lost": lost,
            "w_first_rank": first_rank,
            "w_acked": acked,
            "w_split_brain": split_brain,
            "w_ack_time": w["ack_time"],
            "w_topic": w["topic"],
            "w_partition": w["partition"],
            "w_offset": w["offset"],
        }
    )
    a["w_clusters"] = w["clusters"]
    a["w_topics"] = w["topics"]
    # Reads, encoded for the continuity measurement.
    _check_ids(r["gseq"], r["seq"])  # after the serving log's and the writes' (as always)
    reads = Reads(
        r["group"],
        r["groups"],
        r["cluster"],
        r["clusters"],
        r["topic"],
        r["topics"],
        r["partition"],
        r["offset"],
        _affine(r_p, 1 << GSEQ_BITS, r["gseq"], 0),
        r["produced_at"],
        r["poll_time"],
    )
    # The primary's log rows of found primary sends never acknowledged (so with no offset in the
    # ledger): where the primary put them, for the continuity measurement. The primary log
    # was narrowed to the unacknowledged primary sends above; here, to those found.
    unlocated = from_primary & found & ~w["offset_valid"]
    if unlocated.any() and primary_t is not None:
        hit = np.flatnonzero(member(p_rid, w["rid"][unlocated]))
        primary_t = primary_t.take(pa.array(hit))
        p_topic, p_topics = codes(primary_t["topic"])
        primary_log = {
            "rid": p_rid[hit],
            "topic": p_topic,
            "partition": ints(primary_t["partition"]),
            "offset": ints(primary_t["offset"]),
        }
    else:
        p_topics = Vocabulary()
        primary_log = {
            name: np.empty(0, np.int64) for name in ("rid", "topic", "partition", "offset")
        }
    return HistoryIndex(
        history=history,
        occurrences=occurrences,
        topic_names=topic_names,
        producers=producers,
        keys=keys,
        serving_rows=s,
        nkeys=nkeys,
        arrays=a,
        reads=reads,
        primary_log=primary_log,
        primary_log_topics=p_topics,
        notes=notes,
        tables={
            "log": lambda: _log_table(a, ptopic_of),
            "writes": lambda: _writes_table(writes_t, a),
        },
    )


def _log_table(a: dict, ptopic_of: np.ndarray) -> pa.Table:
    """``HistoryIndex.log``: the serving log in reading order, narrow (integers only)."""
    return pa.table(
        {
            "row": pa.array(a["log_row"], pa.int64()),
            "tcode": pa.array(a["log_tcode"].astype(np.int32)),
            "partition": pa.array(a["log_partition"].astype(np.int32)),
            "offset": pa.array(a["log_offset"]),
            "seq": pa.array(a["log_seq"]),
            "rid": pa.array(a["log_rid"]),
            "kid": pa.array(a["log_kid"]),
            "ptopic": pa.array(ptopic_of[a["log_tcode"]].astype(np.int32)),
            "role": pa.array(a["log_role"].astype(np.int8)),
            "end_offset": pa.array(a["log_end"], pa.int64(), mask=~a["log_end_valid"]),
            "below_e": pa.array(a["log_below"]),
            "rank": pa.array(np.arange(len(a["log_row"]), dtype=np.int64)),
        }
    )


def _writes_table(writes_t: pa.Table, a: dict) -> pa.Table:
    """``HistoryIndex.writes``: the ledger as stored, with its identities and verdicts."""
    found = a["w_found"]
    return (
        writes_t.append_column("rid", pa.array(a["w_rid"]))
        .append_column("kid", pa.array(a["w_kid"]))
        .append_column("first_rank", pa.array(a["w_first_rank"], pa.int64(), mask=~found))
        .append_column("last_rank", pa.array(a["w_last_rank"], pa.int64(), mask=~found))
        .append_column("found", pa.array(found))
        .append_column("acked", pa.array(a["w_acked"]))
        .append_column("segment", pa.array(a["w_segment"]))
        .append_column("split_brain", pa.array(a["w_split_brain"]))
        .append_column("present", pa.array(a["w_present"]))
        .append_column("lost", pa.array(a["w_lost"]))
    )


def _reads_columns(reads_t: pa.Table) -> dict:
    """The reads as numpy, strings as codes."""
    r: dict = {}
    r["group"], r["groups"] = codes(reads_t["group"])
    r["cluster"], r["clusters"] = codes(reads_t["cluster"])
    r["topic"], r["topics"] = codes(reads_t["topic"])
    for name in ("partition", "offset", "gseq", "seq"):
        r[name] = ints(reads_t[name])
    r["produced_at"], r["poll_time"] = floats(reads_t["produced_at"]), floats(reads_t["poll_time"])
    return r


def _vocabularies(
    writes_t: pa.Table, log_t: pa.Table, reads_t: pa.Table
) -> tuple[Vocabulary, Vocabulary, np.ndarray, np.ndarray, np.ndarray]:
    """Producers and keys, coded in order of first appearance over writes, log, reads, and the
    codes of the writes' producers and keys and of the reads' producers (second thread)."""
    producers, keys = Vocabulary(), Vocabulary()
    w_p, w_k = producers.encode(writes_t["producer"]), keys.encode(writes_t["key"])
    # The log is only learnt here: only its serving rows are encoded (build_index).
    producers.learn(log_t["producer"])
    keys.learn(log_t["key"])
    # The reads' keys are not encoded: no key code is looked up from a read, and a key only a
    # read holds would be numbered after every key of the log, leaving their order unchanged.
    r_p = producers.encode(reads_t["producer"])
    producers.array(), keys.array()  # built here, once: both threads encode with them
    return producers, keys, w_p, w_k, r_p


def _side(
    meta: DrillMeta,
    writes_t: pa.Table,
    w_p: np.ndarray,
    w_k: np.ndarray,
    w_gseq: np.ndarray,
    nkeys: int,
) -> dict:
    """The writes' own columns (second thread): identities, cluster, acknowledgement and
    split-brain verdict, and the ledger's positions."""
    out: dict = {}
    out["seq"] = ints(writes_t["seq"])
    _check_ids(w_gseq, out["seq"])
    out["rid"] = _affine(w_p, 1 << GSEQ_BITS, w_gseq, 0)
    out["kid"] = _affine(w_p, nkeys, w_k, 0)
    out["cluster"], out["clusters"] = codes(writes_t["cluster"])
    from_primary = out["cluster"] == out["clusters"].code(meta.primary)
    out["from_primary"] = from_primary
    out["acked"] = valid(writes_t["ack_time"])
    out["ack_time"] = floats(writes_t["ack_time"])
    t_fence = meta.instants.t_fence
    if meta.failover and t_fence is not None:
        out["split_brain"] = from_primary & out["acked"] & (out["ack_time"] > t_fence)
    else:
        out["split_brain"] = np.zeros(len(w_gseq), bool)
    out["segment"] = np.where(from_primary, np.int8(SEGMENT_PRIMARY), np.int8(SEGMENT_SERVING))
    out["offset_valid"] = valid(writes_t["offset"])
    out["topic"], out["topics"] = codes(writes_t["topic"])
    out["partition"], out["offset"] = ints(writes_t["partition"]), ints(writes_t["offset"])
    out["w_gseq"] = w_gseq
    return out


def _judge(
    kid_o: np.ndarray,
    nkeys: int,
    gseq: np.ndarray,
    order: np.ndarray,
    w_p: np.ndarray,
    w_gseq: np.ndarray,
    producers: int,
) -> dict:
    """Every write against the serving log (second thread): the log's identities in reading
    order, dense ids, each record's occurrences, and per write whether it was found and its
    first and last rank. The producer codes in reading order follow from the key ids
    (``kid = producer * nkeys + key``): a division, not a gather."""
    out: dict = {}
    pcode_o, out["gseq_o"] = kid_o // nkeys, gseq[order]
    out["rid_o"] = _affine(pcode_o, 1 << GSEQ_BITS, out["gseq_o"], 0)
    dense_log, dense_writes, size, rid_of = _dense(
        [(pcode_o, out["gseq_o"]), (w_p, w_gseq)], producers
    )
    del pcode_o
    count, rank_min, rank_max, out["repeated"], out["first"] = _occurrences(dense_log, size)
    repeated = np.flatnonzero(count > 1)
    out["repeated_ids"], out["count_repeated"] = repeated, count[repeated]
    out["rank_min_repeated"], out["rank_max_repeated"] = rank_min[repeated], rank_max[repeated]
    out["found"] = count[dense_writes] > 0
    out["first_rank"], out["last_rank"] = rank_min[dense_writes], rank_max[dense_writes]
    out.update(dense_log=dense_log, dense_writes=dense_writes, size=size, rid_of=rid_of)
    return out


def _unacked_primary_log(
    meta: DrillMeta, log_t: pa.Table, producers: Vocabulary, w: dict
) -> tuple[pa.Table | None, np.ndarray | None]:
    """The primary log's rows of primary sends never acknowledged, and their rids (``w``: the
    writes' own columns, ``_side``): candidates by gseq alone (``np.isin`` per chunk, by a
    table of the gseqs wanted when their range is small; no copy of the primary log), then
    the exact identity of those few. build_index keeps those found in the serving log."""
    unacked = w["from_primary"] & ~w["offset_valid"]
    if not unacked.any():
        return None, None
    primary_t = rows_where(log_t, equal_to(log_t["cluster"], meta.primary))
    gseqs = np.unique(w["w_gseq"][unacked])
    candidates = [np.zeros(0, bool)] + [
        np.isin(chunk.to_numpy(zero_copy_only=False), gseqs) for chunk in primary_t["gseq"].chunks
    ]
    primary_t = primary_t.filter(pa.array(np.concatenate(candidates)))
    p_rid = _affine(
        producers.encode(primary_t["producer"]), 1 << GSEQ_BITS, ints(primary_t["gseq"]), 0
    )
    hit = np.flatnonzero(member(p_rid, w["rid"][unacked]))
    return primary_t.take(pa.array(hit)), p_rid[hit]


def _dense(
    pairs: list[tuple[np.ndarray, np.ndarray]], producers: int
) -> tuple[np.ndarray, np.ndarray, int, Callable[[np.ndarray], np.ndarray]]:
    """Dense ids for (producer code, gseq) pairs of two arrays, their count, and id -> rid.

    Arithmetic (producer * span + gseq) when the gseqs are a compact range, as
    producers number them; a sort (np.unique) otherwise.
    """
    gseqs = [g for _, g in pairs if len(g)]
    if gseqs:
        low = min(int(g.min()) for g in gseqs)
        span = max(int(g.max()) for g in gseqs) - low + 1
    else:
        low, span = 0, 1
    rows = sum(len(g) for _, g in pairs)
    if span * max(producers, 1) <= 4 * rows + (1 << 20):
        ids = [_affine(p, span, g, -low) for p, g in pairs]

        def rid_of(dense: np.ndarray) -> np.ndarray:
            return ((dense // span) << GSEQ_BITS) + dense % span + low

        return ids[0], ids[1], span * max(producers, 1), rid_of
    rids = [_affine(p, 1 << GSEQ_BITS, g, 0) for p, g in pairs]
    distinct, inverse = np.unique(np.concatenate(rids), return_inverse=True)
    return inverse[: len(rids[0])], inverse[len(rids[0]) :], len(distinct), distinct.__getitem__


def _affine(high: np.ndarray, factor: int, low: np.ndarray, offset: int) -> np.ndarray:
    """``high * factor + low + offset`` in one new int64 array (no temporaries: at 1M rows each
    temporary is 8 MB of fresh pages to fault in)."""
    out = np.multiply(high, factor, dtype=np.int64)  # widened in the loop, not by a copy
    out += low
    if offset:
        out += offset
    return out


def _occurrences(
    dense: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per dense id (of ``size``): its count and its first and last rank (``len(dense)`` and -1
    when absent); per rank: whether its record occurs more than once, and whether it is the
    first occurrence.

    Why not ``np.minimum.at`` over every row: almost every record occurs once, so
    one scatter places each rank (exact where an id occurs once), and only the
    rows of repeated ids are reduced again: a few passes instead of two
    ``ufunc.at`` and a gather over every row (about 3x faster at 1M rows).
    Ranks are int32 below 2**31 rows: half the pages to fault in and to stream (issue 22).
    """
    n = len(dense)
    rank = np.int32 if n < 2**31 - 1 else np.int64
    count = np.bincount(dense, minlength=size)
    first = np.full(size, n, rank)
    first[dense] = np.arange(n, dtype=rank)
    repeated = count[dense] > 1
    rows = np.flatnonzero(repeated).astype(rank)
    ids = dense[rows]
    first[ids] = n
    np.minimum.at(first, ids, rows)
    last = np.where(count > 0, first, -1)
    last[ids] = -1
    np.maximum.at(last, ids, rows)
    is_first = np.ones(n, bool)
    is_first[rows] = first[ids] == rows
    return count, first, last, repeated, is_first


def _reading_order(
    kid: np.ndarray, ptopic: np.ndarray, partition: np.ndarray, role: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """Stable sort indices by key, primary topic, partition, role, offset.

    The last four are packed into one integer when they fit in 63 bits and
    sorted first (timsort: a log read back partition by partition is nearly in
    that order already); then stable 16-bit radix passes over the key order
    the result by key. Otherwise one lexsort over the five columns.
    """
    n = len(kid)
    if not n:
        return np.empty(0, np.int64)
    rest = [ptopic, partition, role, offset]
    if min(int(c.min()) for c in (kid, *rest)) >= 0:
        bits = [int(c.max()).bit_length() for c in rest]
        if sum(bits) <= 62 and int(kid.max()) < 1 << 48:
            packed = rest[0].astype(np.int64)  # a copy: shifted in place below
            for column, b in zip(rest[1:], bits[1:], strict=True):
                packed <<= b
                packed |= column
            order = np.argsort(packed, kind="stable")
            del packed
            for shift in range(0, max(int(kid.max()).bit_length(), 1), 16):
                # The 16-bit digit first, then gathered: 2 bytes a row through ``order``, not 8.
                digit = (kid >> shift).astype(np.uint16) if shift else kid.astype(np.uint16)
                order = order[np.argsort(digit[order], kind="stable")]
            return order
    return np.lexsort((offset, role, partition, ptopic, kid))


def _by_key(kid: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``kid[order]`` for the reading order, which sorts by key first: non-decreasing, so built
    from a count per key id when the ids are dense (sequential passes, where a gather reads
    8 bytes at a random place per row); otherwise the gather."""
    n = len(kid)
    if n and int(kid.min()) >= 0 and int(kid.max()) < 4 * n + (1 << 20):
        counts = np.bincount(kid)
        return np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return kid[order]


def _end_offsets(
    history: History,
    tcode: np.ndarray,
    partition: np.ndarray,
    topic_names: list[str],
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """E of each kept serving row's partition, and whether one was recorded (never without failover)."""
    meta = history.meta
    n = len(tcode)
    if not meta.failover or not n:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    eo = plain(history.stored("end_offsets"))
    eo = eo.filter(pc.equal(eo["cluster"], meta.serving))
    known = {(r["topic"], r["partition"]): r["end_offset"] for r in eo.to_pylist()}
    replicated_topics = {meta.mapping.replicated(t) for t in meta.topics}
    width = int(partition.max()) + 1
    slot = tcode.astype(np.int64) * width + partition
    is_replicated = np.array([t in replicated_topics for t in topic_names], bool)
    seen = np.flatnonzero(
        np.bincount(slot[is_replicated[tcode]], minlength=len(topic_names) * width)
    )
    pairs = sorted((topic_names[x // width], x % width) for x in seen.tolist())
    for name, part in pairs:
        if (name, part) not in known:
            notes.append(
                f"no end offset E recorded for {name}/{part}: "
                "every record found there counts as replicated before cutover"
            )
    lookup = np.zeros(len(topic_names) * width, np.int64)
    recorded = np.zeros(len(topic_names) * width, bool)
    for (name, part), end in known.items():
        if name in topic_names and 0 <= part < width:
            lookup[topic_names.index(name) * width + part] = end
            recorded[topic_names.index(name) * width + part] = True
    return lookup[slot], recorded[slot]

"""Consumer continuity: did each group resume in the serving region where it left off?

Per group g and serving partition p (DESIGN.md):

- ideal(g,p) = 1 + the highest standby offset whose record g had committed on
  the primary before it stopped serving g: the first record g still owed. That is
  T_fault for a region lost outright (nothing commits after it), but a primary that
  keeps serving through a partial fault (packet loss, a blocked endpoint, a cut
  backbone) acknowledges commits until the fence, and a record committed then is
  processed, not owed: with a T_fault cut, a group resumed past it (MirrorMaker 2
  synced the later commit) would count it as skipped, loss by offset, when nothing
  was lost. So: commits the primary acknowledged before T_fence (T_fault when there
  was no fence, and in a drill without failover, where after T_fault is resumption).
  For a topic written only after cutover (PREFIXED policy), the first record there.
- resume(g,p) = the offset of the first record g consumed in the serving
  region, with its source (synced group offsets, checkpoint translation or
  auto.offset.reset); the recorded position when g consumed nothing there.
- duplicates = records in [resume, ideal); skipped = records in [ideal, resume).
  Records, not offset differences: transaction markers occupy offsets.
- duplicates_processed = records g consumed in the serving region that it had
  already consumed on the primary: what the application feels, including
  records processed but not yet committed at the fault.

The committed records are followed by identity, not by offset arithmetic:
a commit names a primary offset, the primary's ledger names the record there,
and the standby log says where MM2 put that record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from drills.history.columns import first_seen, member
from drills.history.index import ROLE_CODES, HistoryIndex, Reads
from drills.history.model import ReplicationPolicy, ResumeSource, Role

_KEYS = ["group", "topic", "partition"]


@dataclass(frozen=True)
class Continuity:
    group: str
    topic: str  # the serving topic
    partition: int
    role: str  # Role: replicated from the primary, or written locally after cutover
    committed: int | None  # g's last primary commit before T_fence (Kafka's next offset)
    ideal: int
    resume: int | None  # None: g consumed nothing there and no position was recorded
    resume_source: str
    observed: bool  # resume is the offset of a record g consumed (not a recorded position)
    duplicates: int
    skipped: int
    duplicates_processed: int


def measure_continuity(index: HistoryIndex, notes: list[str]) -> list[Continuity]:
    meta = index.meta
    t_fault = meta.instants.t_fault
    reads = index.reads
    primary_reads = reads.select(reads.cluster == reads.clusters.code(meta.primary))
    serving_reads = reads.select(reads.cluster == reads.clusters.code(meta.serving))
    if not meta.failover and t_fault is not None:
        # One cluster: before the fault is processing, after it is resumption.
        primary_reads = primary_reads.select(primary_reads.poll_time < t_fault)
        serving_reads = serving_reads.select(serving_reads.poll_time >= t_fault)

    committed = _committed(index)
    owed = _highest_committed_in_standby(index, committed, primary_reads)
    first_read = _first_reads(serving_reads)
    positions = _recorded_positions(index)
    processed = _processed_duplicates(serving_reads, primary_reads)

    units = _units(index, committed, primary_reads, serving_reads, positions)
    # Without failover the same consumer keeps its in-memory position through the
    # fault: what it read before the fault is behind it, committed or not, so the
    # first record it still owes comes after its last pre-fault read.
    read_up_to: dict[tuple[str, str, int], int] = {}
    if not meta.failover and len(primary_reads):
        read_up_to = _per_unit(primary_reads, primary_reads.offset, np.maximum, -1)
    results = []
    for group, ptopic, partition, topic, role in sorted(units):
        start = index.first_offset(topic, partition) or 0
        highest = owed.get((group, ptopic, partition)) if role is Role.REPLICATED else None
        ideal = start if highest is None else highest + 1
        if (group, topic, partition) in read_up_to:
            ideal = max(ideal, read_up_to[(group, topic, partition)] + 1)
        position, source = positions.get((group, topic, partition), (None, ResumeSource.UNKNOWN))
        resume = first_read.get((group, topic, partition))
        observed = resume is not None
        if resume is None:
            resume = position
        if resume is None:
            notes.append(f"{group} never resumed on {topic}/{partition}: no read, no position")
        results.append(
            Continuity(
                group=group,
                topic=topic,
                partition=partition,
                role=role.value,
                committed=committed.get((group, ptopic, partition))
                if role is Role.REPLICATED
                else None,
                ideal=ideal,
                resume=resume,
                resume_source=str(source),
                observed=observed,
                duplicates=_count(index, topic, partition, resume, ideal),
                skipped=_count(index, topic, partition, ideal, resume),
                duplicates_processed=processed.get((group, topic, partition), 0),
            )
        )
    return results


def _count(
    index: HistoryIndex, topic: str, partition: int, low: int | None, high: int | None
) -> int:
    if low is None or high is None or low >= high:
        return 0
    return index.count_between(topic, partition, low, high)


def _unit_keys(reads: Reads) -> tuple[np.ndarray, int, int]:
    """One int64 per read naming its (group, topic, partition), and the factors to decode it."""
    topics = max(len(reads.topics), 1)
    width = int(reads.partition.max()) + 1 if len(reads) else 1
    return (
        _unit_key(reads, topics, width),
        topics,
        width,
    )


def _unit_key(reads: Reads, topics: int, width: int) -> np.ndarray:
    """``(group * topics + topic) * width + partition`` in one int64 array (no temporaries)."""
    key = np.multiply(reads.group, topics, dtype=np.int64)
    key += reads.topic
    key *= width
    key += reads.partition
    return key


def _decode_unit(reads: Reads, key: int, topics: int, width: int) -> tuple[str, str, int]:
    gt, partition = divmod(key, width)
    group, topic = divmod(gt, topics)
    return reads.groups.values[group], reads.topics.values[topic], partition


def _per_unit(reads: Reads, values: np.ndarray, ufunc, initial) -> dict[tuple[str, str, int], int]:
    """ufunc-reduce ``values`` per (group, topic, partition) of ``reads`` (a max or a min)."""
    if not len(reads):
        return {}
    keys, topics, width = _unit_keys(reads)
    distinct, inverse = np.unique(keys, return_inverse=True)
    out = np.full(len(distinct), initial, values.dtype)
    ufunc.at(out, inverse, values)
    return {
        _decode_unit(reads, k, topics, width): v
        for k, v in zip(distinct.tolist(), out.tolist(), strict=True)
    }


def _committed(index: HistoryIndex) -> dict[tuple[str, str, int], int]:
    """Each group's last committed offset per primary partition when the primary stopped
    serving it (`commits_until`)."""
    meta = index.meta
    commits = index.history.commits
    keep = pc.equal(commits["cluster"], meta.primary)
    until = commits_until(meta)
    if until is not None:
        keep = pc.and_(keep, pc.less_equal(commits["commit_time"], until))
    commits = commits.filter(keep).sort_by([("commit_time", "ascending")])
    # The last offset per key in commit order, keys in order of first appearance (as a
    # group_by's "last" gives them): a dict over a few dozen rows, where a group_by starts
    # arrow's query engine (~13 ms on its first use in a process).
    last: dict[tuple[str, str, int], int] = {}
    for r in commits.select([*_KEYS, "offset"]).to_pylist():
        last[(r["group"], r["topic"], r["partition"])] = r["offset"]
    return last


def commits_until(meta) -> float | None:
    """The last instant a primary commit counts towards ideal: T_fence in a failover (the
    primary acknowledged commits until it was fenced), T_fault otherwise (without failover,
    after T_fault is the resumption being judged; with no fence recorded, the conservative
    instant)."""
    t = meta.instants
    if meta.failover and t.t_fence is not None:
        return t.t_fence
    return t.t_fault


#: Writes per block in ``_highest_committed_in_standby``: its temporaries stay in the cache and
#: take no fresh pages (a million-row temporary is 2,000 page faults; issue 22).
BLOCK = 1 << 16


def _highest_committed_in_standby(
    index: HistoryIndex, committed: dict[tuple[str, str, int], int], primary_reads: Reads
) -> dict[tuple[str, str, int], int]:
    """Per (group, primary topic, partition): the highest serving offset of a record g committed.

    The ack ledger names the record at each primary offset; sends never
    acknowledged but found in the standby (indeterminate, yet written) take
    their primary offset from the primary's log or the groups' reads.
    """
    if not committed:
        return {}
    meta = index.meta
    a = index.arrays
    w_topics = a["w_topics"]
    topic_code = np.array([_index(meta.topics, t) for t in w_topics.values] + [-1], np.int64)
    # A record counts where its last occurrence in the serving log is a replicated row of the
    # same partition: per write, one look-up of that partition (-1 otherwise; the last slot is
    # what rank -1, a write never found, reads), then the counted writes' serving offsets.
    ranks = len(a["log_partition"])
    replicated_partition = np.full(ranks + 1, -1, np.int32)
    replicated_partition[:ranks] = a["log_partition"]
    replicated_partition[:ranks][a["log_role"] != ROLE_CODES[Role.REPLICATED]] = -1
    last_rank = a["w_last_rank"]
    every_topic_maps = bool((topic_code[: len(w_topics)] >= 0).all())
    # Where the primary put sends never acknowledged: its log, or what the groups read there.
    unknown = a["w_from_primary"] & a["w_found"] & ~a["w_offset_valid"]
    extra = _unacknowledged_positions(index, primary_reads, unknown, replicated_partition)
    counted = a["w_from_primary"] & a["w_found"] & a["w_offset_valid"]
    if not counted.any() and not any(len(t) for t, *_ in extra):
        return {}
    # One slot per (primary topic, partition); per group, the committed offset of each slot is the
    # bound its rows must lie below, and the highest serving offset below it is kept per slot.
    # Any width above every partition numbers the slots alike.
    width = 1 + max(
        [int(a["w_partition"].max()) if len(last_rank) else 0]
        + [int(p.max()) for _, p, _, _ in extra if len(p)]
    )
    slots = len(meta.topics) * width
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for (group, name, part), bound in committed.items():
        if name in meta.topics and part < width and bound is not None:
            lookup, has = bounds.setdefault(
                group, (np.zeros(slots, np.int64), np.zeros(slots, bool))
            )
            i = meta.topics.index(name) * width + part
            lookup[i], has[i] = bound, True
    none = np.iinfo(np.int64).min  # below every offset: slots left at it had no row
    best = {group: np.full(slots, none, np.int64) for group in bounds}

    def fold(topic: np.ndarray, partition: np.ndarray, offset: np.ndarray, s_offset: np.ndarray):
        slot = topic * width + partition
        for group, (lookup, has) in bounds.items():
            below = np.flatnonzero(has[slot] & (offset < lookup[slot]))
            np.maximum.at(best[group], slot[below], s_offset[below])

    for start in range(0, len(last_rank), BLOCK):
        block = slice(start, start + BLOCK)
        keep = counted[block] & (replicated_partition[last_rank[block]] == a["w_partition"][block])
        if not every_topic_maps:
            keep &= topic_code[a["w_topic"][block]] >= 0
        rows = np.flatnonzero(keep) + start
        fold(
            topic_code[a["w_topic"][rows]],
            a["w_partition"][rows],
            a["w_offset"][rows],
            a["log_offset"][last_rank[rows]],
        )
    for batch in extra:
        fold(*batch)
    highest = {}
    for group in bounds:
        for i in np.flatnonzero(best[group] != none).tolist():
            t, part = divmod(i, width)
            highest[(group, meta.topics[t], part)] = int(best[group][i])
    return highest


def _unacknowledged_positions(
    index: HistoryIndex,
    primary_reads: Reads,
    unknown: np.ndarray,
    replicated_partition: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(primary topic code, partition, primary offset, serving offset) of the ``unknown`` writes
    (primary sends found in the serving log, never acknowledged) that count: from the groups'
    primary reads, then from the primary's log (``_highest_committed_in_standby``)."""
    if not unknown.any():
        return []
    meta = index.meta
    a = index.arrays
    wanted = a["w_rid"][unknown]
    wanted_rank = a["w_last_rank"][unknown]
    plog = index.primary_log
    plog_code = np.array(
        [_index(meta.topics, t) for t in index.primary_log_topics.values] + [-1], np.int64
    )
    read_code = np.array(
        [_index(meta.topics, t) for t in primary_reads.topics.values] + [-1], np.int64
    )
    sources = [
        (read_code, primary_reads.topic, primary_reads.partition, primary_reads.offset),
        (plog_code, plog["topic"], plog["partition"], plog["offset"]),
    ]
    order = np.argsort(wanted, kind="stable")
    wanted_sorted = wanted[order]
    batches = []
    for (code, t, p, o), r in zip(sources, (primary_reads.rid, plog["rid"]), strict=True):
        hit = np.flatnonzero(member(r, wanted))  # few rows: gather only those
        if not len(hit):
            continue
        ranks = wanted_rank[order[np.searchsorted(wanted_sorted, r[hit])]]
        t, p, o = code[t[hit]], p[hit], o[hit]
        same = (replicated_partition[ranks] == p) & (t >= 0)
        batches.append((t[same], p[same], o[same], a["log_offset"][ranks[same]]))
    return batches


def _index(values: tuple[str, ...], value: str) -> int:
    return values.index(value) if value in values else -1


def _first_reads(serving_reads: Reads) -> dict[tuple[str, str, int], int]:
    """Per (group, topic, partition): the offset of the first read (by poll time, then offset)."""
    if not len(serving_reads):
        return {}
    order = np.lexsort((serving_reads.offset, serving_reads.poll_time))
    keys, topics, width = _unit_keys(serving_reads)
    distinct, first = np.unique(keys[order], return_index=True)
    offsets = serving_reads.offset[order][first]
    return {
        _decode_unit(serving_reads, k, topics, width): o
        for k, o in zip(distinct.tolist(), offsets.tolist(), strict=True)
    }


def _recorded_positions(index: HistoryIndex) -> dict[tuple[str, str, int], tuple[int | None, str]]:
    resumes = index.history.resumes
    resumes = resumes.filter(pc.equal(resumes["cluster"], index.meta.serving))
    return {
        (r["group"], r["topic"], r["partition"]): (r["position"], ResumeSource(r["source"]))
        for r in resumes.to_pylist()
    }


def _processed_duplicates(serving_reads: Reads, primary_reads: Reads) -> dict:
    """Per (group, serving topic, partition): distinct records read there that g had read on the primary."""
    counts: dict[tuple[str, str, int], int] = {}
    if not len(serving_reads) or not len(primary_reads):
        return counts
    for name in sorted({serving_reads.groups.values[g] for g in np.unique(serving_reads.group)}):
        mine = serving_reads.select(serving_reads.group == serving_reads.groups.code(name))
        before = primary_reads.rid[primary_reads.group == primary_reads.groups.code(name)]
        # Probe the big primary side against the (usually small) serving side.
        seen = before[member(before, mine.rid)]
        again = mine.select(member(mine.rid, seen))
        if not len(again):
            continue
        keys, topics, width = _unit_keys(again)
        pairs = np.unique(np.stack([keys, again.rid]), axis=1)
        distinct, number = np.unique(pairs[0], return_counts=True)
        for k, c in zip(distinct.tolist(), number.tolist(), strict=True):
            counts[_decode_unit(again, k, topics, width)] = c
    return counts


def _distinct_units(reads: Reads) -> set[tuple[str, str, int]]:
    if not len(reads):
        return set()
    keys, topics, width = _unit_keys(reads)
    if int(keys.min()) >= 0 and int(keys.max()) <= 4 * len(keys) + (1 << 16):
        distinct = np.flatnonzero(np.bincount(keys))  # few units: a count, not a hash pass
    else:
        distinct = first_seen(keys)
    return {_decode_unit(reads, k, topics, width) for k in distinct.tolist()}


def _units(
    index: HistoryIndex,
    committed: dict,
    primary_reads: Reads,
    serving_reads: Reads,
    positions: dict,
) -> set[tuple[str, str, int, str, Role]]:
    """(group, primary topic, partition, serving topic, role) for every partition a group used."""
    meta = index.meta
    used: set[tuple[str, str, int]] = set(committed)
    used |= _distinct_units(primary_reads)
    touched = set(positions) | _distinct_units(serving_reads)
    for group, topic, partition in touched:
        origin = (
            (topic, Role.REPLICATED)
            if not meta.failover
            else meta.mapping.origin(topic, meta.topics)
        )
        if origin is not None:
            used.add((group, origin[0], partition))
    units = set()
    stored = index.serving_partitions()
    for group, ptopic, partition in used:
        if group not in meta.groups and meta.groups or ptopic not in meta.topics:
            continue
        if not meta.failover:
            units.add((group, ptopic, partition, ptopic, Role.REPLICATED))
            continue
        units.add((group, ptopic, partition, meta.mapping.replicated(ptopic), Role.REPLICATED))
        local = (ptopic, partition)
        if meta.mapping.policy is ReplicationPolicy.PREFIXED and (
            local in stored or (group, *local) in touched
        ):
            units.add((group, ptopic, partition, ptopic, Role.LOCAL))
    return units

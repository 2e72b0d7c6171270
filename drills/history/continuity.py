"""Consumer continuity: did each group resume in the serving region where it left off?

Per group g and serving partition p (DESIGN.md):

- ideal(g,p) = 1 + the highest standby offset whose record g had committed on
  the primary before T_fault: the first record g still owed. For a topic
  written only after cutover (PREFIXED policy), the first record there.
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

from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from drills.history.index import ROLE_CODES, HistoryIndex
from drills.history.model import ReplicationPolicy, ResumeSource, Role

_KEYS = ["group", "topic", "partition"]


@dataclass(frozen=True)
class Continuity:
    group: str
    topic: str  # the serving topic
    partition: int
    role: str  # Role: replicated from the primary, or written locally after cutover
    committed: int | None  # g's committed primary offset at T_fault (Kafka's next offset)
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
    reads = index.ids(index.history.reads)
    primary_reads = reads.filter(pc.equal(reads["cluster"], meta.primary))
    serving_reads = reads.filter(pc.equal(reads["cluster"], meta.serving))
    if not meta.failover and t_fault is not None:
        # One cluster: before the fault is processing, after it is resumption.
        primary_reads = primary_reads.filter(pc.less(primary_reads["poll_time"], t_fault))
        serving_reads = serving_reads.filter(pc.greater_equal(serving_reads["poll_time"], t_fault))

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
    if not meta.failover and primary_reads.num_rows:
        last = primary_reads.group_by(["group", "topic", "partition"], use_threads=False).aggregate(
            [("offset", "max")]
        )
        read_up_to = {
            (r["group"], r["topic"], r["partition"]): r["offset_max"] for r in last.to_pylist()
        }
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
    return index.records_between(topic, partition, low, high).num_rows


def _committed(index: HistoryIndex) -> dict[tuple[str, str, int], int]:
    """Each group's last committed offset per primary partition at T_fault."""
    meta = index.meta
    commits = index.history.commits
    keep = pc.equal(commits["cluster"], meta.primary)
    if meta.instants.t_fault is not None:
        keep = pc.and_(keep, pc.less_equal(commits["commit_time"], meta.instants.t_fault))
    commits = commits.filter(keep).sort_by([("commit_time", "ascending")])
    last = commits.group_by(_KEYS, use_threads=False).aggregate([("offset", "last")])
    return {(r["group"], r["topic"], r["partition"]): r["offset_last"] for r in last.to_pylist()}


def _highest_committed_in_standby(
    index: HistoryIndex, committed: dict[tuple[str, str, int], int], primary_reads: pa.Table
) -> dict[tuple[str, str, int], int]:
    """Per (group, primary topic, partition): the highest serving offset of a record g committed.

    The ack ledger names the record at each primary offset; sends never
    acknowledged but found in the standby (indeterminate, yet written) take
    their primary offset from the primary's log or the groups' reads.
    """
    if not committed:
        return {}
    meta = index.meta
    writes = index.writes
    from_primary = pc.equal(writes["cluster"], meta.primary)
    where = writes.filter(pc.and_(from_primary, writes["found"]))
    known = where.filter(pc.is_valid(where["offset"]))
    unknown = where.filter(pc.is_null(where["offset"]))
    located = known.select(["topic", "partition", "offset", "last_rank"])
    if unknown.num_rows:
        log = index.history.log
        log = log.filter(
            pc.and_(pc.equal(log["cluster"], meta.primary), pc.is_in(log["gseq"], unknown["gseq"]))
        )
        columns = ["topic", "partition", "offset", "rid"]
        sources = [primary_reads.select(columns), index.ids(log).select(columns)]
        seen = pa.table(
            {c: pa.chunked_array([k for t in sources for k in t[c].chunks]) for c in columns}
        )
        seen = seen.filter(pc.is_in(seen["rid"], unknown["rid"]))
        ranks = unknown.select(["rid", "last_rank"])
        extra = seen.join(ranks, keys="rid", join_type="inner").select(located.column_names)
        located = pa.table(
            {
                c: pa.chunked_array(
                    [k for t in (located, extra) for k in t[c].chunks], type=located[c].type
                )
                for c in located.column_names
            }
        )
    serving = index.log.select(["role", "partition", "offset"]).take(located["last_rank"])
    replicated = pc.equal(serving["role"], ROLE_CODES[Role.REPLICATED])
    same = pc.and_(replicated, pc.equal(serving["partition"], located["partition"]))
    located = located.append_column("s_offset", serving["offset"]).filter(same)
    if not located.num_rows:
        return {}
    # One slot per (primary topic, partition); per group, the committed offset of each slot is the
    # bound its rows must lie below, and one group-by takes the highest serving offset per slot.
    code = pc.index_in(located["topic"], value_set=pa.array(meta.topics, pa.string()))
    width = int(pc.max(located["partition"]).as_py()) + 1
    slot = pc.add(pc.multiply(pc.cast(code, pa.int64()), width), located["partition"])
    located = located.select(["offset", "s_offset"]).append_column("slot", slot)
    by_group: dict[str, dict[int, int]] = defaultdict(dict)
    for (group, topic, partition), offset in committed.items():
        if topic in meta.topics and partition < width:
            by_group[group][meta.topics.index(topic) * width + partition] = offset
    highest = {}
    for group, bounds in by_group.items():
        lookup = [bounds.get(i) for i in range(len(meta.topics) * width)]
        bound = pc.take(pa.array(lookup, pa.int64()), located["slot"])
        below = located.filter(pc.less(located["offset"], bound))  # null bound: dropped
        best = below.group_by("slot", use_threads=False).aggregate([("s_offset", "max")])
        for row in best.to_pylist():
            topic, partition = divmod(row["slot"], width)
            highest[(group, meta.topics[topic], partition)] = row["s_offset_max"]
    return highest


def _first_reads(serving_reads: pa.Table) -> dict[tuple[str, str, int], int]:
    ordered = serving_reads.sort_by([("poll_time", "ascending"), ("offset", "ascending")])
    first = ordered.group_by(_KEYS, use_threads=False).aggregate([("offset", "first")])
    return {(r["group"], r["topic"], r["partition"]): r["offset_first"] for r in first.to_pylist()}


def _recorded_positions(index: HistoryIndex) -> dict[tuple[str, str, int], tuple[int | None, str]]:
    resumes = index.history.resumes
    resumes = resumes.filter(pc.equal(resumes["cluster"], index.meta.serving))
    return {
        (r["group"], r["topic"], r["partition"]): (r["position"], ResumeSource(r["source"]))
        for r in resumes.to_pylist()
    }


def _processed_duplicates(serving_reads: pa.Table, primary_reads: pa.Table) -> dict:
    """Per (group, serving topic, partition): distinct records read there that g had read on the primary."""
    counts: dict[tuple[str, str, int], int] = {}
    for group in pc.unique(serving_reads["group"]).to_pylist():
        mine = serving_reads.filter(pc.equal(serving_reads["group"], group))
        before = primary_reads.filter(pc.equal(primary_reads["group"], group))
        # Probe the big primary side against the (usually small) serving side.
        seen = before.filter(pc.is_in(before["rid"], mine["rid"]))["rid"]
        again = mine.filter(pc.is_in(mine["rid"], seen))
        for row in (
            again.group_by(["topic", "partition"])
            .aggregate([("rid", "count_distinct")])
            .to_pylist()
        ):
            counts[(group, row["topic"], row["partition"])] = row["rid_count_distinct"]
    return counts


def _units(
    index: HistoryIndex,
    committed: dict,
    primary_reads: pa.Table,
    serving_reads: pa.Table,
    positions: dict,
) -> set[tuple[str, str, int, str, Role]]:
    """(group, primary topic, partition, serving topic, role) for every partition a group used."""
    meta = index.meta
    used: set[tuple[str, str, int]] = set(committed)
    for row in primary_reads.group_by(_KEYS).aggregate([]).to_pylist():
        used.add((row["group"], row["topic"], row["partition"]))
    touched = set(positions)
    for row in serving_reads.group_by(_KEYS).aggregate([]).to_pylist():
        touched.add((row["group"], row["topic"], row["partition"]))
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

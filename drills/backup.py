"""Backup and restore (`replication.engine: backup-restore`): the last-resort pattern as a drill.

A backup sink copies the primary's topics to an object store; when the primary region is
lost, its topics are restored into the standby from the bucket and the workload moves there.
On the local pair the sink is kdrill-s3backup (components/local/s3backup.py; the README says
why no Kafka Connect S3 connector is used), a part of the stack declared for the drill in the
standby region, writing the standby's own bucket (components/local/backup.py says why there).

Phases (the engine calls these in place of its own where the pattern differs):

- `preflight`: after the engine's preflight, create `restored.<topic>` in the standby (empty,
  the primary's partition counts) and declare the backup sink (returns once it is assigned).
  MirrorMaker 2 runs as the stack runs it until cutover; nothing of the drill reads its copies.
- `cutover`: producers paused; the primary fenced (T_fence); MirrorMaker 2 stopped as any
  cutover stops it (teardown starts it afresh); the backup sink's status read (what it flushed; the sink itself is removed in `clean_up`, a stack
  update the restore need not wait for); the bucket restored into
  `restored.<topic>` (same partition, original key, value, headers and timestamp) and timed;
  the restored topics' end offsets E snapshotted; producers move to the standby's `<topic>`;
  each group resumes `restored.<topic>` by timestamp -- the timestamp of the last record it
  committed in the primary (looked up in the backup by its source offset), then
  `offsets_for_times` -- and reads `<topic>` from the start. RTO's cutover part therefore
  holds the restore.
- `verify`: the standby's `restored.<topic>` and `<topic>` read back; the general checker
  with the mapping `restored.<topic>` (the layout of a prefixed policy), so RPO = records the
  primary acknowledged up to T_fence that are absent from the restored topics below E, and
  continuity counts the duplicates the timestamp resume re-reads; drills/history/backup.py
  recomputes the RPO from the tables and carries the restore's figures (records and bytes per
  second, seconds per GB) into the evidence's `backup_restore` section.
- `clean_up` (from the engine's rollback, which also runs on every exit path): the sink part
  removed if it is still declared.

An `identity` policy is refused: MirrorMaker 2 would copy into the standby's `<topic>`, which
producers write after cutover, and its copies would count as restored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from confluent_kafka import TopicPartition

from drills.history import (
    DUPLICATE,
    LATE,
    LOST_TAIL,
    CheckPolicy,
    DrillMeta,
    Instants,
    ReplicationPolicy,
    ResumeSource,
    TopicMapping,
    check,
    write_history,
)
from drills.history.backup import (
    PATTERN,
    RESTORED_PREFIX,
    RESUME_TIMESTAMP,
    Restore,
    check_backup_restore,
    restored_topic,
)
from drills.journal import DrillRefused, StepFailed
from drills.workload import clock

if TYPE_CHECKING:
    from drills.engine import Drill

FLUSH_INTERVAL_MS = 1000  # the sink writes what it read at most this often


def active(spec) -> bool:
    return spec.replication.engine == PATTERN


def prefix(drill: Drill) -> str:
    return f"backup/{drill.run_id}"


def validate(drill: Drill) -> None:
    """Refused before anything is touched: what a backup-and-restore drill cannot be."""
    if not active(drill.spec):
        return
    t = drill.target
    if not hasattr(t, "start_backup"):
        raise DrillRefused(
            f"replication.engine: backup-restore is not supported on {type(t).__name__} yet "
            "(only the local pair has a backup sink); use engine: mirrormaker2"
        )
    if t.policy == "identity":
        raise DrillRefused(
            f"replication.engine: backup-restore needs the prefixed policy on stack "
            f"{t.facts().stack} (under identity MirrorMaker 2 copies into the topic producers "
            "write in the standby after the restore); set replication.policy: prefixed"
        )


def preflight(drill: Drill) -> None:
    """Restored topics ready in the standby, then the backup sink declared and assigned."""
    if not active(drill.spec):
        return
    t = drill.target
    wanted = {x.name: x.partitions for x in drill.spec.workload.topics}
    with drill._step(
        "preflight", f"back up {sorted(wanted)} to {t.backup_location(prefix(drill))}"
    ) as s:
        t.create_topics(t.standby, {restored_topic(x): n for x, n in wanted.items()})
        drill.backup_started = True  # before the update: clean_up removes a half-made part too
        s.output = {"t_ready": t.start_backup(sorted(wanted), prefix(drill), FLUSH_INTERVAL_MS),
                    "flush_interval_ms": FLUSH_INTERVAL_MS}  # fmt: skip


def clean_up(drill: Drill) -> None:
    """The sink part removed if it is still declared (every exit path)."""
    if not active(drill.spec) or not getattr(drill, "backup_started", False):
        return
    drill.backup_started = False
    with drill._step("rollback", "backup sink off", rollback=True) as s:
        s.output = {"last_status": drill.target.stop_backup()}
        drill.backup_sink = drill.__dict__.get("backup_sink") or s.output["last_status"]


def _by_timestamp(drill: Drill, name: str, committed: dict, timestamps: dict):
    """A group's resume rule after the restore: per restored partition, the timestamp of the
    last record the group committed in the primary (from the backup), then offsets_for_times;
    the topic written after cutover from its start."""

    def position(_group_id, consumer, tps):
        out = []
        for tp in tps:
            if not tp.topic.startswith(f"{RESTORED_PREFIX}."):
                out.append((None, ResumeSource.RESET.value))
                continue
            src = tp.topic[len(RESTORED_PREFIX) + 1 :]
            c = committed.get((name, src, tp.partition))
            ts = timestamps.get((src, tp.partition), {})
            below = [o for o in ts if c is not None and o < c]
            if not below:  # nothing committed (or backed up) below it: from the start
                out.append((None, ResumeSource.RESET.value))
                continue
            want = ts[max(below)]
            got = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, want)],
                                             timeout=10)[0]  # fmt: skip
            if got.offset < 0:  # no record at or after it: the end
                got.offset = consumer.get_watermark_offsets(tp, timeout=10)[1]
            out.append((got.offset, RESUME_TIMESTAMP))
        return out

    return position


def cutover(drill: Drill) -> None:
    """Fence, stop replication and the sink, restore from the bucket, move the clients."""
    t, cut = drill.target, drill.spec.cutover
    moving = (
        drill.producers if cut.producers == "all" else [drill.producers[i] for i in cut.producers]
    )
    # MirrorMaker 2 is not the pattern under test; stopped as any cutover stops it, so that
    # teardown starts it afresh (left running, it came back from the region's loss slowly).
    drill._fence_and_stop_replication(moving)
    with drill._step("cutover", "the backup sink's last flush (what the bucket holds)") as s:
        # Not removed here: that is a stack update, which a restore does not wait for (the
        # sink reads nothing more from the lost primary; it is removed in clean_up).
        drill.backup_sink = t.backup_status()
        s.output = {"last_status": drill.backup_sink}
    topics = [x.name for x in drill.spec.workload.topics]
    mapping = {x: restored_topic(x) for x in topics}
    location = t.backup_location(prefix(drill))
    with drill._step("cutover", f"restore {location} into {t.standby}") as s:
        t_start = clock()
        got = t.restore_backup(prefix(drill), mapping)
        t_fault = drill.instants["t_fault"]
        drill.restore = Restore(location, got.records, got.bytes, got.objects,
                                round(got.seconds, 4),
                                None if t_fault is None else round(t_start - t_fault, 4))  # fmt: skip
        drill.restored_timestamps = got.timestamps
        s.output = {"records": got.records, "bytes": got.bytes, "objects": got.objects,
                    "seconds": round(got.seconds, 4)}  # fmt: skip
    with drill._step("cutover", "snapshot the restored topics' end offsets") as s:
        drill.end_offsets = t.end_offsets(t.standby, list(mapping.values()))
        for (topic, part), off in drill.end_offsets.items():
            drill.rec.end_offset(cluster=t.standby, topic=topic, partition=part, end_offset=off)
        s.output = {f"{k[0]}[{k[1]}]": v for k, v in drill.end_offsets.items()}
    committed = drill.rec.last_commits(t.primary, drill.instants["t_fault"] or clock())

    def positions():  # per group: `restored.<topic>` by timestamp, `<topic>` from its start
        return lambda name: _by_timestamp(drill, name, committed, drill.restored_timestamps)

    drill._move_clients(moving, mapping, "by timestamp", positions)


def verify(drill: Drill, judge) -> None:
    """Read the standby back (restored topics and the topics written after), check, judge."""
    t, record = drill.target, drill.record
    names = sorted(x.name for x in drill.spec.workload.topics)
    with drill._step("verify", "read back the restored and the new topics, check the history") as s:
        if not record.failover or getattr(drill, "restore", None) is None:
            raise StepFailed("no restore ran (nothing detected, or no failover): nothing to check")
        topics = sorted({restored_topic(x) for x in names} | set(names))
        ends = t.end_offsets(t.standby, topics)
        mine = {p.pid for p in drill.producers}
        left = drill.clients.read_log(t.bootstrap(t.standby), ends, mine, drill.rec, t.standby,
                                      f"kdrill-{drill.run_id}-log")  # fmt: skip
        if left:
            raise StepFailed(f"could not read back {left} from {t.standby}")
        meta = DrillMeta(
            primary=t.primary, standby=t.standby, topics=tuple(names),
            groups=tuple(g.cfg.name for g in drill.groups), failover=record.failover,
            mapping=TopicMapping(ReplicationPolicy.PREFIXED, source_alias=RESTORED_PREFIX),
            instants=Instants(**drill.instants), drill_id=drill.run_id,
        )  # fmt: skip
        record.acknowledged = drill.rec.acks_between(0, float("inf"))
        history = drill.rec.build(meta)
        write_history(history, drill.dir / "history")
        result = check(
            history, CheckPolicy(tolerate=frozenset({LOST_TAIL, LATE, DUPLICATE}), sample=5)
        )
        record.result = result
        report = check_backup_restore(
            history, names, drill.restore, getattr(drill, "backup_sink", {}) or {},
            FLUSH_INTERVAL_MS / 1000, result.rpo.records, result.continuity,
        )  # fmt: skip
        record.sections["backup_restore"] = report.to_dict()
        verdict = judge(drill.spec.objectives, result, record.steady_after, drill.control)
        verdict["checks"] += report.checks()
        verdict["passed"] = all(c["met"] for c in verdict["checks"])
        record.verdict = verdict
        s.output = {"verdict": verdict, "backup_restore": record.sections["backup_restore"]}

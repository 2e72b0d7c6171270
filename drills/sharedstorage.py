"""The shared-storage pattern rehearsed on Tansu: lose the broker region, start a broker
in the standby on the same bucket, measure RTO and RPO as for the replicated patterns.

AutoMQ (stateless brokers over S3, the domain's shared-storage pattern) cannot be
installed here; Tansu (components/local/tansu.py) keeps everything in its bucket, so a
broker started elsewhere on that bucket serves the same log and the same committed group
offsets. Nothing is copied at failover: recovery is starting a broker and reading storage.

The rehearsal, on two regions of the local pair:

1. a Tansu broker in the primary region serves the topic from a bucket held by the
   standby region's S3 endpoint (the bucket outlives the primary: what a replicated
   bucket gives, with no replication lag -- see the README for what that leaves out);
2. the instrumented producer (acks=all, idempotent when asked) and one consumer group
   (committing offsets) run through the steady window;
3. the region is lost: the broker is SIGKILLed (T_fault); T_fence is T_fault or, when
   later, the last of the old broker's acknowledgements the producer served before
   detection (responses it sent before it died, read from the socket just after);
4. detection from what clients see (no acknowledgement for `no_acks_s` while sends are
   outstanding), the decision at once, a broker started in the standby region on the
   same bucket, E (its high watermarks, from a Fetch response) snapshotted, the producer
   moved to it; the group moves once its lost member's session has expired (the group's
   membership is in the bucket too, see `rehearse`) and resumes from the offsets it had
   committed, which the new broker reads from the bucket;
5. `run_after_s` after the group was assigned, the log is read back through the new
   broker and the history checker computes RTO, RPO (acknowledged by the old broker,
   absent from the new one below E), duplicates and every other anomaly, with the topic
   mapping IDENTITY (the serving topic is the primary topic itself).

Both brokers are killed on every exit path.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from components.clientconf import client_config
from components.local import processes, tansu
from components.local.tansu import TansuBroker
from components.wait import wait_until
from drills.detection import Detector
from drills.history import (
    CheckResult,
    DrillMeta,
    Instants,
    ReplicationPolicy,
    TopicMapping,
    check,
    write_history,
)
from drills.workload import (
    GroupConfig,
    GroupConsumer,
    InstrumentedProducer,
    Placement,
    ProducerConfig,
    Recorder,
    clock,
    read_log,
    synced_position,
)

WORKLOAD_TOPIC = "orders"  # the workload's name for the one topic (its Placement key)
# beyond the lost member's session timeout before the group moves (Tansu's clock and ours)
SESSION_MARGIN_S = 0.25


@dataclass(frozen=True)
class RehearsalSpec:
    """The workload and windows; small by default (every produce is three S3 requests to
    a Python S3 server: a few hundred records/s is moto's ceiling here, not Tansu's)."""

    topic: str
    group: str = "g1"
    partitions: int = 2
    rate: float = 40.0
    keys: int = 8
    record_bytes: int = 128
    idempotence: bool = True
    steady_s: float = 5.0
    run_after_s: float = 5.0
    no_acks_s: float = 1.0  # detection: no ack for this long while sends are outstanding
    commit_interval_ms: int = 500
    start_timeout_s: float = 60.0
    timeouts: dict[str, int] = field(
        default_factory=lambda: {
            "message_timeout_ms": 15000,
            "request_timeout_ms": 5000,
            "socket_connection_setup_timeout_ms": 3000,
            "metadata_max_age_ms": 5000,
        }
    )

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.partitions < 1 or self.steady_s <= 0 or self.run_after_s <= 0:
            raise ValueError(
                "rehearsal: rate, partitions, steady_s and run_after_s must be positive "
                f"(got {self.rate}, {self.partitions}, {self.steady_s}, {self.run_after_s})"
            )


@dataclass
class Rehearsal:
    """What the rehearsal measured. `result` is the history checker's (RTO, RPO,
    continuity, anomalies); the rest is what is particular to shared storage."""

    result: CheckResult
    instants: Instants
    standby_start_s: float  # decide -> the new broker serves (storage and metadata read)
    group_move_s: float  # fault -> the group moved (the lost member's session expired)
    group_join_s: float  # the group moved -> assigned and positioned on the new broker
    end_offsets: dict[str, int]  # E per "topic/partition", through the new broker
    acks: dict[str, int]  # acknowledgements per cluster
    run_dir: Path

    def summary(self) -> dict:
        r = self.result
        return {
            "rto": asdict(r.rto),
            "rpo": asdict(r.rpo),
            "standby_start_s": self.standby_start_s,
            "group_move_s": self.group_move_s,
            "group_join_s": self.group_join_s,
            "duplicates": sum(c.duplicates for c in r.continuity),
            "skipped": sum(c.skipped for c in r.continuity),
            "resume_sources": sorted({c.resume_source for c in r.continuity}),
            "found": list(r.found),
            "valid": r.valid,
            "acks": self.acks,
            "end_offsets": self.end_offsets,
            "notes": list(r.notes),
        }


def rehearsal_meta(
    primary: str, standby: str, spec: RehearsalSpec, instants: Instants
) -> DrillMeta:
    """The checker's view of the rehearsal: a failover from `primary` to `standby` whose
    serving topic is the primary topic itself (IDENTITY: the same log in the same bucket,
    post-cutover writes appended above E), one group."""
    return DrillMeta(
        primary=primary, standby=standby, topics=(spec.topic,), groups=(spec.group,),
        instants=instants, drill_id=f"tansu-{spec.topic}",
        mapping=TopicMapping(ReplicationPolicy.IDENTITY, source_alias=primary),
    )  # fmt: skip


def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> None:
    """Create `topic` through the broker and wait until its metadata shows every partition."""
    admin = AdminClient(client_config(bootstrap))
    for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        fut.result(timeout)

    def ready() -> bool:
        md = admin.list_topics(topic, timeout=5).topics.get(topic)
        return md is not None and md.error is None and len(md.partitions) == partitions

    wait_until(ready, timeout, f"topic {topic} with {partitions} partitions at {bootstrap}")


def end_offsets(
    bootstrap: str, topic: str, partitions: int, timeout: float = 30.0
) -> dict[tuple[str, int], int]:
    """The high watermarks of `topic` as the broker at `bootstrap` reads them from its
    bucket (the partition's watermark object): the HighWatermark of a Fetch response.

    Neither ListOffsets nor a read to the end gives it with Tansu 0.6.0: ListOffsets(latest)
    answers the base offset + 1 of the batch object S3 lists as last modified (3 batches of
    10 at 0, 10, 20: 21, where the log ends at 30), and a read from 0 GETs every batch object
    in one Fetch (seconds for a few hundred, through moto), which a fixed quiet window
    mistook for an empty log. So the reader is positioned at the (wrong, but never past the
    end) ListOffsets answer and the watermark is taken from the first Fetch response."""
    c = Consumer(client_config(bootstrap, {"group.id": "kdrill-ends", "enable.auto.commit": False}))
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    out: dict[tuple[str, int], int] = {}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_END) for p in range(partitions)])

        def fetched() -> bool:
            c.consume(100, timeout=0.1)  # drives the fetches; the records are not wanted
            for tp in tps:
                high = c.get_watermark_offsets(tp, cached=True)[1]
                if high >= 0:
                    out[(topic, tp.partition)] = high
            return len(out) == partitions

        wait_until(fetched, timeout, f"a fetch response from {bootstrap} for {topic}",
                   interval=0)  # fmt: skip
        return dict(sorted(out.items()))
    finally:
        c.close()


def rehearse(
    primary: TansuBroker, standby: TansuBroker, spec: RehearsalSpec, run_dir: Path
) -> Rehearsal:
    """Run the rehearsal (module docstring); both brokers are gone when it returns or raises."""
    if (primary.s3_endpoint, primary.bucket, primary.cluster_id) != (
        standby.s3_endpoint, standby.bucket, standby.cluster_id,
    ):  # fmt: skip
        raise ValueError(
            "rehearsal: both brokers must name the same S3 endpoint, bucket and cluster id"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    pids: list[int] = []
    rec, det = Recorder(), Detector("no-acks", window_s=spec.no_acks_s)
    topics = {WORKLOAD_TOPIC: spec.topic}
    place_a = Placement(primary.region, primary.bootstrap, topics)
    place_b = Placement(standby.region, standby.bootstrap, topics)
    prod_cfg = ProducerConfig(rate=spec.rate, keys=spec.keys, record_bytes=spec.record_bytes,
                              acks="all", idempotence=spec.idempotence, timeouts=spec.timeouts)  # fmt: skip
    group_cfg = GroupConfig(name=spec.group, group_id=f"{spec.topic}-{spec.group}",
                            topics=[WORKLOAD_TOPIC], process_rate=0,
                            commit_interval_ms=spec.commit_interval_ms, session_timeout_ms=6000)  # fmt: skip
    producer = consumer = None
    try:
        log_a = run_dir / f"tansu-{primary.region}.log"
        pids.append(tansu.start(primary, log_a))
        tansu.wait_ready(primary, pids[-1], clock() + spec.start_timeout_s, log_a)
        create_topic(primary.bootstrap, spec.topic, spec.partitions)

        producer = InstrumentedProducer("p0", prod_cfg, place_a, rec, det)
        consumer = GroupConsumer(group_cfg, place_a, rec)
        consumer.producers = {"p0"}
        producer.start()
        consumer.start()
        det.arm()
        _steady(rec, consumer, primary.region, spec.steady_s)

        # the region is lost: the broker process, and with it every unflushed byte
        t_fault = tansu.kill(pids[0])
        det.since(t_fault)
        wait_until(lambda: _tick(det, producer), spec.timeouts["message_timeout_ms"] / 1000 + 10,
                   "the workload's clients to notice the lost broker", interval=0.05)  # fmt: skip
        t_detect = t_decide = det.t_detect
        # T_fence: nothing of the old broker can reach a client any more. Responses it sent
        # before it died may still be served as delivery reports just after the kill (the
        # producer polls between sends): the last one served before detection -- whose
        # condition is that none came for `no_acks_s` -- closes the old broker's acks.
        t_fence = max(t_fault, rec.last_ack(primary.region, t_detect) or t_fault)

        log_b = run_dir / f"tansu-{standby.region}.log"
        pids.append(tansu.start(standby, log_b))
        t_ready = tansu.wait_ready(standby, pids[-1], clock() + spec.start_timeout_s, log_b)
        ends = end_offsets(standby.bootstrap, spec.topic, spec.partitions)
        for (topic, part), e in ends.items():
            rec.end_offset(cluster=standby.region, topic=topic, partition=part, end_offset=e)
        producer.move_to(place_b)
        wait_until(lambda: rec.first_ack(standby.region, t_decide), 60,
                   f"the first acknowledgement from {standby.region}", interval=0.05)  # fmt: skip
        t_cut = rec.first_ack(standby.region, t_decide)
        # The group state is in the bucket, its lost member with it: that member holds the
        # group until its session expires (its last contact was at T_fault at the latest),
        # as a Kafka coordinator waits for a member that never left. The group moves once
        # it has: Tansu 0.6.0 gives a member that joins before then an empty assignment in
        # a group it calls formed, for good (tools/tansu/README.md).
        expiry = t_fault + group_cfg.session_timeout_ms / 1000 + SESSION_MARGIN_S
        wait_until(lambda: clock() >= expiry, max(0.0, expiry - clock()) + 1,
                   "the lost member's session to expire", interval=0.05)  # fmt: skip
        assigned: list[tuple[int, float]] = []  # (partitions, instant) per assignment there

        def position(group_id: str, c: Consumer, tps: list[TopicPartition]) -> list:
            assigned.append((len(tps), clock()))
            return synced_position(group_id, c, tps)

        t_group = clock()
        consumer.move_to(place_b, [spec.topic], position)
        wait_until(lambda: (assigned and assigned[-1][0] == spec.partitions) or consumer.error,
                   spec.start_timeout_s,
                   f"group {spec.group} assigned all {spec.partitions} partitions on "
                   f"{standby.region}",
                   interval=0.05)  # fmt: skip
        if consumer.error is not None:
            raise consumer.error
        t_joined = assigned[-1][1]
        wait_until(lambda: clock() >= t_joined + spec.run_after_s, spec.run_after_s + 1,
                   "the run-after window", interval=0.1)  # fmt: skip
        _stop(producer, consumer)
        for th in (producer, consumer):
            if th.error is not None:
                raise th.error

        final = end_offsets(standby.bootstrap, spec.topic, spec.partitions)
        unread = read_log(standby.bootstrap, final, {"p0"}, rec, standby.region,
                          f"{spec.topic}-reader", timeout=60)  # fmt: skip
        if unread:
            raise RuntimeError(f"rehearsal: could not read {unread} back from {standby.region}")
        instants = Instants(t_fault=t_fault, t_detect=t_detect, t_decide=t_decide,
                            t_fence=t_fence, t_cut=t_cut)  # fmt: skip
        meta = rehearsal_meta(primary.region, standby.region, spec, instants)
        acks = {c: rec.acks_between(0, float("inf"), c) for c in (primary.region, standby.region)}
        history = rec.build(meta)
        write_history(history, run_dir / "history")
        out = Rehearsal(
            result=check(history),
            instants=instants,
            standby_start_s=t_ready - t_decide,
            group_move_s=t_group - t_fault,
            group_join_s=t_joined - t_group,
            end_offsets={f"{t}/{p}": e for (t, p), e in ends.items()},
            acks=acks,
            run_dir=run_dir,
        )
        (run_dir / "rehearsal.json").write_text(json.dumps(out.summary(), indent=2, default=str))
        return out
    finally:
        _stop(producer, consumer)
        processes.kill_all([p for p in pids if processes.alive(p)])


def _steady(rec: Recorder, consumer: GroupConsumer, cluster: str, seconds: float) -> None:
    """The steady window: acknowledgements and consumption both under way before the fault."""
    start = clock()
    wait_until(lambda: rec.acks_between(start, float("inf"), cluster) > 0 and consumer.consumed > 0,
               30, f"acks and reads from {cluster}", interval=0.1)  # fmt: skip
    wait_until(lambda: clock() - start >= seconds, seconds + 1, "the steady window", interval=0.1)


def _tick(det: Detector, producer: InstrumentedProducer) -> bool:
    det.tick(clock(), len(producer.pending))
    return det.t_detect is not None


def _stop(*threads) -> None:
    for th in threads:
        if th is not None:
            th.stop_flag.set()
    for th in threads:
        if th is not None and th.is_alive():
            with contextlib.suppress(RuntimeError):
                th.join(60)

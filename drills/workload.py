"""The drill's workload: instrumented producers and consumer groups that record everything.

Every record carries its identity in the value's first bytes
(`producer|key|seq|gseq|send_time|` then padding to the spec's record size), so
whichever cluster or offset it ends up at, the checker can tell which write it
is. Producers record every acknowledgement and every send that never got one
(indeterminate); consumers record every record handed to them and every commit.
Everything goes into one `HistoryBuilder` under a lock, on one monotonic clock.

Each client runs in its own thread and owns its librdkafka handle; the engine
moves it to another cluster with `move_to`, which the thread carries out
itself between two sends (producers) or polls (consumers), continuing the
sequences: a moved producer's next record has the next seq for its key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from drills.history import HistoryBuilder, ResumeSource

LOG = logging.getLogger("kdrill.rdkafka")
LOG.addHandler(logging.NullHandler())
LOG.propagate = False

clock = time.monotonic


def encode(producer: str, key: str, seq: int, gseq: int, sent: float, size: int) -> bytes:
    head = f"{producer}|{key}|{seq}|{gseq}|{sent:.6f}|".encode()
    return head + b"." * max(0, size - len(head))


def decode(value: bytes) -> tuple[str, str, int, int, float] | None:
    """(producer, key, seq, gseq, send time) of a workload record; None for anything else."""
    try:
        producer, key, seq, gseq, sent, _ = value.split(b"|", 5)
        return producer.decode(), key.decode(), int(seq), int(gseq), float(sent)
    except (ValueError, AttributeError):
        return None


class Recorder:
    """A HistoryBuilder shared by client threads, plus the few live figures the engine watches."""

    def __init__(self) -> None:
        self.builder = HistoryBuilder()
        self.lock = threading.Lock()
        self.acks: list[tuple[float, str]] = []  # (ack time, cluster): throughput and T_cut
        self.failures = 0

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self.builder, name)

        def locked(*args, **kwargs):
            with self.lock:
                return method(*args, **kwargs)

        return locked

    def acks_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t, _ in self.acks if start <= t < end)

    def first_ack(self, cluster: str, after: float) -> float | None:
        with self.lock:
            return min((t for t, c in self.acks if c == cluster and t >= after), default=None)


class Detector:
    """Declares the primary unhealthy from what clients see, never from the fault ledger.

    Rules: `delivery-errors` (N consecutive failed deliveries: librdkafka reports
    them only after message.timeout.ms, so detection is bounded below by it) or
    `no-acks` (no acknowledgement for `window_s` while sends are outstanding).
    """

    def __init__(self, rule: str, threshold: int, window_s: float):
        self.rule, self.threshold, self.window_s = rule, threshold, window_s
        self.lock = threading.Lock()
        self.consecutive = 0
        self.last_ack: float | None = None
        self.armed = False
        self.t_detect: float | None = None
        self.evidence = ""

    def arm(self) -> None:
        with self.lock:
            self.armed, self.consecutive, self.last_ack = True, 0, clock()

    def disarm(self) -> None:
        with self.lock:
            self.armed = False

    def success(self, t: float) -> None:
        with self.lock:
            self.consecutive, self.last_ack = 0, t

    def failure(self, t: float, error: str) -> None:
        with self.lock:
            self.consecutive += 1
            if self.armed and self.rule == "delivery-errors" and self.consecutive >= self.threshold:
                self._declare(t, f"{self.consecutive} consecutive delivery failures, last: {error}")

    def tick(self, now: float, outstanding: int) -> None:
        with self.lock:
            quiet = now - self.last_ack if self.last_ack is not None else 0.0
            if self.armed and self.rule == "no-acks" and outstanding and quiet >= self.window_s:
                self._declare(
                    now, f"no acknowledgement for {quiet:.1f}s with {outstanding} in flight"
                )

    def _declare(self, t: float, why: str) -> None:
        if self.t_detect is None:
            self.t_detect, self.evidence = t, why


@dataclass
class Placement:
    """Where a client works: a cluster (region name), its bootstrap, and the topic names there."""

    cluster: str
    bootstrap: str
    topics: dict[str, str]  # workload topic -> topic name in this cluster


@dataclass
class ProducerConfig:
    rate: float
    keys: int
    record_bytes: int
    acks: str
    idempotence: bool
    timeouts: dict[str, int]


class InstrumentedProducer(threading.Thread):
    def __init__(
        self, pid: str, cfg: ProducerConfig, place: Placement, rec: Recorder, det: Detector
    ):
        super().__init__(name=f"producer-{pid}", daemon=True)
        self.pid, self.cfg, self.rec, self.det = pid, cfg, rec, det
        self.place = place
        self.seq: dict[str, int] = {}
        self.gseq = 0
        self.pending: dict[int, tuple] = {}  # gseq -> send facts, until a delivery report
        self.stop_flag = threading.Event()
        self.move: Placement | None = None
        self.moved = threading.Event()
        self.paused = threading.Event()  # set: do not send (between fence and move)
        self.budget: int | None = None  # when set, send only this many more records
        self.error: BaseException | None = None

    def _client(self, place: Placement) -> Producer:
        t = self.cfg.timeouts
        conf = {
            "bootstrap.servers": place.bootstrap,
            "enable.idempotence": self.cfg.idempotence,
            "acks": self.cfg.acks,
            "linger.ms": 5,
            "message.timeout.ms": t["message_timeout_ms"],
            "request.timeout.ms": t["request_timeout_ms"],
            "socket.connection.setup.timeout.ms": t["socket_connection_setup_timeout_ms"],
            "metadata.max.age.ms": t["metadata_max_age_ms"],
        }
        return Producer(conf, logger=LOG)

    def move_to(self, place: Placement) -> None:
        self.move = place
        self.moved.clear()

    def _report(self, gseq: int, err, msg) -> None:
        facts = self.pending.pop(gseq, None)
        if facts is None:
            return
        key, seq, sent, cluster, topic = facts
        now = clock()
        if err is not None:
            self.rec.send(
                self.pid,
                key,
                seq,
                gseq,
                cluster=cluster,
                topic=topic,
                send_time=sent,
                error=str(err),
            )
            self.det.failure(now, err.str())
            return
        self.rec.ack(self.pid, key, seq, gseq, cluster=cluster, topic=topic, partition=msg.partition(),
                     offset=msg.offset(), send_time=sent, ack_time=now)  # fmt: skip
        with self.rec.lock:
            self.rec.acks.append((now, cluster))
        self.det.success(now)

    def _retire(self, p: Producer) -> None:
        """Drop an old cluster's client: what it still holds was never acknowledged."""
        p.purge(in_queue=True, in_flight=True)
        p.flush(1)  # delivers the purge reports (errors: indeterminate sends)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # surfaced by the engine, never lost in a thread
            self.error = e

    def _run(self) -> None:
        p = self._client(self.place)
        topics = sorted(self.place.topics)
        interval = 1.0 / self.cfg.rate
        next_send = clock()
        i = 0
        while not self.stop_flag.is_set():
            if self.move is not None:
                self._retire(p)
                self.place, self.move = self.move, None
                p = self._client(self.place)
                self.moved.set()
            now = clock()
            if self.paused.is_set() or self.budget == 0 or now < next_send:
                p.poll(min(0.05, max(0.0, next_send - now)))
                continue
            if self.budget is not None:
                self.budget -= 1
            key = f"k{i % self.cfg.keys}"
            topic = topics[i % len(topics)]
            i += 1
            seq = self.seq[key] = self.seq.get(key, -1) + 1
            gseq = self.gseq = self.gseq + 1
            sent = clock()
            name = self.place.topics[topic]
            self.pending[gseq] = (key, seq, sent, self.place.cluster, name)
            value = encode(self.pid, key, seq, gseq, sent, self.cfg.record_bytes)
            try:
                p.produce(
                    name,
                    value,
                    key=key,
                    on_delivery=lambda err, msg, g=gseq: self._report(g, err, msg),
                )
            except BufferError:
                p.poll(0.1)
            p.poll(0)
            next_send += interval
            if (
                clock() - next_send > 1.0
            ):  # fell behind (e.g. a full queue): do not burst to catch up
                next_send = clock()
        p.flush(self.cfg.timeouts["message_timeout_ms"] / 1000 + 1)
        self._retire(p)
        for gseq, (key, seq, sent, cluster, topic) in list(self.pending.items()):
            self.rec.send(self.pid, key, seq, gseq, cluster=cluster, topic=topic, send_time=sent)
        self.pending.clear()


@dataclass
class GroupConfig:
    name: str  # the group as the history and the report name it
    group_id: str  # its Kafka group.id: scoped to the run, so runs never share committed offsets
    topics: list[str]  # workload topics
    process_rate: float
    commit_interval_ms: int
    session_timeout_ms: int


@dataclass
class Resume:
    """How a moved group positions itself in the serving cluster."""

    mode: str  # synced | checkpoint | reset
    positions: dict[tuple[str, int], tuple[int, str]] = field(
        default_factory=dict
    )  # decided at assignment


class GroupConsumer(threading.Thread):
    def __init__(self, cfg: GroupConfig, place: Placement, rec: Recorder):
        super().__init__(name=f"group-{cfg.name}", daemon=True)
        self.cfg, self.place, self.rec = cfg, place, rec
        self.stop_flag = threading.Event()
        self.move: tuple[Placement, list[str], Callable] | None = None
        self.moved = threading.Event()
        self.error: BaseException | None = None
        self.consumed = 0
        self.producers: set[str] | None = None  # only records of these producers are this drill's

    def _client(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.place.bootstrap,
                "group.id": self.cfg.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": self.cfg.session_timeout_ms,
                "socket.connection.setup.timeout.ms": 3000,
                "topic.metadata.refresh.interval.ms": 1000,
            },
            logger=LOG,
        )

    def move_to(self, place: Placement, topics: list[str], position: Callable) -> None:
        """Continue in `place`, reading `topics` there; `position(group_id, consumer, tp) -> (offset, source)`
        decides where each assigned partition starts (the resume rule)."""
        self.move = (place, topics, position)
        self.moved.clear()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:
            self.error = e

    def _commit(self, c: Consumer) -> None:
        try:
            done = c.commit(asynchronous=False)
        except Exception:  # nothing to commit yet, or the cluster is gone: not a commit
            return
        now = clock()
        for tp in done or []:
            if tp.error is None and tp.offset >= 0:
                self.rec.commit(self.cfg.name, cluster=self.place.cluster, topic=tp.topic,
                                partition=tp.partition, offset=tp.offset, time=now)  # fmt: skip

    def _run(self) -> None:
        c = self._client()
        c.subscribe([self.place.topics[t] for t in self.cfg.topics])
        last_commit = clock()
        interval = self.cfg.commit_interval_ms / 1000
        while not self.stop_flag.is_set():
            if self.move is not None:
                c.close()  # no commit: the old primary is fenced or gone
                self.place, topics, position = self.move
                self.move = None
                c = self._client()
                c.subscribe(topics, on_assign=self._on_assign(position))
                self.moved.set()
            for m in c.consume(num_messages=100, timeout=0.1):
                if m.error() is not None:
                    if m.error().code() not in (
                        KafkaError._PARTITION_EOF,
                        KafkaError.UNKNOWN_TOPIC_OR_PART,
                    ):
                        LOG.warning("consumer %s: %s", self.cfg.name, m.error())
                    continue
                ident = decode(m.value())
                if ident is None:
                    continue
                producer, key, seq, gseq, sent = ident
                if self.producers is not None and producer not in self.producers:
                    continue  # an earlier run's record, still in the topic
                self.rec.read(self.cfg.name, producer, key, seq, gseq, cluster=self.place.cluster, topic=m.topic(),
                              partition=m.partition(), offset=m.offset(), produced_at=sent, poll_time=clock())  # fmt: skip
                self.consumed += 1
                if self.cfg.process_rate > 0:
                    time.sleep(1.0 / self.cfg.process_rate)
            if clock() - last_commit >= interval:
                self._commit(c)
                last_commit = clock()
        self._commit(c)
        c.close()

    def _on_assign(self, position: Callable):
        def assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            for tp in partitions:
                offset, source = position(self.cfg.group_id, consumer, tp)
                tp.offset = offset if offset is not None else OFFSET_BEGINNING
                self.rec.resume(self.cfg.name, cluster=self.place.cluster, topic=tp.topic, partition=tp.partition,
                                source=source, position=offset if offset is not None else 0)  # fmt: skip
            consumer.assign(partitions)

        return assign


def synced_position(
    group_id: str, consumer: Consumer, tp: TopicPartition
) -> tuple[int | None, str]:
    """Resume from the group's offset in the serving cluster (MM2's synced offsets); else from the start."""
    (got,) = consumer.committed([TopicPartition(tp.topic, tp.partition)], timeout=5)
    if got.offset >= 0:
        return got.offset, ResumeSource.SYNCED.value
    return None, ResumeSource.RESET.value

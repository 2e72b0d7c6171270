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

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from drills.history import HistoryBuilder, ResumeSource

LOG = logging.getLogger("kdrill.rdkafka")
LOG.addHandler(logging.NullHandler())
LOG.propagate = False

clock = time.monotonic


def encode(producer: str, key: str, seq: int, gseq: int, sent: float, size: int) -> bytes:
    """A record value: the identity, then padding to `size` bytes. The send time is
    written as integer nanoseconds of the monotonic clock (cheap to format)."""
    head = b"%s|%s|%d|%d|%d|" % (producer.encode(), key.encode(), seq, gseq, int(sent * 1e9))
    return head + b"." * max(0, size - len(head))


def decode(value: bytes) -> tuple[str, str, int, int, float] | None:
    """(producer, key, seq, gseq, send time) of a workload record; None for anything else."""
    try:
        producer, key, seq, gseq, sent, _ = value.split(b"|", 5)
        return producer.decode(), key.decode(), int(seq), int(gseq), int(sent) / 1e9
    except (ValueError, AttributeError):
        return None


class Recorder:
    """The drill's history as it happens, shared by the client threads.

    Acknowledgements and failed sends, the hot path, are appended as plain
    tuples (list.append is atomic) and turned into history rows in `build`;
    the rarer facts (reads, commits, the log) go straight to the builder under
    a lock.
    """

    def __init__(self) -> None:
        self.builder = HistoryBuilder()
        self.lock = threading.Lock()
        # (producer, key, seq, gseq, cluster, topic, partition, offset, send_time, ack_time)
        self.acked: list[tuple] = []
        # (producer, key, seq, gseq, cluster, topic, send_time, error or None)
        self.unacked: list[tuple] = []

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self.builder, name)

        def locked(*args, **kwargs):
            with self.lock:
                return method(*args, **kwargs)

        return locked

    def acks_between(self, start: float, end: float) -> int:
        return sum(1 for a in list(self.acked) if start <= a[9] < end)

    def first_ack(self, cluster: str, after: float) -> float | None:
        return min(
            (a[9] for a in list(self.acked) if a[4] == cluster and a[9] >= after), default=None
        )

    def build(self, meta):
        with self.lock:
            for pid, key, seq, gseq, cluster, topic, part, off, sent, acked in self.acked:
                self.builder.ack(pid, key, seq, gseq, cluster=cluster, topic=topic, partition=part, offset=off,
                                 send_time=sent, ack_time=acked)  # fmt: skip
            for pid, key, seq, gseq, cluster, topic, sent, error in self.unacked:
                self.builder.send(
                    pid, key, seq, gseq, cluster=cluster, topic=topic, send_time=sent, error=error
                )
            self.acked, self.unacked = [], []
            return self.builder.build(meta)


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
        self.not_before: float | None = None
        self.t_detect: float | None = None
        self.evidence = ""

    def arm(self) -> None:
        with self.lock:
            self.armed, self.consecutive, self.last_ack = True, 0, clock()

    def since(self, t: float) -> None:
        """Count only what clients see from `t` (T_fault) on: a declaration before it is
        dropped, failures so far are forgotten and a quiet spell starts at `t` at the
        earliest. (Armed before the fault is applied, the detector would otherwise count
        stalls the applying itself causes, e.g. a stack update's CPU burst.)"""
        with self.lock:
            self.not_before = t
            if self.t_detect is not None and self.t_detect < t:
                self.t_detect, self.evidence = None, ""
            self.consecutive = 0
            if self.last_ack is None or self.last_ack < t:
                self.last_ack = t

    def disarm(self) -> None:
        with self.lock:
            self.armed = False

    def success(self, t: float) -> None:
        # the hot path: plain assignments (atomic under the GIL), no lock
        self.consecutive = 0
        self.last_ack = t

    def failure(self, t: float, error: str) -> None:
        with self.lock:
            if self.not_before is not None and t < self.not_before:
                return
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
            self.rec.unacked.append((self.pid, key, seq, gseq, cluster, topic, sent, str(err)))
            self.det.failure(now, err.str())
            return
        self.rec.acked.append(
            (self.pid, key, seq, gseq, cluster, topic, msg.partition(), msg.offset(), sent, now)
        )
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
        keys = [(f"k{i}", f"k{i}".encode()) for i in range(self.cfg.keys)]
        pad = self.cfg.record_bytes
        pid_b = self.pid.encode()
        report, pending, seqs = self._report, self.pending, self.seq
        interval = 1.0 / self.cfg.rate
        next_send = clock()
        i = 0
        stopping, paused = self.stop_flag.is_set, self.paused.is_set
        while not stopping():
            if self.move is not None:
                self._retire(p)
                self.place, self.move = self.move, None
                p = self._client(self.place)
                self.moved.set()
            now = clock()
            if now < next_send or self.budget == 0 or paused():
                p.poll(min(0.05, max(0.0, next_send - now)))  # idle: serve delivery reports at once
                continue
            place = self.place
            # the hot path (the bench compares it with a bare producer): up to 16 sends per turn
            for _ in range(16 if self.budget is None else 1):
                if self.budget is not None:
                    self.budget -= 1
                key, key_b = keys[i % len(keys)]
                name = place.topics[topics[i % len(topics)]]
                i += 1
                seq = seqs[key] = seqs.get(key, -1) + 1
                gseq = self.gseq = self.gseq + 1
                pending[gseq] = (key, seq, now, place.cluster, name)
                head = b"%s|%s|%d|%d|%d|" % (pid_b, key_b, seq, gseq, int(now * 1e9))
                value = head + b"." * (pad - len(head)) if pad > len(head) else head
                try:
                    p.produce(name, value, key=key_b, on_delivery=partial(report, gseq))
                except BufferError:
                    p.poll(0.1)
                next_send += interval
                if next_send > now:
                    break
            p.poll(0)
            if now - next_send > 1.0:  # fell behind (e.g. a full queue): do not burst to catch up
                next_send = now
        p.flush(self.cfg.timeouts["message_timeout_ms"] / 1000 + 1)
        self._retire(p)
        for gseq, (key, seq, sent, cluster, topic) in list(self.pending.items()):
            self.rec.unacked.append((self.pid, key, seq, gseq, cluster, topic, sent, None))
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
        cluster = self.place.cluster

        def committed(err, partitions) -> None:
            """A commit counts when the cluster acknowledged it, at that instant."""
            if err is not None:
                return
            now = clock()
            for tp in partitions:
                if tp.error is None and tp.offset >= 0:
                    self.rec.commit(self.cfg.name, cluster=cluster, topic=tp.topic, partition=tp.partition,
                                    offset=tp.offset, time=now)  # fmt: skip

        return Consumer(
            {
                "bootstrap.servers": self.place.bootstrap,
                "group.id": self.cfg.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": self.cfg.session_timeout_ms,
                "socket.connection.setup.timeout.ms": 3000,
                "topic.metadata.refresh.interval.ms": 1000,
                "on_commit": committed,
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
        """Asynchronous: a commit to an unreachable coordinator must not stall consumption
        (a synchronous one blocks for its timeouts). `committed` records the acknowledged."""
        with contextlib.suppress(Exception):  # nothing to commit yet: not a commit
            c.commit(asynchronous=True)

    def _run(self) -> None:
        c = self._client()
        c.subscribe([self.place.topics[t] for t in self.cfg.topics])
        last_commit = clock()
        interval = self.cfg.commit_interval_ms / 1000
        while not self.stop_flag.is_set():
            if self.move is not None:
                # No commit: the old primary is fenced or gone. close() leaves the group,
                # which against a blackholed coordinator blocks for its timeouts: do it aside.
                threading.Thread(target=c.close, name=f"close-{self.cfg.name}", daemon=True).start()
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
        c.close()  # serves the last commit's acknowledgement

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


def read_log(
    bootstrap: str,
    ends: dict[tuple[str, int], int],
    producer_ids: set[str],
    rec: Recorder,
    region: str,
    group_id: str,
    timeout: float = 120.0,
) -> list[tuple[str, int]]:
    """Read every record of `producer_ids` below `ends` from one region, as stored (the log),
    into `rec`. Returns the partitions it could not read to their end in `timeout`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                  "enable.auto.commit": False}, logger=LOG)  # fmt: skip
    left = {k: v for k, v in ends.items() if v > 0}
    try:
        c.assign([TopicPartition(t, p, 0) for (t, p) in left])
        deadline = clock() + timeout
        while left and clock() < deadline:
            for m in c.consume(num_messages=1000, timeout=1):
                if m.error() is not None:
                    continue
                k = (m.topic(), m.partition())
                if m.offset() + 1 >= left.get(k, 0):
                    left.pop(k, None)
                ident = decode(m.value())
                if ident and ident[0] in producer_ids:
                    pid, key, seq, gseq, _ = ident
                    rec.logged(pid, key, seq, gseq, cluster=region, topic=m.topic(),
                               partition=m.partition(), offset=m.offset())  # fmt: skip
        return sorted(left)
    finally:
        c.close()


@dataclass(frozen=True)
class Clients:
    """How the engine makes its Kafka clients: the instrumented producer, the group
    consumer, the log reader. The engine's unit tests pass stand-ins that write the
    same Recorder without a broker."""

    producer: Callable[..., InstrumentedProducer] = InstrumentedProducer
    group: Callable[..., GroupConsumer] = GroupConsumer
    read_log: Callable[..., list[tuple[str, int]]] = read_log

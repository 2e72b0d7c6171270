"""The drill's workload: instrumented producers and consumer groups that record everything.

Every record carries its identity in the value's first bytes
(`producer|key|seq|gseq|send_time|` then padding to the spec's record size), so
whichever cluster or offset it ends up at, the checker can tell which write it
is. Producers record every acknowledgement and every send that never got one
(indeterminate); consumers record every record handed to them and every commit.
Everything goes into one `HistoryBuilder` under a lock, on one monotonic clock.

Producers send at the rate their `RateSchedule` gives (drills/shapes.py: steady, a
step or a ramp), re-read between sends, and sample how many records they have sent
(`InstrumentedProducer.offered`), so the evidence shows the offered rate over time.

Each client runs in its own thread and owns its librdkafka handle; the engine
moves it to another cluster with `move_to`, which the thread carries out
itself between two sends (producers) or polls (consumers), continuing the
sequences: a moved producer's next record has the next seq for its key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from components.clientconf import PRODUCER_ROLE, client_config, group_role
from drills.detection import Detector  # re-exported: the detector moved to drills/detection.py
from drills.history import HistoryBuilder, ResumeSource
from drills.shapes import RateSchedule

__all__ = [
    "Detector",
    "Recorder",
    "InstrumentedProducer",
    "GroupConsumer",
    "Clients",
    "Placement",
    "ProducerConfig",
    "GroupConfig",
    "encode",
    "decode",
    "read_log",
    "clock",
]

LOG = logging.getLogger("kdrill.rdkafka")
LOG.addHandler(logging.NullHandler())
LOG.propagate = False

clock = time.monotonic
# librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks (produce()'s default)
ANY_PARTITION = -1


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


ACK_WIDTH = 10  # values per acknowledgement in `Recorder.acks`


class Recorder:
    """The drill's history as it happens, shared by the client threads.

    Acknowledgements, the hot path, are kept flat in `acks`: ACK_WIDTH values per ack
    (producer, key, seq, gseq, cluster, topic, partition, offset, send_time, ack_time),
    added with one `list.extend` (atomic), so that recording an ack leaves no new object
    for the garbage collector to track (a tuple per ack made its collections a visible
    share of the producer's time). Failed sends, rarer, are tuples in `unacked`. Both
    become history rows in `build`; the rarer facts (reads, commits, the log) go straight
    to the builder under a lock.
    """

    def __init__(self) -> None:
        self.builder = HistoryBuilder()
        self.lock = threading.Lock()
        self.acks: list = []  # flat, ACK_WIDTH values per ack
        # (producer, key, seq, gseq, cluster, topic, send_time, error or None)
        self.unacked: list[tuple] = []

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self.builder, name)

        def locked(*args, **kwargs):
            with self.lock:
                return method(*args, **kwargs)

        return locked

    def acknowledged(
        self, producer: str, key: str, seq: int, gseq: int, cluster: str, topic: str,
        partition: int, offset: int, send_time: float, ack_time: float,
    ) -> None:  # fmt: skip
        """Record one ack (the producers' hot path does the same `extend` inline)."""
        self.acks.extend(
            (producer, key, seq, gseq, cluster, topic, partition, offset, send_time, ack_time)
        )

    def ack_count(self) -> int:
        return len(self.acks) // ACK_WIDTH

    def acks_between(self, start: float, end: float, cluster: str | None = None) -> int:
        """Acks with ack time in [start, end); from `cluster` only when given."""
        if cluster is None:
            return sum(1 for t in self.acks[ACK_WIDTH - 1 :: ACK_WIDTH] if start <= t < end)
        a = self.acks[:]  # one consistent copy: whole acks only (extend is atomic)
        return sum(
            1
            for c, t in zip(a[4::ACK_WIDTH], a[ACK_WIDTH - 1 :: ACK_WIDTH], strict=True)
            if c == cluster and start <= t < end
        )

    def ack_times(self) -> list[float]:
        """Every ack's time so far (any cluster)."""
        return self.acks[ACK_WIDTH - 1 :: ACK_WIDTH]

    def first_ack(self, cluster: str, after: float) -> float | None:
        a = self.acks[:]  # one consistent copy: whole acks only (extend is atomic)
        return min(
            (t for c, t in zip(a[4::ACK_WIDTH], a[9::ACK_WIDTH], strict=True)
             if c == cluster and t >= after),
            default=None,
        )  # fmt: skip

    def last_ack(self, cluster: str, before: float) -> float | None:
        """The latest ack time from `cluster` before `before` (None when none)."""
        a = self.acks[:]  # one consistent copy: whole acks only (extend is atomic)
        return max(
            (t for c, t in zip(a[4::ACK_WIDTH], a[9::ACK_WIDTH], strict=True)
             if c == cluster and t < before),
            default=None,
        )  # fmt: skip

    def build(self, meta):
        with self.lock:
            # emptied in place: producers hold these lists' `extend` / `append`
            acks, n_unacked = self.acks[:], len(self.unacked)
            for j in range(0, len(acks), ACK_WIDTH):
                pid, key, seq, gseq, cluster, topic, part, off, sent, acked = acks[
                    j : j + ACK_WIDTH
                ]
                self.builder.ack(pid, key, seq, gseq, cluster=cluster, topic=topic, partition=part, offset=off,
                                 send_time=sent, ack_time=acked)  # fmt: skip
            for pid, key, seq, gseq, cluster, topic, sent, error in self.unacked[:n_unacked]:
                self.builder.send(
                    pid, key, seq, gseq, cluster=cluster, topic=topic, send_time=sent, error=error
                )
            del self.acks[: len(acks)], self.unacked[:n_unacked]
            return self.builder.build(meta)


@dataclass
class Placement:
    """Where a client works: a cluster (region name), its bootstrap, and the topic names there."""

    cluster: str
    bootstrap: str
    topics: dict[str, str]  # workload topic -> topic name in this cluster


@dataclass
class ProducerConfig:
    rate: float  # records/s; the schedule's base rate when there is one
    keys: int
    record_bytes: int
    acks: str
    idempotence: bool
    timeouts: dict[str, int]
    # the offered rate over time (steady, step, ramp); None: `rate` throughout
    schedule: RateSchedule | None = None


RATE_CHECK_S = 0.05  # how often the producer re-reads its schedule's rate
OFFERED_SAMPLE_S = 0.5  # how often it records how many records it has sent


def producer_config(cfg: ProducerConfig, place: Placement) -> dict:
    """A workload producer's librdkafka settings in `place`: its principal, acks and
    idempotence, and the drill's client timeouts (shared by the dual-write producer)."""
    t = cfg.timeouts
    return {
        **client_config(place.bootstrap, principal=PRODUCER_ROLE),
        "enable.idempotence": cfg.idempotence,
        "acks": cfg.acks,
        "linger.ms": 5,
        "message.timeout.ms": t["message_timeout_ms"],
        "request.timeout.ms": t["request_timeout_ms"],
        "socket.connection.setup.timeout.ms": t["socket_connection_setup_timeout_ms"],
        "metadata.max.age.ms": t["metadata_max_age_ms"],
    }


class InstrumentedProducer(threading.Thread):
    """One producer: a thread owning its librdkafka handle, recording every ack and every
    send that never got one.

    The hot path is what the bench (bench/drill.py) compares with a bare producer:
    - no Python object lives per in-flight record beyond its facts tuple (strings and
      numbers only, which the garbage collector soon stops tracking): each send's
      delivery callback comes from a pool of pre-built callbacks, one per slot, and a
      slot is reused only after its delivery report came back, so a late report from a
      retired client can never be credited to another record; acks go flat into the
      Recorder (nothing kept per ack either);
    - the identity is formatted once per record from per-key prefixes and a per-burst
      send-time suffix, padded and encoded in one step;
    - sends go out in bursts, delivery reports are drained by one poll per burst;
    - produce() takes positional arguments (keywords cost it more than the identity).
    confluent-kafka has no bulk delivery-report call (librdkafka's event API that batches
    them is not exposed): each report is one Python call, kept to a few operations.

    `standby`: a placement to keep a warm client for, opened when the thread starts
    (connected, producer id acquired, topic metadata cached) and switched to when the
    producer is moved there, so a cutover does not wait for a new client (a new
    idempotent producer spends librdkafka's fixed 500 ms before requesting its id).
    """

    BURST = 32  # sends between two polls at full speed

    def __init__(
        self,
        pid: str,
        cfg: ProducerConfig,
        place: Placement,
        rec: Recorder,
        det: Detector,
        standby: Placement | None = None,
    ):
        super().__init__(name=f"producer-{pid}", daemon=True)
        if not pid.isascii():
            raise ValueError(
                f"producer id must be ASCII (record sizes are counted in bytes): {pid!r}"
            )
        self.pid, self.cfg, self.rec, self.det = pid, cfg, rec, det
        self.place = place
        self.standby = standby
        self.gseq = 0
        # slot -> (key, seq, gseq, send time, cluster, topic) until its delivery report
        self.pending: dict[int, tuple] = {}
        self.stop_flag = threading.Event()
        self.move: Placement | None = None
        self.moved = threading.Event()
        self.paused = threading.Event()  # set: do not send (between fence and move)
        self.budget: int | None = None  # when set, send only this many more records
        self.error: BaseException | None = None
        # instants (monotonic) of the warm standby client and of the last move, for the journal
        self.timings: dict[str, float] = {}
        self.moved_warm: bool | None = None  # the last move switched to the warm client
        self._retiring: list[threading.Thread] = []
        # (instant, records sent so far), every OFFERED_SAMPLE_S: the offered rate over time
        self.offered: list[tuple[float, int]] = []

    def _client(self, place: Placement, **extra) -> Producer:
        return Producer({**producer_config(self.cfg, place), **extra}, logger=LOG)

    def move_to(self, place: Placement) -> None:
        self.move = place
        self.moved.clear()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # surfaced by the engine, never lost in a thread
            self.error = e

    # --- the warm standby client ------------------------------------------------------

    def _warm_client(self) -> Producer | None:
        if self.standby is None:
            return None
        self.timings["warm_opened"] = clock()

        def stats(doc: str) -> None:
            # librdkafka's statistics say when the producer id is assigned ("eos")
            if "warm_ready" in self.timings:
                return
            with contextlib.suppress(ValueError, KeyError, TypeError):
                if json.loads(doc)["eos"]["idemp_state"] == "Assigned":
                    self.timings["warm_ready"] = clock()

        extra = {"statistics.interval.ms": 100, "stats_cb": stats} if self.cfg.idempotence else {}
        warm = self._client(self.standby, **extra)
        threading.Thread(target=self._warm_up, args=(warm,), name=f"warm-{self.pid}",
                         daemon=True).start()  # fmt: skip
        return warm

    def _warm_up(self, warm: Producer) -> None:
        """Fetch the standby topics' metadata, so the first send after a move goes at once."""
        timeout = self.cfg.timeouts["socket_connection_setup_timeout_ms"] / 1000 + 1
        for name in sorted(set(self.standby.topics.values())):
            with contextlib.suppress(Exception):  # an unreachable standby: a cold cutover
                warm.list_topics(name, timeout=timeout)
        self.timings["warm_metadata"] = clock()
        if not self.cfg.idempotence:
            self.timings.setdefault("warm_ready", clock())

    # --- the thread -------------------------------------------------------------------

    def _retire(self, p: Producer) -> None:
        """Drop an old cluster's client: what it still holds was never acknowledged
        (indeterminate). Its purge reports are served on a thread of their own, so the
        new client sends meanwhile; `_run` waits for it before it ends."""

        def retire() -> None:
            p.purge(in_queue=True, in_flight=True)
            p.flush(self.cfg.timeouts["message_timeout_ms"] / 1000 + 1)  # the purge reports

        th = threading.Thread(target=retire, name=f"retire-{self.pid}", daemon=True)
        th.start()
        self._retiring.append(th)

    def _run(self) -> None:
        pid, det, acks, unacked = self.pid, self.det, self.rec.acks.extend, self.rec.unacked
        pending: dict[int, tuple] = self.pending
        free: list[int] = []  # slots whose delivery report came back
        callbacks: list[Callable] = []  # slot -> its delivery callback
        success, failure = det.success, det.failure

        def report(slot: int, err, msg) -> None:
            facts = pending.pop(slot, None)
            if facts is None:
                return
            free.append(slot)
            key, seq, gseq, sent, cluster, topic = facts
            now = clock()
            if err is None:
                acks(
                    (pid, key, seq, gseq, cluster, topic, msg.partition(), msg.offset(), sent, now)
                )
                success(now)
            else:
                unacked.append((pid, key, seq, gseq, cluster, topic, sent, str(err)))
                failure(now, err.str())

        p = self._client(self.place)
        warm = self._warm_client()
        topics = sorted(self.place.topics)
        keys = [f"k{i}" for i in range(self.cfg.keys)]
        keys_b = [k.encode() for k in keys]
        prefixes = [f"{pid}|{k}|" for k in keys]  # the identity's constant part, per key
        seqs = [0] * len(keys)  # the next seq per key; continues across moves
        nkeys, ntopics, pad = len(keys), len(topics), self.cfg.record_bytes
        names = [self.place.topics[t] for t in topics]
        cluster = self.place.cluster
        schedule = self.cfg.schedule
        interval = 1.0 / (schedule.rate_at(clock()) if schedule else self.cfg.rate)
        next_send = clock()
        # rate control: the schedule's rate is re-read every RATE_CHECK_S (a step or a ramp
        # changes the spacing of the next sends, never bursts to catch up with the past);
        # sends so far are sampled every OFFERED_SAMPLE_S (the offered series)
        next_check = next_sample = next_send
        offered = self.offered
        i = 0
        stopping, paused = self.stop_flag.is_set, self.paused.is_set
        while not stopping():
            if self.move is not None:
                place, self.move = self.move, None
                self.timings["move_seen"] = clock()
                old = p
                if warm is not None and place.bootstrap == self.standby.bootstrap:
                    p, warm = warm, None
                    self.moved_warm = True
                else:
                    p = self._client(place)
                    self.moved_warm = False
                self._retire(old)
                self.place, names, cluster = place, [place.topics[t] for t in topics], place.cluster
                self.timings["move_ready"] = clock()
                self.moved.set()
            if warm is not None:
                warm.poll(0)  # its statistics and logs
            now = clock()
            if schedule is not None and now >= next_check:
                interval = 1.0 / max(schedule.rate_at(now), 1e-3)
                next_send = min(next_send, now + interval)  # a rise applies at once
                next_check = now + RATE_CHECK_S
            if now >= next_sample:
                offered.append((now, i))
                next_sample = now + OFFERED_SAMPLE_S
            if paused() or self.budget == 0:  # fenced, waiting for a move: no busy loop
                p.poll(0.005)
                continue
            if now < next_send:
                p.poll(min(0.05, next_send - now))  # idle: serve delivery reports at once
                continue
            # the hot path: up to BURST sends per turn, one send time each burst
            suffix = f"|{int(now * 1e9)}|"
            gseq = self.gseq
            limited = self.budget is not None  # then one send per turn, counted
            for _ in range(1 if limited else self.BURST):
                k = i % nkeys
                name = names[i % ntopics]
                seq = seqs[k]
                gseq += 1
                value = f"{prefixes[k]}{seq}|{gseq}{suffix}".ljust(pad, ".").encode()
                slot = free.pop() if free else len(callbacks)
                if slot == len(callbacks):
                    callbacks.append(partial(report, slot))
                try:
                    p.produce(name, value, keys_b[k], ANY_PARTITION, callbacks[slot])
                except BufferError:  # the queue is full: not sent; the same record goes next turn
                    free.append(slot)
                    gseq -= 1
                    p.poll(0.1)
                    break
                pending[slot] = (keys[k], seq, gseq, now, cluster, name)
                seqs[k] = seq + 1
                i += 1
                if limited:
                    self.budget -= 1
                next_send += interval
                if next_send > now:
                    break
            self.gseq = gseq
            p.poll(0)
            if now - next_send > 1.0:  # fell behind (e.g. a full queue): do not burst to catch up
                next_send = now
        offered.append((clock(), i))
        p.flush(self.cfg.timeouts["message_timeout_ms"] / 1000 + 1)
        self._retire(p)
        if warm is not None:
            self._retire(warm)
        for th in self._retiring:
            th.join()
        for _slot, (key, seq, gseq, sent, cluster, topic) in list(pending.items()):
            unacked.append((pid, key, seq, gseq, cluster, topic, sent, None))
        pending.clear()


@dataclass
class GroupConfig:
    name: str  # the group as the history and the report name it
    group_id: str  # its Kafka group.id: scoped to the run, so runs never share committed offsets
    topics: list[str]  # workload topics
    process_rate: float
    commit_interval_ms: int
    session_timeout_ms: int
    fetch_wait_max_ms: int = 100


@dataclass
class Resume:
    """How a moved group positions itself in the serving cluster."""

    mode: str  # synced | checkpoint | reset
    positions: dict[tuple[str, int], tuple[int, str]] = field(
        default_factory=dict
    )  # decided at assignment


class GroupConsumer(threading.Thread):
    """One consumer group member, recording every record handed to it and every commit.

    `standby`: a placement to keep a warm consumer for from the start (connected, the
    coordinator found, topic metadata cached), used when the group is moved there. It
    does not subscribe before the move: a member in the standby's group would stop
    MirrorMaker 2 syncing offsets into it (it syncs only into empty groups)."""

    def __init__(
        self, cfg: GroupConfig, place: Placement, rec: Recorder, standby: Placement | None = None
    ):
        super().__init__(name=f"group-{cfg.name}", daemon=True)
        self.cfg, self.place, self.rec = cfg, place, rec
        self.standby = standby
        self.timings: dict[str, float] = {}
        self.moved_warm: bool | None = None
        self.stop_flag = threading.Event()
        self.move: tuple[Placement, list[str], Callable] | None = None
        self.moved = threading.Event()
        self.error: BaseException | None = None
        self.consumed = 0
        self.producers: set[str] | None = None  # only records of these producers are this drill's

    def _client(self, place: Placement) -> Consumer:
        cluster = place.cluster

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
                **client_config(place.bootstrap, principal=group_role(self.cfg.name)),
                "group.id": self.cfg.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": self.cfg.session_timeout_ms,
                "fetch.wait.max.ms": self.cfg.fetch_wait_max_ms,
                "socket.connection.setup.timeout.ms": 3000,
                "topic.metadata.refresh.interval.ms": 1000,
                "on_commit": committed,
            },
            logger=LOG,
        )

    def move_to(self, place: Placement, topics: list[str], position: Callable) -> None:
        """Continue in `place`, reading `topics` there; `position(group_id, consumer, tps) -> [(offset, source)]`
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

    def _warm_client(self) -> Consumer | None:
        if self.standby is None:
            return None
        self.timings["warm_opened"] = clock()
        warm = self._client(self.standby)

        def warm_up() -> None:
            with contextlib.suppress(Exception):  # an unreachable standby: a cold cutover
                warm.list_topics(timeout=5)  # connects and caches every topic's metadata
                self.timings["warm_ready"] = clock()

        threading.Thread(target=warm_up, name=f"warm-{self.cfg.name}", daemon=True).start()
        return warm

    def _run(self) -> None:
        c = self._client(self.place)
        warm = self._warm_client()
        c.subscribe([self.place.topics[t] for t in self.cfg.topics])
        last_commit = clock()
        interval = self.cfg.commit_interval_ms / 1000
        while not self.stop_flag.is_set():
            if self.move is not None:
                self.timings["move_seen"] = clock()
                # No commit: the old primary is fenced or gone. close() leaves the group,
                # which against a blackholed coordinator blocks for its timeouts: do it aside.
                threading.Thread(target=c.close, name=f"close-{self.cfg.name}", daemon=True).start()
                self.place, topics, position = self.move
                self.move = None
                self.moved_warm = (
                    warm is not None and self.place.bootstrap == self.standby.bootstrap
                )
                c, warm = (warm, None) if self.moved_warm else (self._client(self.place), warm)
                c.subscribe(topics, on_assign=self._on_assign(position))
                self.timings["move_ready"] = clock()
                self.moved.set()
            if warm is not None:
                warm.poll(0)  # not subscribed: serves its logs and errors only
            # a short wait: a move is noticed between two calls, and it is on the recovery path
            for m in c.consume(num_messages=100, timeout=0.02):
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
                if "move_ready" in self.timings and "first_read_after_move" not in self.timings:
                    self.timings["first_read_after_move"] = clock()
                if self.cfg.process_rate > 0:
                    time.sleep(1.0 / self.cfg.process_rate)
            if clock() - last_commit >= interval:
                self._commit(c)
                last_commit = clock()
        self._commit(c)
        c.close()  # serves the last commit's acknowledgement
        if warm is not None:
            warm.close()  # never joined the group: nothing to leave

    def _on_assign(self, position: Callable):
        def assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            self.timings.setdefault("assigned", clock())  # the rejoin done
            where = position(self.cfg.group_id, consumer, partitions)
            for tp, (offset, source) in zip(partitions, where, strict=True):
                tp.offset = offset if offset is not None else OFFSET_BEGINNING
                self.rec.resume(self.cfg.name, cluster=self.place.cluster, topic=tp.topic, partition=tp.partition,
                                source=source, position=offset if offset is not None else 0)  # fmt: skip
            consumer.assign(partitions)
            self.timings.setdefault("positioned", clock())  # the resume positions read

        return assign


def synced_position(
    group_id: str, consumer: Consumer, tps: list[TopicPartition]
) -> list[tuple[int | None, str]]:
    """Resume from the group's offsets in the serving cluster (MM2's synced offsets), all
    partitions in one request; a partition without one from the start."""
    got = consumer.committed([TopicPartition(tp.topic, tp.partition) for tp in tps], timeout=5)
    return [
        (g.offset, ResumeSource.SYNCED.value) if g.offset >= 0 else (None, ResumeSource.RESET.value)
        for g in got
    ]


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
    c = Consumer(client_config(bootstrap, {"group.id": group_id, "enable.auto.commit": False}),
                 logger=LOG)  # fmt: skip
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
            # A transactional copy (active-active's reverse flow) ends on a commit marker,
            # never handed out: the position passing the end offset says it was read.
            for tp in c.position([TopicPartition(t, p) for (t, p) in left]) if left else ():
                if tp.offset >= left[(tp.topic, tp.partition)]:
                    left.pop((tp.topic, tp.partition), None)
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

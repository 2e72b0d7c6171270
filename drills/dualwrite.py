"""Application dual-write (`replication.engine: dual-write`): the workload mode and its drill
phases.

The application, not a replicator, puts every record in both regions: each instrumented
`DualWriteProducer` sends each record to the primary's and the standby's topic of the same
name, both copies carrying the same idempotency key (producer, key, seq; drills/workload.py's
identity). A region lost mid-write leaves records acknowledged by one region only. Each group
is a `DedupConsumer`: it reads in the primary, and when the region is lost it moves to the
survivor, where offsets mean nothing of the primary's (two independently written logs), so
it rewinds by time -- `REWIND_S` before the timestamp of the last record it delivered -- and
drops every record whose key it has already delivered. What it dropped is what the rewind
re-read; that is why the drill's `dedup removed` is > 0 (the rewind window's records, which
it had already delivered in the primary). The key set is kept in memory (an application
keeps it in its own store, or makes its processing idempotent by the same key).

MirrorMaker 2 may keep running on the stack (the steady state still measures its lag); the
application never reads its `<source>.<topic>` copies, and an `identity` policy is refused
(its copies would land in the very topic the application writes in the standby).

The engine calls `validate` before anything is touched, `workload` instead of its own
workload, `cutover` instead of fence / stop replication / move, and `verify` instead of its
own verify. Cutover is the application's: producers retire their client of the lost region
(purging what it held: indeterminate), which is T_fence -- no write from our clients can land
there after it -- and groups move to the survivor. Verify brings the lost region back (its
brokers restart on their data) to read both logs, then runs drills/history/dualwrite.py.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING

from confluent_kafka import OFFSET_END, Consumer, KafkaError, Producer, TopicPartition

from drills.detection import Detector
from drills.history import DrillMeta, Instants, ReplicationPolicy, TopicMapping, write_history
from drills.history.dualwrite import (
    DELIVERED,
    PATTERN,
    REMOVED,
    RESUME_TIMESTAMP,
    Delivery,
    check_dual_write,
)
from drills.journal import DrillRefused, StepFailed
from drills.workload import (
    LOG,
    OFFERED_SAMPLE_S,
    RATE_CHECK_S,
    GroupConfig,
    GroupConsumer,
    Placement,
    ProducerConfig,
    Recorder,
    clock,
    decode,
    encode,
    producer_config,
)

if TYPE_CHECKING:
    from drills.engine import Drill

REWIND_S = 5.0  # how far before its last delivered record a moved group starts reading


def active(spec) -> bool:
    return spec.replication.engine == PATTERN


# --- the workload mode ------------------------------------------------------------------


class DualWriteProducer(threading.Thread):
    """One application producer writing each record to every region it holds a client for.

    Copy k of record n (k = 0: the first placement, the primary; 1: the second) has gseq
    2n + k, so each send is one history row, and the same (producer, key, seq). Only the
    first placement's deliveries feed the detector: it watches the primary's write path (a
    healthy standby acknowledging its copies must not reset a count of primary failures).
    `move_to(place)` drops every other region: its client is purged and closed.
    """

    def __init__(self, pid: str, cfg: ProducerConfig, places: list[Placement], rec: Recorder,
                 det: Detector):  # fmt: skip
        super().__init__(name=f"producer-{pid}", daemon=True)
        self.pid, self.cfg, self.rec, self.det = pid, cfg, rec, det
        self.places = list(places)
        self.place = places[0]  # the serving region (the engine reads its cluster)
        self.pending: dict[int, tuple] = {}
        self.stop_flag = threading.Event()
        self.move: Placement | None = None
        self.moved = threading.Event()
        self.paused = threading.Event()
        self.budget: int | None = None
        self.error: BaseException | None = None
        self.timings: dict[str, float] = {}
        self.moved_warm: bool | None = True  # the survivor's client was open all along
        self.offered: list[tuple[float, int]] = []
        self.gseq = 0

    def _client(self, place: Placement) -> Producer:
        return Producer(producer_config(self.cfg, place), logger=LOG)

    def move_to(self, place: Placement) -> None:
        self.move = place
        self.moved.clear()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # surfaced by the engine
            self.error = e

    def _report(self, slot: int, watched: bool, err, msg) -> None:
        facts = self.pending.pop(slot, None)
        if facts is None:
            return
        key, seq, gseq, sent, cluster, topic = facts
        now = clock()
        if err is None:
            self.rec.acks.extend(
                (self.pid, key, seq, gseq, cluster, topic, msg.partition(), msg.offset(), sent, now)
            )
            if watched:
                self.det.success(now)
        else:
            self.rec.unacked.append((self.pid, key, seq, gseq, cluster, topic, sent, str(err)))
            if watched:
                self.det.failure(now, err.str())

    def _run(self) -> None:
        clients = [self._client(p) for p in self.places]
        live = list(range(len(self.places)))  # indexes of the regions still written
        keys = [f"k{i}" for i in range(self.cfg.keys)]
        seqs = [0] * len(keys)
        topics = sorted(self.places[0].topics)
        schedule = self.cfg.schedule
        interval = 1.0 / (schedule.rate_at(clock()) if schedule else self.cfg.rate)
        next_send = next_check = next_sample = clock()
        slot, n, i = 0, 0, 0
        while not self.stop_flag.is_set():
            if self.move is not None:
                place, self.move = self.move, None
                self.timings["move_seen"] = clock()
                keep = next(k for k, p in enumerate(self.places) if p.cluster == place.cluster)
                for k in live:
                    if k != keep:  # what it still holds was never acknowledged: indeterminate
                        clients[k].purge(in_queue=True, in_flight=True)
                        clients[k].poll(0)
                live, self.place = [keep], place
                self.timings["move_ready"] = self.timings["dropped"] = clock()
                self.moved.set()
            now = clock()
            if schedule is not None and now >= next_check:
                interval = 1.0 / max(schedule.rate_at(now), 1e-3)
                next_send = min(next_send, now + interval)
                next_check = now + RATE_CHECK_S
            if now >= next_sample:
                self.offered.append((now, i))
                next_sample = now + OFFERED_SAMPLE_S
            if now < next_send or self.paused.is_set() or self.budget == 0:
                for k in live:
                    clients[k].poll(0)
                time.sleep(min(0.005, max(0.0, next_send - now)))
                continue
            k_i = i % len(keys)
            key, seq = keys[k_i], seqs[k_i]
            n += 1
            topic = topics[i % len(topics)]
            for k in live:
                place = self.places[k]
                gseq = 2 * n + k
                value = encode(self.pid, key, seq, gseq, now, self.cfg.record_bytes)
                slot += 1
                self.pending[slot] = (key, seq, gseq, now, place.cluster, place.topics[topic])
                try:
                    clients[k].produce(place.topics[topic], value, key.encode(),
                                       on_delivery=partial(self._report, slot, k == 0))  # fmt: skip
                except BufferError as e:  # a full queue: that copy is not sent
                    k_, s_, g_, sent, cluster, name = self.pending.pop(slot)
                    self.rec.unacked.append((self.pid, k_, s_, g_, cluster, name, sent, str(e)))
            seqs[k_i] = seq + 1
            self.gseq = 2 * n + 1
            i += 1
            if self.budget is not None:
                self.budget -= 1
            next_send += interval
            if now - next_send > 1.0:
                next_send = now
            for k in live:
                clients[k].poll(0)
        self.offered.append((clock(), i))
        for k in live:
            clients[k].flush(self.cfg.timeouts["message_timeout_ms"] / 1000 + 1)
        for c in clients:
            c.purge(in_queue=True, in_flight=True)
            c.flush(1)
        for key, seq, gseq, sent, cluster, topic in list(self.pending.values()):
            self.rec.unacked.append((self.pid, key, seq, gseq, cluster, topic, sent, None))
        self.pending.clear()


class DedupConsumer(GroupConsumer):
    """A group member that deduplicates by the idempotency key before the application sees a
    record. Every record Kafka hands it is a history read; its `ledger` says, per record,
    whether it was delivered or removed. Moved to the survivor it is positioned by time
    (REWIND_S before the last record it delivered), not by translated offsets."""

    def __init__(self, cfg: GroupConfig, place: Placement, rec: Recorder):
        super().__init__(cfg, place, rec, standby=None)
        self.seen: set[tuple[str, str, int]] = set()
        self.ledger: list[Delivery] = []
        self.last_ts_ms: int | None = None  # Kafka timestamp of the last record delivered

    def _run(self) -> None:
        c = self._client(self.place)
        c.subscribe([self.place.topics[t] for t in self.cfg.topics])
        last_commit, interval = clock(), self.cfg.commit_interval_ms / 1000
        while not self.stop_flag.is_set():
            if self.move is not None:
                self.timings["move_seen"] = clock()
                threading.Thread(target=c.close, name=f"close-{self.cfg.name}", daemon=True).start()
                self.place, topics, _ = self.move
                self.move = None
                c = self._client(self.place)
                c.subscribe(topics, on_assign=self._by_time)
                self.timings["move_ready"] = clock()
                self.moved.set()
            for m in c.consume(num_messages=100, timeout=0.02):
                if m.error() is not None:
                    if m.error().code() not in (KafkaError._PARTITION_EOF,
                                                KafkaError.UNKNOWN_TOPIC_OR_PART):  # fmt: skip
                        LOG.warning("consumer %s: %s", self.cfg.name, m.error())
                    continue
                self._handle(m)
            if clock() - last_commit >= interval:
                self._commit(c)
                last_commit = clock()
        self._commit(c)
        c.close()

    def _handle(self, m) -> None:
        ident = decode(m.value())
        if ident is None:
            return
        producer, key, seq, gseq, sent = ident
        if self.producers is not None and producer not in self.producers:
            return
        now, cluster = clock(), self.place.cluster
        self.rec.read(self.cfg.name, producer, key, seq, gseq, cluster=cluster, topic=m.topic(),
                      partition=m.partition(), offset=m.offset(), produced_at=sent, poll_time=now)  # fmt: skip
        i = (producer, key, seq)
        outcome = REMOVED if i in self.seen else DELIVERED
        self.ledger.append(Delivery(self.cfg.name, producer, key, seq, cluster, m.topic(),
                                    m.partition(), m.offset(), sent, now, outcome))  # fmt: skip
        if outcome == REMOVED:
            return
        self.seen.add(i)
        self.consumed += 1
        self.last_ts_ms = m.timestamp()[1]
        if "move_ready" in self.timings and "first_read_after_move" not in self.timings:
            self.timings["first_read_after_move"] = clock()
        if self.cfg.process_rate > 0:
            time.sleep(1.0 / self.cfg.process_rate)

    def _by_time(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.timings.setdefault("assigned", clock())
        since = (self.last_ts_ms or 0) - int(REWIND_S * 1000)
        asked = [TopicPartition(tp.topic, tp.partition, max(since, 0)) for tp in partitions]
        got = consumer.offsets_for_times(asked, timeout=5)
        for tp, g in zip(partitions, got, strict=True):
            tp.offset = g.offset if g.offset >= 0 else OFFSET_END  # nothing that recent: the end
        consumer.assign(partitions)
        self.timings.setdefault("positioned", clock())


# --- the drill's phases -------------------------------------------------------------------


def standby_copy(drill: Drill, topic: str) -> str:
    """The standby topic holding `topic`'s records: the application's own copy under
    dual-write (the steady state's lag is then the skew between its two writes), else
    MirrorMaker 2's replica."""
    return topic if active(drill.spec) else drill.target.remote_topic(topic)


def validate(drill: Drill) -> None:
    """Refused before anything is touched: what a dual-write drill cannot be."""
    if not active(drill.spec):
        return
    if drill.target.policy == "identity":
        raise DrillRefused(
            f"replication.engine: dual-write needs the prefixed policy on stack "
            f"{drill.target.facts().stack} (under identity MirrorMaker 2 copies into the topic "
            "the application writes in the standby); set replication.policy: prefixed"
        )


def workload(drill: Drill) -> None:
    """The engine's workload, dual-write: producers write both regions, groups deduplicate."""
    spec, t = drill.spec, drill.target
    w, c = spec.workload, spec.clients
    pcfg = drill._start_schedule()
    places = [drill._placement(t.primary), drill._placement(t.standby)]
    pids = {f"{drill.run_id}-p{i}" for i in range(w.producers)}
    drill.producers = [DualWriteProducer(pid, pcfg, places, drill.rec, drill.detector)
                       for pid in sorted(pids)]  # type: ignore[misc]  # fmt: skip
    for g in w.groups:
        topics = g.topics or [x.name for x in w.topics]
        cfg = GroupConfig(g.name, f"kdrill-{drill.run_id}-{g.name}", topics, g.process_rate,
                          g.commit_interval_ms, c.session_timeout_ms, c.fetch_wait_max_ms)  # fmt: skip
        consumer = DedupConsumer(cfg, places[0], drill.rec)
        consumer.producers = pids
        drill.groups.append(consumer)
    for th in [*drill.groups, *drill.producers]:
        th.start()


def cutover(drill: Drill) -> None:
    """The application's cutover: drop the lost region (T_fence), move groups to the survivor."""
    t, spec = drill.target, drill.spec
    cut = spec.cutover
    moving = (
        drill.producers if cut.producers == "all" else [drill.producers[i] for i in cut.producers]
    )
    survivor = drill._placement(t.standby)
    with drill._step("cutover", f"producers drop {t.primary} (the application's fence)") as s:
        for p in drill.producers:  # every producer: none may write the lost region any more
            p.move_to(survivor)
        drill._wait(lambda: all(p.moved.is_set() for p in drill.producers), 30,
                    "producers to drop the lost region")  # fmt: skip
        drill.instants["t_fence"] = max(p.timings["dropped"] for p in drill.producers)
        s.output = {"t_fence": drill.instants["t_fence"], "replication": "not used (dual-write)"}
    groups = (
        drill.groups
        if cut.groups == "all"
        else [g for g in drill.groups if g.cfg.name in cut.groups]
    )
    with drill._step("cutover", f"move groups to {t.standby} (resume: {RESUME_TIMESTAMP} "
                                f"-{REWIND_S:g}s, dedup by key)") as s:  # fmt: skip
        drill.record.serving = t.standby
        for g in groups:
            g.move_to(survivor, [survivor.topics[x] for x in g.cfg.topics], None)
        moved_at = clock()
        drill._wait(lambda: drill.rec.first_ack(t.standby, moved_at) is not None, 60,
                    f"a first ack from {t.standby}")  # fmt: skip
        drill.instants["t_cut"] = drill.rec.first_ack(t.standby, moved_at)
        s.output = {"t_cut": drill.instants["t_cut"]}
    drill.moved_clients = [*moving, *groups]


def verify(drill: Drill, judge) -> None:
    """Bring the lost region back, read both logs, check the dual-write history, judge it."""
    t, record = drill.target, drill.record
    lost, survivor = t.primary, t.standby
    names = sorted(x.name for x in drill.spec.workload.topics)
    with drill._step("verify", f"{lost} returns: read both regions' logs") as s:
        incident = drill.timeline[drill.incident]
        if (
            record.failover
            and incident.fault_id in drill.applied
            and incident.fault.kind == "region-loss"
        ):
            t.clear_fault(incident.fault_id)  # its brokers restart on the data they had
            drill.applied.remove(incident.fault_id)
            incident.cleared, incident.cleared_by = clock(), "verify (the region returned)"
            record.faults = drill._timeline_facts()
        ends = {}
        for region in (lost, survivor):
            drill._wait(lambda r=region: _ends(t, r, names, ends), 90, f"{region}'s end offsets")
        mine = {p.pid for p in drill.producers}
        for region in (lost, survivor):
            left = drill.clients.read_log(t.bootstrap(region), ends[region], mine, drill.rec,
                                          region, f"kdrill-{drill.run_id}-log-{region}")  # fmt: skip
            if left:
                raise StepFailed(f"could not read back {left} from {region}")
        s.output = {r: {f"{k[0]}[{k[1]}]": v for k, v in e.items()} for r, e in ends.items()}
    with drill._step("verify", "check the dual-write history") as s:
        meta = DrillMeta(
            primary=lost, standby=survivor, topics=tuple(names),
            groups=tuple(g.cfg.name for g in drill.groups), failover=record.failover,
            mapping=TopicMapping(ReplicationPolicy(t.policy), source_alias=lost),
            instants=Instants(**drill.instants), drill_id=drill.run_id,
        )  # fmt: skip
        record.acknowledged = drill.rec.acks_between(0, float("inf"))
        history = drill.rec.build(meta)
        write_history(history, drill.dir / "history")
        ledger = [d for g in drill.groups for d in getattr(g, "ledger", ())]
        (drill.dir / "history" / "deliveries.json").write_text(
            json.dumps([asdict(d) for d in ledger])
        )
        dw = check_dual_write(history, ledger, lost, survivor, names)
        record.result = dw.check_result()
        record.sections["dual_write"] = dw.to_dict()
        verdict = judge(drill.spec.objectives, record.result, record.steady_after, drill.control)
        verdict["checks"] += dw.checks()
        verdict["passed"] = all(c["met"] for c in verdict["checks"])
        record.verdict = verdict
        s.output = {"verdict": verdict, "dual_write": record.sections["dual_write"]}


def _ends(t, region: str, names: list[str], into: dict) -> bool:
    try:
        got = t.end_offsets(region, names)
    except Exception:  # still restarting
        return False
    if {tp for tp, _ in got} != set(names):
        return False
    into[region] = got
    return True

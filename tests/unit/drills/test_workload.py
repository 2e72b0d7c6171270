"""The instrumented producer's hot path on a stand-in librdkafka handle: every send is
recorded once (ack or indeterminate), sequences stay contiguous when the queue is full,
the identity in each value is what `decode` reads, and a move to the standby switches to
the warm client opened at the start. No broker: `FakeProducer` only queues sends and
answers them with delivery reports when polled, as librdkafka does."""

from __future__ import annotations

import time

import pytest

from drills import workload
from drills.workload import (
    ACK_WIDTH,
    Detector,
    InstrumentedProducer,
    Placement,
    ProducerConfig,
    Recorder,
    decode,
)


class FakeMessage:
    def __init__(self, partition: int, offset: int):
        self._p, self._o = partition, offset

    def partition(self):
        return self._p

    def offset(self):
        return self._o


class FakeError:
    def __init__(self, text: str):
        self.text = text

    def str(self):
        return self.text

    def __str__(self):
        return self.text


class FakeProducer:
    made: list[FakeProducer] = []
    refuse_every = 0  # every n-th produce() raises BufferError (a full queue)

    def __init__(self, conf, logger=None):
        self.conf, self.queue, self.sent, self.calls = conf, [], [], 0
        self.offsets: dict[int, int] = {}
        FakeProducer.made.append(self)

    def produce(self, topic, value, key, partition, on_delivery):
        self.calls += 1
        if self.refuse_every and self.calls % self.refuse_every == 0:
            raise BufferError("Local: Queue full")
        self.queue.append((topic, value, key, on_delivery))
        self.sent.append((topic, value, key))

    def poll(self, timeout=None):
        served, self.queue = self.queue, []
        for _topic, _value, key, cb in served:
            part = hash(key) % 3
            off = self.offsets[part] = self.offsets.get(part, -1) + 1
            cb(None, FakeMessage(part, off))
        return len(served)

    def flush(self, timeout=None):
        self.poll()
        return 0

    def purge(self, in_queue=True, in_flight=True):
        purged, self.queue = self.queue, []
        for *_, cb in purged:
            cb(FakeError("Local: Purged in queue"), None)

    def list_topics(self, topic=None, timeout=None):
        return None


@pytest.fixture
def fake(monkeypatch):
    FakeProducer.made, FakeProducer.refuse_every = [], 0
    monkeypatch.setattr(workload, "Producer", FakeProducer)
    return FakeProducer


TIMEOUTS = {"message_timeout_ms": 1000, "request_timeout_ms": 1000,
            "socket_connection_setup_timeout_ms": 1000, "metadata_max_age_ms": 5000}  # fmt: skip
EAST = Placement("east", "east:9092", {"orders": "orders"})
WEST = Placement("west", "west:9092", {"orders": "orders"})


def producer(rate: float, standby: Placement | None = None, idempotence: bool = False):
    rec = Recorder()
    cfg = ProducerConfig(rate, keys=5, record_bytes=64, acks="all", idempotence=idempotence,
                         timeouts=TIMEOUTS)  # fmt: skip
    return rec, InstrumentedProducer("run1-p0", cfg, EAST, rec, Detector("delivery-errors", 3, 2),
                                     standby=standby)  # fmt: skip


def rows(rec: Recorder) -> list[tuple]:
    a = rec.acks
    return [tuple(a[j : j + ACK_WIDTH]) for j in range(0, len(a), ACK_WIDTH)]


def stop(p: InstrumentedProducer) -> None:
    p.stop_flag.set()
    p.join(10)
    assert not p.is_alive() and p.error is None, p.error


def test_every_send_is_acked_once_and_a_refused_send_goes_again_with_the_same_seq(fake):
    fake.refuse_every = 7
    rec, p = producer(rate=1e9)
    p.start()
    time.sleep(0.3)
    stop(p)
    sent = [decode(v) for (_t, v, _k) in fake.made[0].sent]
    assert len(sent) > 1000 and all(s is not None for s in sent)
    assert all(len(v) == 64 for (_t, v, _k) in fake.made[0].sent), "padded to record_bytes"
    # per key, the seqs sent are 0, 1, 2, ... with no hole where the queue was full
    for key in {s[1] for s in sent}:
        seqs = [s[2] for s in sent if s[1] == key]
        assert seqs == list(range(len(seqs))), key
    assert [s[3] for s in sent] == list(range(1, len(sent) + 1)), "gseq: 1, 2, 3, ..."
    # every send is acknowledged exactly once, with the identity it carried
    acked = rows(rec)
    assert sorted((r[1], r[2], r[3]) for r in acked) == sorted((s[1], s[2], s[3]) for s in sent)
    assert all(r[0] == "run1-p0" and r[4] == "east" and r[8] <= r[9] for r in acked)
    assert rec.unacked == [] and not p.pending


def test_a_move_switches_to_the_warm_client_and_what_the_old_one_held_is_indeterminate(fake):
    rec, p = producer(rate=2000, standby=WEST)
    p.start()
    deadline = time.monotonic() + 5
    while rec.ack_count() < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    east, west = fake.made  # the primary's client and the warm one, both opened at the start
    assert (east.conf["bootstrap.servers"], west.conf["bootstrap.servers"]) == (
        "east:9092",
        "west:9092",
    )
    east.poll = lambda timeout=None: 0  # east stops answering: its sends stay in flight
    time.sleep(0.05)
    p.move_to(WEST)
    assert p.moved.wait(5)
    before = rec.ack_count()
    while rec.ack_count() < before + 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop(p)
    assert len(fake.made) == 2, "no new client at the move: the warm one is used"
    assert p.moved_warm is True and p.timings["move_ready"] >= p.timings["move_seen"]
    held = {decode(v)[3] for (_t, v, _k) in east.sent} - {r[3] for r in rows(rec)}
    assert held, "east held sends when it was retired"
    # the retired client's sends are indeterminate (purged, never acknowledged), not lost
    assert {u[3] for u in rec.unacked} == held
    assert all(u[4] == "east" and u[7] == "Local: Purged in queue" for u in rec.unacked)
    west_acks = [r for r in rows(rec) if r[4] == "west"]
    assert west_acks and {decode(v)[3] for (_t, v, _k) in west.sent} == {r[3] for r in west_acks}
    # sequences continue across the move: per key, no seq twice and none skipped
    seen = sorted((r[1], r[2]) for r in rows(rec)) + sorted((u[1], u[2]) for u in rec.unacked)
    for key in {k for k, _ in seen}:
        assert sorted(s for k, s in seen if k == key) == list(range(sum(k == key for k, _ in seen)))


def test_without_a_standby_a_move_opens_a_new_client(fake):
    rec, p = producer(rate=500)
    p.start()
    time.sleep(0.05)
    p.move_to(WEST)
    assert p.moved.wait(5)
    time.sleep(0.05)
    stop(p)
    assert [f.conf["bootstrap.servers"] for f in fake.made] == ["east:9092", "west:9092"]
    assert p.moved_warm is False

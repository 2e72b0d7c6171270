"""The active-active checker (drills/history/activeactive.py) on tiny hand-built histories:
one test per figure, each asserting the exact cases found."""

from __future__ import annotations

from drills.history import DrillMeta, HistoryBuilder, Instants
from drills.history.activeactive import (
    check_active_active,
    group_name,
    pattern_facts,
    summary_lines,
)

E, W, T = "east", "west", "orders"
INS = Instants(t_fault=10.0, t_detect=14.0, t_decide=14.1, t_cut=20.0)
TOPIC = {E: T, W: T}
REPLICA = {E: f"{W}.{T}", W: f"{E}.{T}"}  # the other region's replica, as held in the key region


class Drill:
    """An active-active history: `write(region, key, seq, sent, ack)` from producer p-<region>;
    `log(region, origin, seq, offset)` a copy in `region` of origin's record; `read(...)`."""

    def __init__(self) -> None:
        self.b = HistoryBuilder()
        self.gseq = 0

    def write(self, region: str, key: str, seq: int, sent: float, ack: float | None = 1.0):
        self.gseq += 1
        p = f"p-{region}"
        if ack is None:
            self.b.send(p, key, seq, self.gseq, cluster=region, topic=T, send_time=sent,
                        error="timed out")  # fmt: skip
        else:
            self.b.ack(p, key, seq, self.gseq, cluster=region, topic=T, partition=0, offset=seq,
                       send_time=sent, ack_time=ack)  # fmt: skip

    def log(self, region: str, origin: str, key: str, seq: int, offset: int, topic=None) -> None:
        topic = topic or (T if region == origin else f"{origin}.{T}")
        self.b.logged(f"p-{origin}", key, seq, 0, cluster=region, topic=topic, partition=0,
                      offset=offset)  # fmt: skip

    def both(self, origin: str, key: str, seq: int, offset: int = 0) -> None:
        """The record in its origin's topic and in the other region's replica."""
        for r in (E, W):
            self.log(r, origin, key, seq, offset)

    def read(self, group: str, region: str, origin: str, key: str, seq: int, t: float,
             produced: float = 1.0) -> None:  # fmt: skip
        topic = T if region == origin else f"{origin}.{T}"
        self.b.read(group_name(group, region), f"p-{origin}", key, seq, 0, cluster=region,
                    topic=topic, partition=0, offset=seq, produced_at=produced, poll_time=t)  # fmt: skip

    def check(self, window: float = 0.5, loops=()):
        meta = DrillMeta(primary=E, standby=W, topics=(T,), instants=INS)
        return check_active_active(self.b.build(meta), E, W, [T], window, loops)


def test_conflicts_are_same_key_writes_of_both_regions_within_the_window():
    d = Drill()
    d.write(E, "k0", 0, sent=1.0)
    d.write(W, "k0", 0, sent=1.4)  # 0.4 s apart: both in conflict
    d.write(E, "k1", 0, sent=1.0)
    d.write(W, "k1", 0, sent=2.0)  # 1 s apart: neither
    d.write(E, "k2", 0, sent=1.0)
    d.write(E, "k2", 1, sent=1.1)  # one region only: no conflict
    d.write(W, "k3", 0, sent=3.0, ack=None)  # never acknowledged: not a write that exists
    d.write(E, "k3", 0, sent=3.1)
    r = d.check(window=0.5)
    assert (r.conflicts, r.conflict_keys, r.keys) == (2, 1, 4)
    assert r.conflicts_by_region == {E: 1, W: 1}
    assert r.conflict_sample[0] == {"key": "k0", E: 1, W: 1}
    assert d.check(window=1.0).conflicts == 4  # k1's pair is inside a 1 s window


def test_one_copy_per_region_and_what_each_region_lost():
    d = Drill()
    d.write(E, "k0", 0, sent=1.0)
    d.both(E, "k0", 0)
    d.write(W, "k1", 0, sent=1.0)
    d.both(W, "k1", 0)
    d.write(W, "k1", 1, sent=2.0)
    d.log(W, W, "k1", 1, 1)  # never reached east's replica: lost for west
    r = d.check()
    assert r.copies[E] == {"exactly_one": 2, "duplicated": 0, "misplaced": 0, "missing": 1}
    assert r.copies[W]["exactly_one"] == 3
    assert r.lost == {E: 0, W: 1} and r.lost_locally == {E: 0, W: 0}
    assert r.crossed_twice == 0 and r.records == {E: 1, W: 2}
    assert [c["met"] for c in r.checks()] == [True, False]


def test_a_record_copied_twice_or_back_into_its_origin_crossed_twice():
    d = Drill()
    d.write(E, "k0", 0, sent=1.0)
    d.both(E, "k0", 0)
    d.log(W, E, "k0", 0, 1)  # a second copy in west's replica (an at-least-once re-copy)
    d.write(W, "k1", 0, sent=1.0)
    d.both(W, "k1", 0)
    d.log(W, W, "k1", 0, 0, topic=f"{E}.{T}")  # west's record in west's replica of east: a loop
    r = d.check(loops=["west: east.west.orders"])
    assert r.copies[W]["duplicated"] == 2 and r.copies[W]["misplaced"] == 1
    assert r.copies[E]["duplicated"] == 0
    assert r.crossed_twice == 1 + 2 + 1
    assert r.to_dict()["loop_topics"] == ["west: east.west.orders"]
    assert r.checks()[0]["met"] is False


def test_a_record_its_producer_wrote_twice_crosses_twice_and_is_no_loop():
    """Seen on the pair: east's producers wrote records twice into east across its loss;
    MirrorMaker 2 copied each copy, so west's replica holds two: that is no re-copy."""
    d = Drill()
    d.write(E, "k0", 0, sent=1.0)
    d.both(E, "k0", 0)
    d.both(E, "k0", 0, offset=1)  # the producer's duplicate, copied as written
    r = d.check()
    assert r.copies[E]["duplicated"] == 0 and r.copies[W]["duplicated"] == 0
    assert r.copies[W]["exactly_one"] == 1 and r.crossed_twice == 0
    assert r.written_twice == {E: 1, W: 0}
    assert any("wrote 1 record(s) twice into east" in n for n in r.notes)
    d.log(W, E, "k0", 0, 2)  # a third copy in west: one more than was written
    assert d.check().copies[W]["duplicated"] == 1


def test_stranded_is_what_the_lost_region_acknowledged_before_the_fault_missing_below_E():
    d = Drill()
    for seq, ack in ((0, 5.0), (1, 8.0), (2, 9.0)):
        d.write(E, "k0", seq, sent=ack - 0.1, ack=ack)
    d.write(E, "k0", 3, sent=30.0, ack=30.1)  # after the return: not stranded
    d.b.end_offset(cluster=W, topic=f"{E}.{T}", partition=0, end_offset=1)
    for seq in range(4):
        d.both(E, "k0", seq, offset=seq)  # all arrived in the end (seq 1, 2 above E: late)
    r = d.check()
    assert r.stranded == 2 and r.rpo.records == 2 and r.rpo.late_replicated == 2
    assert r.rpo.seconds == INS.t_fault - 8.0 and r.rpo.acknowledged == 3
    assert r.lost == {E: 0, W: 0}


def test_cross_region_order_differs_when_the_groups_interleave_the_regions_differently():
    d = Drill()
    d.write(E, "k0", 0, sent=1.0)
    d.write(W, "k0", 0, sent=1.0)
    d.write(E, "k1", 0, sent=1.0)
    d.write(W, "k1", 0, sent=1.0)
    # k0: east's member reads east's write first, west's member west's: they differ
    d.read("billing", E, E, "k0", 0, t=1.0)
    d.read("billing", E, W, "k0", 0, t=2.0)
    d.read("billing", W, W, "k0", 0, t=1.0)
    d.read("billing", W, E, "k0", 0, t=2.0)
    # k1: the same order in both
    d.read("billing", E, E, "k1", 0, t=1.0)
    d.read("billing", E, W, "k1", 0, t=2.0)
    d.read("billing", W, E, "k1", 0, t=3.0)
    d.read("billing", W, W, "k1", 0, t=4.0)
    (o,) = d.check().ordering
    assert (o.group, o.keys, o.keys_differing, o.out_of_place) == ("billing", 2, 1, 1)
    assert o.sample == [{"key": "k0", "records": 2, "out_of_place": 1}]


def test_rto_is_the_lost_regions_groups_first_post_fault_read_after_its_return():
    d = Drill()
    d.write(E, "k0", 0, sent=21.0, ack=21.5)
    d.write(W, "k0", 0, sent=11.0, ack=11.1)
    d.read("billing", W, W, "k0", 0, t=11.5, produced=11.0)
    d.read("billing", E, E, "k0", 0, t=22.0, produced=21.0)
    r = d.check()
    assert r.rto.seconds == 12.0 and r.rto.cutover == INS.t_cut - INS.t_decide
    assert r.rto.first_consume == 2.0 and r.rto.slowest_group == "billing@east"
    assert r.rto.by_group == {"billing@east": 12.0, "billing@west": 1.5}


def test_pattern_and_summary_lines_say_active_active():
    assert pattern_facts("dual-write") is None
    assert pattern_facts("active-active", "prefixed")["name"] == "active-active"
    d = Drill()
    d.write(E, "k0", 0, sent=1.0)
    d.write(W, "k0", 0, sent=1.2)
    d.both(E, "k0", 0)
    d.both(W, "k0", 0)
    lines = summary_lines(d.check().to_dict())
    assert lines[0].startswith("active-active: east 1, west 1 records; 2 in conflict on 1 of 1")
    assert lines[1].startswith("active-active: crossed twice 0 (loop topics 0); lost east 0")

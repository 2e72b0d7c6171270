"""The dual-write checker (drills/history/dualwrite.py) on tiny hand-built histories: one test
per figure, each asserting the exact cases found."""

from __future__ import annotations

import pytest

from drills.history import DrillMeta, HistoryBuilder, Instants
from drills.history.dualwrite import (
    DELIVERED,
    REMOVED,
    Delivery,
    check_dual_write,
    pattern_facts,
    summary_lines,
)

E, W, T = "east", "west", "orders"
INS = Instants(t_fault=10.0, t_detect=14.0, t_decide=14.1, t_fence=14.2, t_cut=14.3)


class Drill:
    """A dual-write history, record by record: `write(seq, east=..., west=...)` where each is
    an ack time, "fail" or None (not sent); `log(region, seq, offset)`; `read(...)`."""

    def __init__(self) -> None:
        self.b = HistoryBuilder()
        self.n = 0
        self.ledger: list[Delivery] = []

    def write(self, seq: int, east=None, west=None, key: str = "k0", sent: float = 1.0) -> None:
        self.n += 1
        for k, (region, how) in enumerate(((E, east), (W, west))):
            if how is None:
                continue
            gseq = 2 * self.n + k
            if how == "fail":
                self.b.send("p", key, seq, gseq, cluster=region, topic=T, send_time=sent,
                            error="timed out")  # fmt: skip
            else:
                self.b.ack("p", key, seq, gseq, cluster=region, topic=T, partition=0, offset=seq,
                           send_time=sent, ack_time=how)  # fmt: skip

    def log(self, region: str, seq: int, offset: int, key: str = "k0") -> None:
        self.b.logged("p", key, seq, 0, cluster=region, topic=T, partition=0, offset=offset)

    def read(self, group: str, region: str, seq: int, offset: int, t: float, outcome: str,
             key: str = "k0", produced: float = 1.0) -> None:  # fmt: skip
        self.b.read(group, "p", key, seq, 0, cluster=region, topic=T, partition=0, offset=offset,
                    produced_at=produced, poll_time=t)  # fmt: skip
        self.ledger.append(
            Delivery(group, "p", key, seq, region, T, 0, offset, produced, t, outcome)
        )

    def check(self, groups=("g",)):
        meta = DrillMeta(primary=E, standby=W, topics=(T,), groups=groups, instants=INS)
        return check_dual_write(self.b.build(meta), self.ledger, E, W, [T])


def test_one_sided_records_by_acknowledgement_and_by_log():
    d = Drill()
    d.write(0, east=2.0, west=2.0)
    d.write(1, east=3.0, west="fail")  # east only acknowledged it; west's log has it anyway
    d.write(2, east="fail", west=11.0)  # after the loss: west only
    d.write(3, east="fail", west="fail")  # neither
    for s in (0, 1):
        d.log(E, s, s)
    for off, s in enumerate((0, 1, 2)):
        d.log(W, s, off)
    r = d.check()
    assert r.records == 4 and r.acked_both == 1 and r.acked_neither == 1
    assert r.acked_one_sided == {E: 1, W: 1}
    assert r.logged_both == 2 and r.logged_one_sided == {E: 0, W: 1}
    assert r.rpo.records == 0, "east's one-sided ack is in west's log: not lost"
    assert (r.rpo.indeterminate, r.rpo.indeterminate_found) == (1, 0)


def test_rpo_is_what_the_lost_region_acknowledged_that_the_survivor_lacks():
    d = Drill()
    d.write(0, east=2.0, west=2.0)
    d.write(1, east=9.5, west="fail")
    d.write(2, east=9.8, west="fail")
    d.write(3, east=15.0)  # acknowledged by east after T_fence: split-brain, not RPO
    for s in range(4):
        d.log(E, s, s)
    d.log(W, 0, 0)
    r = d.check()
    assert r.rpo.records == 2
    assert r.rpo.seconds == pytest.approx(10.0 - 9.5)
    assert r.rpo.acknowledged == 3 and r.rpo.split_brain == 1 and r.rpo.late_replicated == 0


def test_divergence_lists_each_key_with_the_sequences_only_one_log_holds():
    d = Drill()
    for s in range(5):
        d.write(s, east=2.0, west=2.0, key="a")
        d.log(E, s, s, key="a")
        d.log(W, s, s, key="a")  # key a: identical
    for s in range(3):
        d.log(E, s, 10 + s, key="b")
    for s in (0, 1, 3, 4, 5):
        d.log(W, s, 10 + s, key="b")
    r = d.check()
    assert r.divergent_keys == 1 and r.keys == 2
    assert r.divergence_sample == [
        {"producer": "p", "key": "b", "only_lost": [[2, 2]], "only_survivor": [[3, 5]]}
    ]


def test_deduplication_is_checked_against_the_reads():
    d = Drill()
    for s in range(3):
        d.write(s, east=2.0, west=2.0)
        d.log(E, s, s)
        d.log(W, s, s)
    d.read("g", E, 0, 0, 5.0, DELIVERED)
    d.read("g", E, 1, 1, 5.1, DELIVERED)
    d.read("g", W, 1, 1, 15.0, REMOVED)  # the rewind re-reads 1: removed, correctly
    d.read("g", W, 2, 2, 15.1, DELIVERED)
    r = d.check()
    (g,) = r.dedup
    assert (g.handed, g.delivered, g.removed, g.expected_removed) == (4, 3, 1, 1)
    assert (g.delivered_twice, g.removed_first, g.ledger_mismatch, g.removed_in_survivor) == (
        0,
        0,
        0,
        1,
    )
    assert all(c["met"] for c in r.checks()) and r.check_result().valid
    (c,) = r.continuity
    assert (c.ideal, c.resume, c.duplicates, c.skipped, c.duplicates_processed) == (2, 1, 1, 0, 0)


def test_a_record_delivered_twice_and_a_first_delivery_removed_are_violations():
    d = Drill()
    for s in range(3):
        d.write(s, east=2.0, west=2.0)
        d.log(W, s, s)
    d.read("g", E, 0, 0, 5.0, DELIVERED)
    d.read("g", W, 0, 0, 15.0, DELIVERED)  # not deduplicated
    d.read("g", W, 1, 1, 15.1, REMOVED)  # never delivered before: lost by the dedup
    r = d.check()
    (g,) = r.dedup
    assert (g.delivered_twice, g.removed_first, g.removed, g.expected_removed) == (1, 1, 1, 1)
    assert [c["met"] for c in r.checks()] == [False, False, True]
    assert not r.check_result().valid
    (c,) = r.continuity
    assert c.duplicates_processed == 1
    # record 1 is above the last offset delivered in west: still owed, not skipped by offset
    # (the dedup that dropped it is what `removed_first` reports)
    assert c.skipped == 0


def test_skipped_counts_survivor_records_a_group_never_delivered_below_its_last():
    d = Drill()
    for s in range(4):
        d.write(s, east=2.0, west=2.0)
        d.log(W, s, s)
    d.read("g", E, 0, 0, 5.0, DELIVERED)
    d.read("g", W, 3, 3, 15.0, DELIVERED)  # resumed past 1 and 2
    (c,) = d.check().continuity
    assert (c.ideal, c.resume, c.skipped) == (1, 3, 2)


def test_rto_is_the_slowest_group_first_post_fault_delivery_in_the_survivor():
    d = Drill()
    d.write(0, east=2.0, west=2.0)
    d.write(1, west=11.0, sent=10.5)
    d.log(W, 0, 0)
    d.log(W, 1, 1)
    d.read("a", W, 0, 0, 15.0, DELIVERED)  # produced before the fault: not T_consume
    d.read("a", W, 1, 1, 16.0, DELIVERED, produced=10.5)
    d.read("b", W, 1, 1, 17.0, DELIVERED, produced=10.5)
    r = d.check(groups=("a", "b"))
    assert r.rto.seconds == pytest.approx(7.0) and r.rto.slowest_group == "b"
    parts = [r.rto.detect, r.rto.decide, r.rto.cutover, r.rto.first_consume]
    assert sum(parts) == pytest.approx(r.rto.seconds)
    assert r.rto.by_group == {"a": pytest.approx(6.0), "b": pytest.approx(7.0)}


def test_a_group_without_a_post_fault_delivery_leaves_rto_unmeasured_and_says_so():
    d = Drill()
    d.write(0, east=2.0, west=2.0)
    d.log(W, 0, 0)
    d.read("g", W, 0, 0, 15.0, DELIVERED)
    r = d.check()
    assert r.rto.seconds is None
    assert any("never consumed a post-fault record" in n for n in r.notes)


def test_the_evidence_section_and_summary_name_the_pattern_and_the_figures():
    d = Drill()
    d.write(0, east=2.0, west=2.0)
    d.write(1, east="fail", west=11.0)
    d.log(E, 0, 0)
    d.log(W, 0, 0)
    d.log(W, 1, 1)
    section = d.check().to_dict()
    assert section["pattern"] == "dual-write"
    assert section["acknowledged"]["one_sided"] == {E: 0, W: 1}
    lines = summary_lines(section)
    assert lines[0].startswith(
        "dual-write: 2 records; acknowledged by one region only: 0 east, 1 west"
    )
    assert "1 of 1 keys diverge" in lines[1]
    assert pattern_facts("dual-write")["name"] == "dual-write"
    assert pattern_facts("mirrormaker2", "prefixed") == {
        "name": "active-passive",
        "describe": "active-passive, asynchronous replication (mirrormaker2, prefixed policy)",
    }
    assert summary_lines(None) == []

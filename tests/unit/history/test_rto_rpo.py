"""RTO and RPO with hand-computed values (instants: fault 100, detect 103, decide 104.5, fence 106, cut 107)."""

from __future__ import annotations

import pytest

from drills.history import Instants, check
from tests.unit.history.scenario import PRIMARY, REPLICATED, STANDBY, TOPIC, Scenario


def two_groups() -> Scenario:
    s = Scenario(groups=("fast", "slow"))
    old = s.produce("k", at=99.0)
    s.replicate(old)
    s.snapshot_end()
    new = s.produce("k", at=107.0, cluster=STANDBY)
    # A pre-fault record consumed in the standby does not end the outage for "slow".
    s.consume("slow", old, at=108.0, cluster=STANDBY, topic=REPLICATED, offset=0)
    s.consume("fast", new, at=109.0, cluster=STANDBY, topic=TOPIC, offset=new.offset)
    s.consume("slow", new, at=111.0, cluster=STANDBY, topic=TOPIC, offset=new.offset)
    return s


def test_rto_is_the_slowest_group_and_its_parts_add_up():
    rto = check(two_groups().history()).rto
    assert rto.seconds == pytest.approx(11.0)
    assert (rto.detect, rto.decide, rto.cutover, rto.first_consume) == pytest.approx(
        (3.0, 1.5, 2.5, 4.0)
    )
    assert rto.detect + rto.decide + rto.cutover + rto.first_consume == pytest.approx(rto.seconds)
    assert rto.by_group == pytest.approx({"fast": 9.0, "slow": 11.0})
    assert rto.slowest_group == "slow"
    assert rto.fence == pytest.approx(6.0)


def test_rto_is_none_when_a_group_never_recovers():
    result = check(two_groups().history(groups=("fast", "slow", "stuck")))
    assert result.rto.seconds is None
    assert result.rto.by_group["stuck"] is None
    assert any("stuck" in note for note in result.notes)


def test_out_of_order_instants_are_noted():
    late_detect = Instants(
        t_fault=100.0, t_detect=105.0, t_decide=104.5, t_fence=106.0, t_cut=107.0
    )
    result = check(two_groups().history(instants=late_detect))
    assert result.rto.decide == pytest.approx(-0.5)
    assert any("out of order" in note for note in result.notes)


def test_rpo_counts_lost_records_and_seconds_from_the_oldest_lost_ack():
    s = Scenario()
    recs = [s.produce("k", at=96.0 + i, ack_delay=0.25) for i in range(4)]  # acks 96.25..99.25
    s.replicate(recs[0])
    s.replicate(recs[1])
    s.snapshot_end()
    rpo = check(s.history()).rpo
    assert rpo.records == 2
    assert rpo.oldest_lost_ack_time == 98.25
    assert rpo.seconds == pytest.approx(100.0 - 98.25)
    assert (rpo.acknowledged, rpo.split_brain, rpo.late_replicated, rpo.indeterminate) == (
        4,
        0,
        0,
        0,
    )


def test_rpo_seconds_is_negative_when_only_post_fault_acks_were_lost():
    s = Scenario()
    before = s.produce("k", at=95.0)
    s.replicate(before)
    s.produce("k", at=101.0)  # acked at 101.5, after the fault, before the fence: lost
    s.snapshot_end()
    rpo = check(s.history()).rpo
    assert (rpo.records, rpo.seconds) == (1, pytest.approx(-1.5))


def test_rpo_counts_each_kind_beside_the_lost_records():
    s = Scenario()
    kept = s.produce("a", at=90.0)
    s.replicate(kept)
    s.produce("b", at=91.0)  # lost
    late = s.produce("c", at=92.0)  # lost, replicated after E
    s.produce("d", at=93.0, acked=False, lands=True)  # indeterminate, written to the primary
    landed = s.produce("e", at=94.0, acked=False, lands=True)  # indeterminate, replicated
    s.replicate(landed)
    s.produce("f", at=95.0, acked=False, lands=False)  # indeterminate, nowhere
    s.snapshot_end()
    s.replicate(late)
    s.produce("g", at=106.5)  # split-brain: acked at 107.0 > fence 106.0
    rpo = check(s.history()).rpo
    assert (rpo.records, rpo.acknowledged) == (2, 3)
    assert rpo.seconds == pytest.approx(100.0 - 91.5)
    assert (rpo.split_brain, rpo.late_replicated) == (1, 1)
    assert (rpo.indeterminate, rpo.indeterminate_found) == (3, 1)


def test_prefixed_and_identity_mapping_give_the_same_rpo():
    from drills.history import ReplicationPolicy

    for policy in ReplicationPolicy:
        s = Scenario(policy=policy)
        recs = [s.produce("k", at=90.0 + i) for i in range(3)]
        s.replicate(recs[0])
        s.snapshot_end()
        s.produce("k", at=108.0, cluster=STANDBY)
        assert check(s.history()).rpo.records == 2, policy


def test_without_failover_the_primary_serves_and_nothing_is_split_brain():
    s = Scenario(
        failover=False,
        groups=("g",),
        instants=Instants(t_fault=100.0, t_detect=102.0, t_decide=102.0, t_cut=104.0),
    )
    before = s.produce("k", at=99.0)  # kept by the primary
    s.consume("g", before, at=99.5, cluster=PRIMARY, topic=TOPIC, offset=before.offset)
    s.commit("g", 1, at=99.8)
    after = s.produce("k", at=104.0)
    s.consume("g", after, at=105.0, cluster=PRIMARY, topic=TOPIC, offset=after.offset)
    result = check(s.history())
    assert result.found == ()
    assert (result.rpo.records, result.rpo.split_brain) == (0, 0)
    assert result.rto.seconds == pytest.approx(5.0)
    (c,) = result.continuity
    assert (c.topic, c.ideal, c.resume, c.duplicates, c.skipped) == (TOPIC, 1, 1, 0, 0)


def test_without_failover_a_restart_past_the_commit_is_a_skip():
    s = Scenario(failover=False, groups=("g",), instants=Instants(t_fault=100.0, t_cut=104.0))
    recs = [s.produce("k", at=98.0 + i) for i in range(3)]
    s.commit("g", 1, at=99.8)
    s.consume("g", recs[2], at=105.0, cluster=PRIMARY, topic=TOPIC, offset=2)
    result = check(s.history())
    (c,) = result.continuity
    assert (c.ideal, c.resume, c.skipped) == (1, 2, 1)


def test_without_failover_records_read_before_the_fault_are_not_skipped():
    """The consumer that keeps running through an in-region fault continues from its own
    position: what it read before the fault, committed or not, is behind it, not skipped."""
    s = Scenario(failover=False, groups=("g",), instants=Instants(t_fault=100.0, t_cut=104.0))
    recs = [s.produce("k", at=96.0 + i) for i in range(4)]
    for i in range(3):
        s.consume("g", recs[i], at=99.0 + i * 0.1, cluster=PRIMARY, topic=TOPIC, offset=i)
    s.commit("g", 1, at=99.8)  # committed only the first record
    s.consume("g", recs[3], at=105.0, cluster=PRIMARY, topic=TOPIC, offset=3)
    (c,) = check(s.history()).continuity
    assert (c.ideal, c.resume, c.skipped, c.duplicates) == (3, 3, 0, 0)

"""One tiny hand-built history per anomaly type, asserting the exact cases found."""

from __future__ import annotations

from dataclasses import replace

import pytest

from drills.history import (
    DUPLICATE,
    LATE,
    LOST_INTERIOR,
    LOST_TAIL,
    REORDERED,
    SKIPPED,
    SPLIT_BRAIN,
    CheckPolicy,
    ReplicationPolicy,
    check,
)
from drills.history.cases import Found, Position, Write
from tests.unit.history.scenario import PRIMARY, REPLICATED, STANDBY, TOPIC, Scenario


def produced(s: Scenario, n: int, key: str = "k", start: float = 90.0):
    return [s.produce(key, at=start + i) for i in range(n)]


def found(rec, topic: str, offset: int, cluster: str = STANDBY) -> Found:
    return Found(rec.producer, rec.key, rec.seq, rec.gseq, Position(cluster, topic, 0, offset))


def write(rec) -> Write:
    return Write(
        rec.producer,
        rec.key,
        rec.seq,
        rec.gseq,
        rec.cluster,
        Position(rec.cluster, rec.topic, rec.partition, rec.offset),
        rec.produced_at,
        rec.produced_at + 0.5,
    )


def clean_scenario(policy=ReplicationPolicy.PREFIXED) -> Scenario:
    """Six records replicated; g commits 3, resumes at the translated 3, reads post-cutover writes."""
    s = Scenario(policy=policy, groups=("g",))
    recs = produced(s, 6)
    for rec in recs:
        s.replicate(rec)
    s.snapshot_end()
    for i, rec in enumerate(recs[:4]):
        s.consume("g", rec, at=91.0 + i, cluster=PRIMARY, topic=TOPIC, offset=rec.offset)
    s.commit("g", 3, at=99.0)
    for rec in recs[3:]:
        s.consume("g", rec, at=108.0, cluster=STANDBY, topic=s.standby_topic, offset=rec.offset)
    for i in range(2):
        rec = s.produce("k", at=108.0, cluster=STANDBY)
        s.consume("g", rec, at=109.0 + i, cluster=STANDBY, topic=TOPIC, offset=rec.offset)
    return s


@pytest.mark.parametrize("policy", list(ReplicationPolicy))
def test_clean_history_has_no_anomaly_and_rpo_zero(policy):
    result = check(clean_scenario(policy).history())
    assert result.valid
    assert result.found == ()
    assert (result.rpo.records, result.rpo.seconds) == (0, 0.0)
    assert result.notes == ()


def test_lost_tail_is_the_unreplicated_end_of_a_key():
    s = Scenario()
    recs = produced(s, 5)
    for rec in recs[:3]:
        s.replicate(rec)
    s.snapshot_end()
    result = check(s.history())
    (case,) = result.anomalies[LOST_TAIL]
    assert (case.producer, case.key, case.segment) == ("p1", "k", PRIMARY)
    assert (case.first_seq, case.last_seq, case.count) == (3, 4, 2)
    assert case.writes == (write(recs[3]), write(recs[4]))
    assert case.last_present_seq == 2
    assert case.next_present is None
    assert result.found == (LOST_TAIL,)


def test_lost_interior_is_a_gap_proven_by_a_later_record():
    s = Scenario()
    recs = produced(s, 5)
    for rec in recs[:2] + recs[3:]:
        s.replicate(rec)
    s.snapshot_end()
    result = check(s.history())
    (case,) = result.anomalies[LOST_INTERIOR]
    assert (case.key, case.first_seq, case.last_seq, case.count) == ("k", 2, 2, 1)
    assert case.writes == (write(recs[2]),)
    # seq 3 went to standby offset 2 (the slot seq 2 should have had): the proof of the gap.
    assert case.next_present == found(recs[3], REPLICATED, 2)
    assert result.found == (LOST_INTERIOR,)
    assert result.rpo.records == 1


def test_tail_lost_before_cutover_is_not_interior_because_of_post_cutover_writes():
    """Producers keep numbering after cutover; the gap is judged within the primary's segment."""
    s = Scenario()
    recs = produced(s, 4)
    s.replicate(recs[0])
    s.snapshot_end()
    s.produce("k", at=108.0, cluster=STANDBY)  # seq 4, in the standby's own topic
    result = check(s.history())
    (case,) = result.anomalies[LOST_TAIL]
    assert (case.first_seq, case.last_seq) == (1, 3)
    assert result.anomalies[LOST_INTERIOR] == ()


def test_duplicate_lists_every_position_of_the_record():
    s = Scenario()
    recs = produced(s, 2)
    s.replicate(recs[0])
    s.replicate(recs[0])  # MM2 restarted and copied it again
    s.replicate(recs[1])
    s.snapshot_end()
    result = check(s.history())
    (case,) = result.anomalies[DUPLICATE]
    assert (case.key, case.seq, case.gseq) == ("k", 0, 0)
    assert case.found == (found(recs[0], REPLICATED, 0), found(recs[0], REPLICATED, 1))
    assert result.found == (DUPLICATE,)  # the repeat is not also a reordering


def test_reordered_names_the_record_and_the_higher_one_it_came_after():
    s = Scenario()
    recs = produced(s, 4)
    for rec in (recs[0], recs[2], recs[1], recs[3]):
        s.replicate(rec)
    s.snapshot_end()
    result = check(s.history())
    (case,) = result.anomalies[REORDERED]
    assert case.record == found(recs[1], REPLICATED, 2)
    assert case.after == found(recs[2], REPLICATED, 1)
    assert result.found == (REORDERED,)


def test_late_records_sit_at_or_above_the_end_offset():
    s = Scenario()
    recs = produced(s, 4)
    for rec in recs[:2]:
        s.replicate(rec)
    s.snapshot_end()  # E = 2
    for rec in recs[2:]:
        s.replicate(rec)  # MM2 was not stopped in time
    result = check(s.history())
    (case,) = result.anomalies[LATE]
    assert (case.topic, case.partition, case.end_offset, case.count) == (REPLICATED, 0, 2, 2)
    assert case.found == (found(recs[2], REPLICATED, 2), found(recs[3], REPLICATED, 3))
    # Not in the standby when consumers cut over: lost all the same.
    assert result.rpo.records == 2
    assert result.rpo.late_replicated == 2
    assert [(c.first_seq, c.last_seq) for c in result.anomalies[LOST_TAIL]] == [(2, 3)]


def test_identity_policy_post_cutover_writes_above_e_are_not_late():
    s = Scenario(policy=ReplicationPolicy.IDENTITY)
    recs = produced(s, 2)
    for rec in recs:
        s.replicate(rec)
    s.snapshot_end()  # E = 2 in topic "orders" of the standby
    after = s.produce("k", at=108.0, cluster=STANDBY)
    assert after.offset == 2
    result = check(s.history())
    assert result.found == ()


def test_skipped_by_offset_lists_the_records_resumed_past():
    s = Scenario(groups=("g",))
    recs = produced(s, 5)
    for rec in recs:
        s.replicate(rec, skip=1)  # a transaction marker before each record: offsets 1,3,5,7,9
    s.snapshot_end()
    s.commit("g", 2, at=99.0)  # g committed primary offsets 0 and 1
    s.b.resume("g", cluster=STANDBY, topic=REPLICATED, partition=0, source="reset", position=9)
    s.consume("g", recs[4], at=108.0, cluster=STANDBY, topic=REPLICATED, offset=9)
    result = check(s.history())
    (case,) = result.anomalies[SKIPPED]
    # ideal: seq 1 is at standby offset 3, so 4; resume 9: offsets 5 and 7 hold records.
    assert (case.group, case.topic, case.ideal, case.resume) == ("g", REPLICATED, 4, 9)
    assert (case.resume_source, case.count) == ("reset", 2)
    assert case.records == (found(recs[2], REPLICATED, 5), found(recs[3], REPLICATED, 7))
    assert result.found == (SKIPPED,)


def test_split_brain_writes_are_primary_acks_after_fence():
    s = Scenario()
    recs = produced(s, 2)
    for rec in recs:
        s.replicate(rec)
    s.snapshot_end()
    rogue = s.produce("k", at=106.0, ack_delay=0.25)  # acked at 106.25 > T_fence 106.0
    result = check(s.history())
    (case,) = result.anomalies[SPLIT_BRAIN]
    assert (case.topic, case.partition, case.t_fence, case.count) == (TOPIC, 0, 106.0, 1)
    assert case.writes == (replace(write(rogue), ack_time=106.25),)
    assert case.writes[0].at == Position(PRIMARY, TOPIC, 0, 2)
    assert case.replicated == 0
    # Neither lost (it is counted as split-brain instead) nor part of RPO.
    assert result.found == (SPLIT_BRAIN,)
    assert (result.rpo.records, result.rpo.split_brain) == (0, 1)


def test_indeterminate_sends_are_neither_lost_nor_a_gap():
    s = Scenario()
    first = s.produce("k", at=90.0)
    s.produce("k", at=91.0, acked=False, lands=False)  # seq 1: timed out, never written
    s.produce("k", at=92.0, acked=False, lands=True)  # seq 2: timed out, but written
    third = s.produce("k", at=93.0)
    for rec in (first, third):
        s.replicate(rec)
    s.snapshot_end()
    result = check(s.history())
    assert result.found == ()
    assert (result.rpo.records, result.rpo.indeterminate, result.rpo.indeterminate_found) == (
        0,
        2,
        0,
    )


def test_policy_tolerates_named_types_and_rejects_unknown_ones():
    s = Scenario()
    recs = produced(s, 3)
    s.replicate(recs[0])
    s.snapshot_end()
    history = s.history()
    assert not check(history).valid
    tolerant = check(history, CheckPolicy(tolerate=frozenset({LOST_TAIL})))
    assert tolerant.valid
    assert tolerant.tolerated == (LOST_TAIL,)
    with pytest.raises(ValueError, match="unknown anomaly"):
        CheckPolicy(tolerate=frozenset({"lost"}))


def test_sample_is_condensed_unless_all_are_asked_for():
    s = Scenario()
    for key in "abcde":
        recs = produced(s, 2, key=key)
        s.replicate(recs[0])
    s.snapshot_end()
    result = check(s.history(), CheckPolicy(sample=2))
    assert result.sample()[LOST_TAIL]["count"] == 5
    assert [c["key"] for c in result.sample()[LOST_TAIL]["cases"]] == ["a", "b"]
    assert len(result.to_dict(full=True)["anomalies"][LOST_TAIL]["cases"]) == 5
    assert len(result.to_dict()["anomalies"][LOST_TAIL]["cases"]) == 2

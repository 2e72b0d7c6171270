"""Consumer continuity with hand-computed ideal and resume points.

Offsets are chosen with transaction markers (empty offsets) in both clusters,
so counting offsets instead of records would give different, wrong numbers.
"""

from __future__ import annotations

from drills.history import SKIPPED, ReplicationPolicy, check
from tests.unit.history.scenario import PRIMARY, REPLICATED, STANDBY, TOPIC, Scenario


def marked_scenario(groups=("a", "b", "c")) -> tuple[Scenario, list, list[int]]:
    """Six records; primary offsets 1,3,5,7,9,11; standby offsets 0,1,2,4,5,8.

    Every group read r0..r4 on the primary and committed offset 8 (r0..r3), so
    the first record still owed is r4, at standby offset 5: ideal = 5.
    """
    s = Scenario(groups=groups)
    recs = [s.produce("k", at=90.0 + i, skip=1) for i in range(6)]
    assert [r.offset for r in recs] == [1, 3, 5, 7, 9, 11]
    standby = [s.replicate(rec, skip={3: 1, 5: 2}.get(i, 0)) for i, rec in enumerate(recs)]
    assert standby == [0, 1, 2, 4, 5, 8]
    s.snapshot_end()
    for group in groups:
        for rec in recs[:5]:
            s.consume(group, rec, at=95.0, cluster=PRIMARY, topic=TOPIC, offset=rec.offset)
        s.commit(group, 8, at=98.0)
    return s, recs, standby


def by_group(result) -> dict:
    return {(c.group, c.topic): c for c in result.continuity}


def test_duplicates_count_records_not_offsets():
    s, recs, standby = marked_scenario(groups=("a",))
    s.b.resume("a", cluster=STANDBY, topic=REPLICATED, partition=0, source="checkpoint", position=1)
    for rec, offset in zip(recs[1:], standby[1:], strict=True):
        s.consume("a", rec, at=108.0, cluster=STANDBY, topic=REPLICATED, offset=offset)
    c = by_group(check(s.history()))[("a", REPLICATED)]
    assert (c.committed, c.ideal, c.resume, c.resume_source, c.observed) == (
        8,
        5,
        1,
        "checkpoint",
        True,
    )
    # [1, 5) holds offsets 1, 2 and 4 (3 is a marker): 3 records, not 4.
    assert (c.duplicates, c.skipped) == (3, 0)
    # The application re-processes r1..r4: r4 was processed but not committed.
    assert c.duplicates_processed == 4


def test_skipped_count_records_not_offsets_and_is_an_anomaly():
    s, recs, standby = marked_scenario(groups=("b",))
    s.b.resume("b", cluster=STANDBY, topic=REPLICATED, partition=0, source="reset", position=8)
    s.consume("b", recs[5], at=108.0, cluster=STANDBY, topic=REPLICATED, offset=standby[5])
    result = check(s.history())
    c = by_group(result)[("b", REPLICATED)]
    # [5, 8) holds only r4 at 5 (6 and 7 are markers): 1 record skipped, not 3.
    assert (c.ideal, c.resume, c.skipped, c.duplicates, c.duplicates_processed) == (5, 8, 1, 0, 0)
    (case,) = result.anomalies[SKIPPED]
    assert [(r.seq, r.at.offset) for r in case.records] == [(4, 5)]


def test_recorded_position_stands_in_when_the_group_read_nothing():
    s, _, _ = marked_scenario(groups=("c",))
    s.b.resume("c", cluster=STANDBY, topic=REPLICATED, partition=0, source="synced", position=9)
    c = by_group(check(s.history()))[("c", REPLICATED)]
    assert (c.resume, c.observed, c.resume_source, c.skipped) == (9, False, "synced", 2)


def test_no_read_and_no_position_is_noted_not_counted():
    s, _, _ = marked_scenario(groups=("c",))
    result = check(s.history())
    c = by_group(result)[("c", REPLICATED)]
    assert (c.resume, c.resume_source, c.skipped, c.duplicates) == (None, "unknown", 0, 0)
    assert any("c never resumed" in note for note in result.notes)


def test_commit_after_the_fence_is_ignored():
    s, recs, standby = marked_scenario(groups=("a",))
    s.commit("a", 12, at=106.5)  # after T_fence = 106: the fenced primary acknowledges none
    s.consume("a", recs[4], at=108.0, cluster=STANDBY, topic=REPLICATED, offset=standby[4])
    c = by_group(check(s.history()))[("a", REPLICATED)]
    assert (c.committed, c.ideal, c.duplicates, c.skipped) == (8, 5, 0, 0)


def test_a_commit_between_fault_and_fence_is_processed_not_owed():
    """A primary still serving through a partial fault (packet loss) acknowledges commits
    until the fence. A group resumed at a synced offset past the pre-fault commit skipped
    nothing: the records between were committed, so none of them is counted as skipped."""
    s, recs, standby = marked_scenario(groups=("a",))
    s.commit("a", 12, at=101.0)  # after T_fault = 100, before T_fence = 106: r0..r5 processed
    s.b.resume("a", cluster=STANDBY, topic=REPLICATED, partition=0, source="synced", position=9)
    c = by_group(check(s.history()))[("a", REPLICATED)]
    assert (c.committed, c.ideal, c.resume, c.skipped, c.duplicates) == (12, 9, 9, 0, 0)
    # Resumed at the pre-fault commit instead, r4 and r5 are re-read: duplicates, not loss.
    s2, recs2, standby2 = marked_scenario(groups=("a",))
    s2.commit("a", 12, at=101.0)
    s2.b.resume("a", cluster=STANDBY, topic=REPLICATED, partition=0, source="synced", position=5)
    for rec, offset in zip(recs2[4:], standby2[4:], strict=True):
        s2.consume("a", rec, at=108.0, cluster=STANDBY, topic=REPLICATED, offset=offset)
    c2 = by_group(check(s2.history()))[("a", REPLICATED)]
    assert (c2.ideal, c2.resume, c2.duplicates, c2.skipped) == (9, 5, 2, 0)


def test_no_commit_means_the_whole_partition_is_owed():
    s = Scenario(groups=("g",))
    recs = [s.produce("k", at=90.0 + i) for i in range(3)]
    for rec in recs:
        s.replicate(rec, skip=2)  # standby offsets 2, 5, 8
    s.snapshot_end()
    s.consume("g", recs[1], at=108.0, cluster=STANDBY, topic=REPLICATED, offset=5)
    c = by_group(check(s.history()))[("g", REPLICATED)]
    assert (c.committed, c.ideal, c.resume, c.skipped) == (None, 2, 5, 1)


def test_prefixed_post_cutover_topic_is_owed_from_its_first_record():
    s = Scenario(groups=("g",))
    first = s.produce("k", at=90.0)
    s.replicate(first)
    s.snapshot_end()
    s.commit("g", 1, at=95.0)
    after = [s.produce("k", at=108.0 + i, cluster=STANDBY) for i in range(3)]
    s.consume("g", after[2], at=112.0, cluster=STANDBY, topic=TOPIC, offset=after[2].offset)
    result = check(s.history())
    local = by_group(result)[("g", TOPIC)]
    assert (local.role, local.ideal, local.resume, local.skipped) == ("local", 0, 2, 2)
    replicated = by_group(result)[("g", REPLICATED)]
    assert (replicated.ideal, replicated.resume) == (1, None)


def test_identity_policy_follows_commits_into_the_same_topic():
    s = Scenario(policy=ReplicationPolicy.IDENTITY, groups=("g",))
    recs = [s.produce("k", at=90.0 + i) for i in range(3)]
    for rec in recs:
        s.replicate(rec, skip=1)  # standby "orders" offsets 1, 3, 5
    s.snapshot_end()
    s.commit("g", 2, at=95.0)  # r0, r1 committed -> ideal 4
    after = s.produce("k", at=108.0, cluster=STANDBY)
    assert after.offset == 6
    s.consume("g", recs[1], at=108.5, cluster=STANDBY, topic=TOPIC, offset=3)
    (c,) = check(s.history()).continuity
    assert (c.topic, c.role, c.ideal, c.resume, c.duplicates, c.skipped) == (
        TOPIC,
        "replicated",
        4,
        3,
        1,
        0,
    )

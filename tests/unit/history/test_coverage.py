"""Coverage gaps (drills/history/coverage.py) on hand-built histories: which primary
partitions MirrorMaker 2 never replicated, and how many acknowledged records that left out."""

from __future__ import annotations

from drills.history.coverage import coverage_gaps, finding_detail, section
from tests.unit.history.scenario import PRIMARY, REPLICATED, STANDBY, TOPIC, Scenario


def added_partition() -> Scenario:
    """Partition 0 replicated throughout; partition 1 (added at 95) never replicated, while
    partition 0's records acknowledged after 95 were."""
    s = Scenario()
    for i in range(4):
        s.replicate(s.produce(f"a{i}", at=90.0 + i))
    for i in range(3):
        s.produce(f"b{i}", at=95.0 + i, partition=1)
        s.replicate(s.produce(f"c{i}", at=95.2 + i))
    s.snapshot_end()
    return s


def test_a_partition_replication_never_covered_is_a_gap():
    gaps = coverage_gaps(added_partition().history())
    assert [(g.topic, g.partition, g.standby_topic) for g in gaps] == [(TOPIC, 1, REPLICATED)]
    (g,) = gaps
    assert (g.acknowledged, g.never_replicated, g.in_standby) == (3, 3, False)
    assert (g.first_ack, g.last_ack) == (95.5, 97.5)  # produced + the 0.5 s ack delay
    assert section(gaps)["never_replicated"] == 3
    line = finding_detail(gaps, PRIMARY, STANDBY)
    assert line.startswith(f"3 records {PRIMARY} acknowledged were never replicated to {STANDBY}")
    assert f"{TOPIC} partitions 1 " in line


def test_a_lost_tail_on_every_partition_is_not_a_gap():
    """Replication stopped: the last records of every partition are missing, partition 1's
    all of them, but nothing of the topic acknowledged after them was replicated."""
    s = Scenario()
    for i in range(3):
        s.replicate(s.produce(f"a{i}", at=90.0 + i))
    s.produce("b0", at=96.0, partition=1)
    s.produce("a9", at=96.5)
    s.snapshot_end()
    assert coverage_gaps(s.history()) == []


def test_records_acknowledged_after_the_fence_are_not_counted():
    s = added_partition()
    s.produce("b9", at=106.0, partition=1)  # acknowledged at 106.5, after T_fence (106)
    (g,) = coverage_gaps(s.history())
    assert g.acknowledged == 3


def test_no_failover_no_standby_to_compare():
    assert coverage_gaps(added_partition().history(failover=False)) == []

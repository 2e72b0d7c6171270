"""The backup-and-restore figures (drills/history/backup.py) on tiny hand-built histories:
the RPO recomputed from the restored log, records restored twice, the restore's rates."""

from __future__ import annotations

import pytest

from drills.history import DrillMeta, HistoryBuilder, Instants, ReplicationPolicy, TopicMapping
from drills.history.backup import (
    Restore,
    check_backup_restore,
    figures,
    pattern_facts,
    restored_topic,
    summary_lines,
)

E, W, T = "east", "west", "orders"
R = restored_topic(T)
INS = Instants(t_fault=10.0, t_detect=14.0, t_decide=14.1, t_fence=14.2, t_cut=20.0)
RESTORE = Restore("s3://b/backup/x/", records=3, bytes=3_000_000, objects=2, seconds=1.5)


def history(acks: list[float], restored: list[int], twice: tuple[int, ...] = ()):
    """Record n acknowledged by east at acks[n]; `restored`: the records found in west's
    restored topic, in order (`twice`: also found a second time)."""
    b = HistoryBuilder()
    for n, at in enumerate(acks):
        b.ack("p", "k0", n, n, cluster=E, topic=T, partition=0, offset=n, send_time=at - 0.01,
              ack_time=at)  # fmt: skip
    for off, n in enumerate([*restored, *twice]):
        b.logged("p", "k0", n, n, cluster=W, topic=R, partition=0, offset=off)
    meta = DrillMeta(primary=E, standby=W, topics=(T,), groups=(), instants=INS,
                     mapping=TopicMapping(ReplicationPolicy.PREFIXED, source_alias="restored"))  # fmt: skip
    return b.build(meta)


def test_rpo_is_what_east_acknowledged_up_to_t_fence_that_the_restore_lacks():
    h = history([1.0, 2.0, 8.0, 9.5, 15.0], restored=[0, 1])
    r = check_backup_restore(h, [T], RESTORE, {"records": 2}, 1.0, checker_rpo_records=2)
    assert (r.acknowledged, r.missing) == (4, 2), "the ack after T_fence is not counted"
    assert r.missing_seconds == pytest.approx(10.0 - 8.0)
    assert [m["gseq"] for m in r.missing_sample] == [2, 3]
    assert all(c["met"] for c in r.checks())


def test_a_checker_rpo_that_disagrees_and_a_record_restored_twice_fail_their_lines():
    h = history([1.0, 2.0], restored=[0, 1], twice=(1,))
    r = check_backup_restore(h, [T], RESTORE, {}, 1.0, checker_rpo_records=1)
    assert (r.missing, r.restored_twice) == (0, 1)
    met = {c["objective"]: c["met"] for c in r.checks()}
    assert met == {"backup-restore RPO recomputed from the restored log": False,
                   "backup-restore records restored twice": False}  # fmt: skip


def test_the_restore_rates_and_the_lines_that_show_them():
    r = check_backup_restore(history([1.0], [0]), [T], RESTORE, {}, 1.0, checker_rpo_records=0)
    d = r.to_dict()
    assert d["restore"]["mb_per_s"] == 2.0  # 3 MB in 1.5 s
    assert d["restore"]["seconds_per_gb"] == 500.0
    assert d["restore"]["records_per_s"] == 2.0
    lines = summary_lines(d)
    assert lines[0].startswith("backup-restore: restored 3 records / 3000000 bytes")
    assert "0 of 1 acknowledged records absent after restore" in lines[1]
    assert [row[0] for row in figures(d)][0] == "backup-restore: restore"
    assert pattern_facts()["name"] == "backup-restore"
    assert summary_lines(None) == [] and figures(None) == []

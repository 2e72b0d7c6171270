"""A drill that fails back, hand-built: its failover and failback windows and the resurrected tail.

Primary east, standby west, prefixed policy; failover instants fault 100 .. cut 107, the
failback switches at 120 (fence 120.5, first ack on east 121).

    r1  east orders[0]@0, replicated to west east.orders[0]@0 (E = 1)
    r2  east orders[0]@1, acknowledged, never replicated: the lost tail
    r3  west orders[0]@0, r4 west orders[0]@1: written while west served;
        copied back into east west.orders[0]@0,1 (failback E = 2)
    r5  east orders[0]@2: written after the failback
The group committed east orders@1 before the fault; after the failback it resumes there
and reads r2 again (resurrected), then r5.
"""

from __future__ import annotations

import pytest

from drills.history import (
    DrillMeta,
    HistoryBuilder,
    Instants,
    ReplicationPolicy,
    TopicMapping,
    check,
    failback_window,
    failover_window,
    resurrected,
)

E, W, T = "east", "west", "orders"
SWITCH = 120.0


def _record(b: HistoryBuilder, gseq: int, cluster: str, offset: int, at: float) -> dict:
    ident = {"producer": "p", "key": "k", "seq": gseq - 1, "gseq": gseq}
    b.ack(**ident, cluster=cluster, topic=T, partition=0, offset=offset, send_time=at,
          ack_time=at + 0.01)  # fmt: skip
    return {**ident, "at": at}


def _read(b: HistoryBuilder, r: dict, cluster: str, topic: str, offset: int, at: float) -> None:
    ident = {k: r[k] for k in ("producer", "key", "seq", "gseq")}
    b.read("g", **ident, cluster=cluster, topic=topic, partition=0, offset=offset,
           produced_at=r["at"], poll_time=at)  # fmt: skip


def _log(b: HistoryBuilder, r: dict, cluster: str, topic: str, offset: int) -> None:
    ident = {k: r[k] for k in ("producer", "key", "seq", "gseq")}
    b.logged(**ident, cluster=cluster, topic=topic, partition=0, offset=offset)


def drill(standby_ack_after_fence: bool = False):
    b = HistoryBuilder()
    r1 = _record(b, 1, E, 0, 98.0)
    r2 = _record(b, 2, E, 1, 99.0)
    _read(b, r1, E, T, 0, 98.5)
    b.commit("g", cluster=E, topic=T, partition=0, offset=1, time=98.6)
    r3 = _record(b, 3, W, 0, 107.0)
    r4 = _record(b, 4, W, 1, 108.0)
    b.resume("g", cluster=W, topic="east.orders", partition=0, source="synced", position=1)
    _read(b, r3, W, T, 0, 107.5)
    _read(b, r4, W, T, 1, 108.5)
    b.commit("g", cluster=W, topic=T, partition=0, offset=2, time=109.0)
    b.end_offset(cluster=W, topic="east.orders", partition=0, end_offset=1)
    if standby_ack_after_fence:
        _record(b, 6, W, 2, 120.6)  # west acknowledges after the failback fenced it
    r5 = _record(b, 5, E, 2, 121.0)
    b.end_offset(cluster=E, topic="west.orders", partition=0, end_offset=2)
    b.resume("g", cluster=E, topic=T, partition=0, source="synced", position=1)
    _read(b, r2, E, T, 1, 121.2)  # the lost tail, read again
    _read(b, r5, E, T, 2, 121.5)
    # read back: the failover's of west, the failback's of east
    _log(b, r1, W, "east.orders", 0)
    _log(b, r3, W, T, 0)
    _log(b, r4, W, T, 1)
    for r, topic, off in ((r1, T, 0), (r2, T, 1), (r5, T, 2), (r3, "west.orders", 0),
                          (r4, "west.orders", 1)):  # fmt: skip
        _log(b, r, E, topic, off)
    failover = DrillMeta(
        primary=E, standby=W, topics=(T,), groups=("g",),
        mapping=TopicMapping(ReplicationPolicy.PREFIXED, source_alias=E),
        instants=Instants(100.0, 103.0, 104.0, 106.0, 107.0), drill_id="t",
    )  # fmt: skip
    back = DrillMeta(
        primary=W, standby=E, topics=(T,), groups=("g",),
        mapping=TopicMapping(ReplicationPolicy.PREFIXED, source_alias=W),
        instants=Instants(SWITCH, SWITCH, SWITCH, 120.5, 121.01), drill_id="t",
    )  # fmt: skip
    full = b.build(failover)
    return full, failover, back


def test_the_failover_window_ignores_the_failback():
    full, _, _ = drill()
    # unwindowed, the old primary's acks after the failback look like split-brain writes
    assert check(full).rpo.split_brain == 1
    result = check(failover_window(full, E, SWITCH))
    assert result.rpo.records == 1 and result.rpo.split_brain == 0
    assert result.rto.seconds == pytest.approx(7.5)  # r3 produced after the fault, read at 107.5


def test_the_failback_is_checked_as_a_failover_with_the_roles_swapped():
    full, _, back = drill()
    fb = failback_window(full, back, SWITCH, {(T, 0): 2})
    assert {r["cluster"] for r in fb.log.to_pylist()} == {E}
    assert sorted((r["topic"], r["offset"]) for r in fb.log.to_pylist()) == [
        (T, 2),
        ("west.orders", 0),
        ("west.orders", 1),
    ]  # the old primary's own records below the start are not the failback's
    result = check(fb)
    assert result.rpo.records == 0 and result.rpo.acknowledged == 2 and result.rpo.split_brain == 0
    rto = result.rto
    assert rto.seconds == pytest.approx(1.5)  # r5 (produced at 121 > 120) read at 121.5
    assert (rto.detect, rto.decide) == (0.0, 0.0)
    assert rto.cutover == pytest.approx(1.01) and rto.first_consume == pytest.approx(0.49)


def test_a_standby_ack_after_the_failback_fence_is_split_brain():
    full, _, back = drill(standby_ack_after_fence=True)
    assert check(failback_window(full, back, SWITCH, {(T, 0): 2})).rpo.split_brain == 1


def test_the_lost_tail_read_again_after_the_failback_is_resurrected():
    full, _, _ = drill()
    lost = check(failover_window(full, E, SWITCH))
    res = resurrected(lost, full, E, {T, "west.orders"}, SWITCH)
    assert (res.lost, res.count, res.read_again, res.by_group) == (1, 1, 1, {"g": 1})
    (case,) = res.cases
    assert (case.gseq, case.acked_at["offset"]) == (2, 1)
    assert case.found_at == ({"topic": T, "partition": 0, "offset": 1},)
    assert case.read_by[0]["poll_time"] == 121.2
    assert case.to_dict()["anomaly"] == "resurrected"
    # a topic consumers no longer read (rebuilt away) holds nothing resurrected
    assert resurrected(lost, full, E, {"west.orders"}, SWITCH).count == 0

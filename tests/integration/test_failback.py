"""Failback as a drill on the session pair: region loss, failover, then back to the old primary.

The drill is the shipped scenario drills/scenarios/failback-after-region-loss.yaml (on a
topic of its own).

The lost tail is made by construction (as in test_drill's RPO test): MirrorMaker 2 is paused
once its lag is zero, K more records are acknowledged by the primary, then the region is
lost. The failover must count K lost; the failback (no rebuild, prefixed policy) must find
those K records back in the old primary's `orders` and report them as resurrected. The
`analytics` group never commits before the fault, so it reads `orders` from its start after
the failback and must read every one of them again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from components.faults import FaultSpec
from components.local import faults
from components.local.faultswitch import REVERSE_KEY, reverse_urn
from drills.history import read_history
from drills.hooks import Callbacks
from drills.runner import run_drill
from drills.targets import LocalTarget
from tests.integration.conftest import wait_for
from tests.integration.test_drill import assert_pair_healthy, on_own_topic

K = 40
SCENARIO = (
    Path(__file__).resolve().parents[2] / "drills" / "scenarios" / "failback-after-region-loss.yaml"
)


def _failback_spec(**changes):
    """drills/scenarios/failback-after-region-loss.yaml on a topic of its own, with a few
    fields changed (dotted paths, as test_drill.spec)."""
    return on_own_topic(SCENARIO, **changes)


def _run_with_lost_tail(pair, tmp_path, s) -> tuple[dict, object]:
    """Run `s` with a lost tail of K records made before the region loss; its evidence."""
    topic = s.workload.topics[0].name
    remote = pair.remote_topic(topic)
    seen: dict[str, object] = {}

    def ends(bootstrap: str, name: str) -> int:
        from components.local import kafka

        return sum(kafka.end_offsets(bootstrap, name, 5).values())

    def before(drill) -> None:
        for p in drill.producers:
            p.budget = 0
        wait_for(lambda: all(not p.pending for p in drill.producers), 30, "in-flight sends")
        primary_end = ends(pair.primary.bootstrap, topic)
        wait_for(lambda: ends(pair.standby.bootstrap, remote) == primary_end, 30, "MM2 at zero lag")
        seen["paused"] = faults.apply(pair, FaultSpec("replication-pause")).id
        drill.producers[0].budget = K
        wait_for(lambda: ends(pair.primary.bootstrap, topic) == primary_end + K, 30, f"{K} acks")
        seen["unreplicated"] = ends(pair.primary.bootstrap, topic) - ends(
            pair.standby.bootstrap, remote
        )

    def after(drill) -> None:
        for p in drill.producers:
            p.budget = None

    try:
        out = run_drill(s, LocalTarget(pair), tmp_path / "run",
                        Callbacks(before_inject=before, after_inject=after))  # fmt: skip
    finally:
        if "paused" in seen:
            faults.clear(pair, seen["paused"])
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["name"], x.get("error")) for x in ev["journal"]["steps"] + ev["journal"]["rollbacks"]
    ]
    assert seen["unreplicated"] == K, "the construction itself failed"
    assert ev["measurements"]["rpo"]["records"] == K  # the failover's lost tail
    return ev, out


def test_region_loss_failback_moves_clients_back_and_reports_the_resurrected_tail(pair, tmp_path):
    s = _failback_spec()
    topic = s.workload.topics[0].name
    ev, out = _run_with_lost_tail(pair, tmp_path, s)
    run = tmp_path / "run"
    assert out.exit_code == 0, ev["verdict"]
    fb = ev["failback"]
    assert fb["completed"] and fb["from"] == pair.standby.name and fb["to"] == pair.primary.name

    # the clients moved back: after the failback's T_cut every producer's acks come from the
    # old primary, none from the standby after its fence; every group consumed there
    h = read_history(run / "failback-history")
    t_fence, t_cut = fb["instants"]["t_fence"], fb["instants"]["t_cut"]
    w = h.writes
    acked = w.filter(pc.invert(pc.is_null(w["ack_time"])))
    after_cut = acked.filter(pc.greater_equal(acked["ack_time"], t_cut))
    assert set(after_cut["cluster"].to_pylist()) == {pair.primary.name}
    assert set(after_cut["producer"].to_pylist()) == {
        p for p in {r["producer"] for r in acked.to_pylist()}
    }
    assert after_cut.num_rows > 100
    standby_late = acked.filter(
        pc.and_(
            pc.equal(acked["cluster"], pair.standby.name), pc.greater(acked["ack_time"], t_fence)
        )
    )
    assert standby_late.num_rows == 0
    assert fb["split_brain"] == {
        "old_primary_after_failover_fence": 0,
        "standby_after_failback_fence": 0,
    }
    reads = h.reads.filter(
        pc.and_(
            pc.equal(h.reads["cluster"], pair.primary.name),
            pc.greater(h.reads["produced_at"], fb["instants"]["t_switch"]),
        )
    )
    assert set(reads["group"].to_pylist()) == {"billing", "analytics"}

    # failback RTO / RPO with the failover's definitions
    rto = fb["rto"]
    parts = [rto["detect"], rto["decide"], rto["cutover"], rto["first_consume"]]
    assert None not in parts and rto["seconds"] is not None
    assert sum(parts) == pytest.approx(rto["seconds"], abs=1e-6)
    assert rto["detect"] == 0 and rto["decide"] == 0  # planned: the switch is the decision
    assert fb["rpo"]["records"] == 0 and fb["rpo"]["acknowledged"] > 100  # zero lag required
    assert all(c["skipped"] == 0 for c in fb["continuity"])
    assert fb["topics_read_after_failback"] == {topic: [f"{pair.standby.name}.{topic}", topic]}

    # the lost tail is back in the old primary: resurrected, every record listed
    res = fb["resurrected"]
    assert res["lost_at_failover"] == K and res["count"] == K
    assert len(res["records"]) == K
    assert all(r["found_at"][0]["topic"] == topic for r in res["records"])
    assert res["by_group"].get("analytics") == K  # it never committed: read them all again
    assert not any(c["objective"].startswith("failback") and not c["met"]
                   for c in ev["verdict"]["checks"]), ev["verdict"]  # fmt: skip
    assert not pair.replication.reverse_running()
    assert reverse_urn(pair) not in pair.stack.resource_urns()  # the stack part is gone again
    assert not pair.stack.drill_setting(REVERSE_KEY)
    assert_pair_healthy(pair)


@pytest.mark.extended  # the rebuild variant (90 s): out of CI's budget, `-m extended` runs it
def test_failback_with_rebuild_resurrects_nothing(pair, tmp_path):
    """rollback.rebuild: the old primary's topic is recreated and filled from the standby, so
    the K records it kept but never replicated are gone: none is resurrected."""
    s = _failback_spec(**{"rollback.rebuild": True})
    topic = s.workload.topics[0].name
    ev, out = _run_with_lost_tail(pair, tmp_path, s)
    fb = ev["failback"]
    assert fb["completed"] and fb["rebuild"]
    assert topic in fb["rebuilt_topics"] and f"{pair.standby.name}.{topic}" in fb["rebuilt_topics"]
    assert fb["resurrected"]["lost_at_failover"] == K and fb["resurrected"]["count"] == 0
    assert fb["rpo"]["records"] == 0 and fb["rpo"]["split_brain"] == 0
    assert fb["rto"]["seconds"] is not None
    assert out.exit_code == 0, ev["verdict"]
    assert not pair.replication.reverse_running()
    assert reverse_urn(pair) not in pair.stack.resource_urns()  # the stack part is gone again
    assert not pair.stack.drill_setting(REVERSE_KEY)
    assert_pair_healthy(pair)

"""Failback on the paper target (tests/unit/drills/test_engine.py): step order, the failback
section, and clean-up on every failure path -- reverse replication off, no fault left."""

from __future__ import annotations

import dataclasses
import json

import pytest

from drills.targets import TargetError
from drills.workload import clock
from tests.unit.drills.test_engine import PaperGroup, PaperTarget, drill, spec

MUTATING = {"create_topics", "set_policy", "apply_fault", "fence", "stop_replication",
            "start_reverse_replication", "rebuild_topics"}  # fmt: skip


class FailbackTarget(PaperTarget):
    """The paper target with a reverse flow: `lag` records the old primary never catches up on."""

    def __init__(self, fail=None, lag: int = 0, policy: str = "prefixed"):
        super().__init__(fail)
        self.reverse, self.lag, self.policy = False, lag, policy

    def reverse_topic(self, topic):
        return f"west.{topic}" if self.policy == "prefixed" else topic

    def rebuild_topics(self, region, topics, reverse_state=False):
        self._call("rebuild_topics")

    def start_reverse_replication(self):
        self.reverse = True  # started, then (maybe) failing: clean-up must still stop it
        self._call("start_reverse_replication")
        return clock()

    def stop_reverse_replication(self):
        self.calls.append("stop_reverse_replication")
        self.reverse = False
        return clock()

    def reverse_running(self):
        return self.reverse

    def end_offsets(self, region, topics):
        return {(t, 0): self.lag if region == "west" else 0 for t in topics}


class CountingGroup(PaperGroup):
    """A paper group that says it consumed (the failback waits for each group to read)."""

    consumed = 0

    def run(self):
        while not self.stop_flag.wait(0.01):
            self.consumed += 1


def failback_spec(**changes):
    return spec(**{"rollback.rule": "failback", "rollback.window_s": 0, "rollback.run_after_s": 0.2,
                   "rollback.lag_timeout_s": 0.5, **changes})  # fmt: skip


def run(tmp_path, target, the_spec=None):
    d, _ = drill(the_spec or failback_spec(), target, tmp_path / "run")
    d.clients = dataclasses.replace(d.clients, group=CountingGroup)
    record = d.run()
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    return d, record, ev


def test_failback_switches_back_and_reports_its_figures(tmp_path):
    target = FailbackTarget()
    d, record, ev = run(tmp_path, target)
    assert record.status == "completed", ev["journal"]["rollbacks"]
    names = [s["name"] for s in ev["journal"]["rollbacks"]]
    assert names == [
        "serve on west for rollback.window_s", "bring east back",
        "reverse replication west -> east", "fence west", "snapshot east end offsets",
        "move clients to east (resume: synced)", "reverse replication off",
        "lift the fence on west", "workload on east for rollback.run_after_s",
    ]  # fmt: skip
    calls = [c for c in target.calls if c in ("clear_faults", "clear_fault", "fence",
             "start_reverse_replication", "stop_reverse_replication")]  # fmt: skip
    assert calls[:5] == ["fence", "clear_faults", "start_reverse_replication", "fence",
                         "stop_reverse_replication"]  # fmt: skip
    assert target.faults == {} and not target.reverse
    assert record.serving == "east"
    assert all(p.place.cluster == "east" for p in d.producers)
    fb = ev["failback"]
    assert fb["completed"] and (fb["from"], fb["to"]) == ("west", "east")
    # paper clients read nothing back: every record the standby acknowledged counts as lost,
    # and the failback's zero-RPO line of the verdict says so
    assert fb["rpo"]["records"] == fb["rpo"]["acknowledged"] > 0
    rpo_line = next(
        c for c in ev["verdict"]["checks"] if c["objective"] == "failback max_rpo_records"
    )
    assert rpo_line["bound"] == 0 and rpo_line["met"] is False and not ev["verdict"]["passed"]
    assert fb["split_brain"]["standby_after_failback_fence"] == 0
    assert fb["topics_read_after_failback"] == {"orders": ["west.orders", "orders"]}
    assert fb["instants"]["t_switch"] < fb["instants"]["t_fence"] < fb["instants"]["t_cut"]
    assert any(c["objective"] == "failback max_split_brain_writes" for c in ev["verdict"]["checks"])
    assert (tmp_path / "run" / "failback-history" / "meta.json").exists()


def test_a_reverse_flow_that_never_catches_up_fails_clearly_and_cleans_up(tmp_path):
    target = FailbackTarget(lag=5)
    _, record, ev = run(tmp_path, target)
    assert record.status == "failed"
    failed = [s for s in ev["journal"]["rollbacks"] if s["status"] == "failed"]
    assert (
        "rollback.require_zero_lag" in failed[0]["error"]
        and "5 records behind" in failed[0]["error"]
    )
    assert target.faults == {} and not target.reverse
    assert "stop_reverse_replication" in target.calls


def test_a_failing_reverse_start_still_stops_it_and_clears_every_fault(tmp_path):
    target = FailbackTarget(fail={"start_reverse_replication": RuntimeError("boom")})
    _, record, ev = run(tmp_path, target)
    assert record.status == "failed"
    assert target.faults == {} and not target.reverse
    assert ev["failback"] == {"completed": False, "why": "RuntimeError: boom"}


def test_rebuild_recreates_the_topics_before_reverse_replication(tmp_path):
    target = FailbackTarget(policy="identity")
    _, record, ev = run(tmp_path, target, failback_spec(**{"rollback.rebuild": True}))
    assert record.status == "completed", ev["journal"]["rollbacks"]
    i = target.calls.index("rebuild_topics")
    assert i < target.calls.index("start_reverse_replication")
    assert ev["failback"]["topics_read_after_failback"] == {"orders": ["orders"]}


def test_identity_without_rebuild_is_refused_before_anything_is_touched(tmp_path):
    target = FailbackTarget(policy="identity")
    _, record, ev = run(tmp_path, target)
    assert record.status == "refused" and not MUTATING & set(target.calls), target.calls


def test_a_target_without_failback_is_refused(tmp_path):
    class NoFailback(FailbackTarget):
        def reverse_topic(self, topic):
            raise TargetError("rollback: failback is not supported on AWS yet (stack x)")

    target = NoFailback()
    _, record, _ = run(tmp_path, target)
    assert record.status == "refused" and not MUTATING & set(target.calls), target.calls


@pytest.mark.parametrize(
    "field,value", [("window_s", -1), ("lag_timeout_s", 0), ("run_after_s", 0)]
)
def test_rollback_fields_are_bounded(field, value):
    from drills.spec import SpecError

    with pytest.raises(SpecError, match=f"rollback.{field}"):
        failback_spec(**{f"rollback.{field}": value})


def test_rollback_defaults():
    r = spec().rollback
    assert (r.rule, r.require_zero_lag, r.window_s, r.rebuild, r.lag_timeout_s, r.run_after_s) == (
        "none",
        True,
        5.0,
        False,
        60.0,
        5.0,
    )

"""Capacity under peak on the real local pair: a step load the standby must absorb.

The drill is the shipped scenario drills/scenarios/peak-at-failover.yaml (on a topic of its
own): the workload steps up tenfold when the fault strikes (`shape: step`, relative to the
fault), the primary's Kafka endpoint is black-holed, and the drill fails over to the
standby. With the standby's CPU quota squeezed (`cpu-squeeze`, its brokers and MirrorMaker
2 are JVMs in its cgroup) it cannot acknowledge the peak: `max_throughput_drop` is missed
with a `standby-capacity` finding. The same step on the unsqueezed standby is absorbed.
The drop is also recomputed here from the history (ack times by region) and the schedule,
not taken from the engine's figure alone.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from components.faults import FaultSpec
from components.local import cgroups, faults, kafka
from drills.engine import EXIT_MISSED, EXIT_PASS
from drills.history import read_history
from drills.hooks import Callbacks
from drills.runner import run_drill
from drills.spec import load_spec, parse_spec
from drills.targets import LocalTarget
from tests.integration.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "drills" / "scenarios" / "peak-at-failover.yaml"
SQUEEZED_CORES = 0.02  # the standby's quota while it serves (the stack gives it 1.0)


def step_spec():
    """The shipped peak-at-failover scenario, on a topic of its own."""
    data = load_spec(SCENARIO).to_dict()
    topic = f"cap-{uuid.uuid4().hex[:6]}"
    data["workload"]["topics"] = [{"name": topic, "partitions": 3}]
    for g in data["workload"]["groups"]:
        g["topics"] = [topic]
    return parse_spec(data)


# What the scenario runs: the steady rate, the step, the bound the verdict judges.
_S = load_spec(SCENARIO)
BASE_RATE = _S.workload.rate  # records/s before the fault
STEP = _S.workload.shape.factor  # the peak: STEP x BASE_RATE from the fault on
BOUND = _S.objectives.max_throughput_drop  # the standby must acknowledge >= 1 - BOUND
assert _S.workload.producers == 1 and _S.workload.shape.relative_to == "fault"


def run(pair, run_dir: Path, cores: float | None):
    """The step drill; with `cores`, the standby squeezed to them once it serves (the
    serve window: after cutover's first ack from it, so the squeeze cannot stall the
    cutover itself) and restored once the window is measured, before the drill reads the
    standby back and its teardown restarts MirrorMaker 2 there."""
    spec = step_spec()
    names = [t.name for t in spec.workload.topics]
    topics = sorted({n for t in names for n in (t, pair.remote_topic(t))})
    applied: list[str] = []

    def squeeze() -> None:
        fault = FaultSpec("cpu-squeeze", pair.standby.name, params={"cores": cores})
        applied.append(faults.apply(pair, fault).id)

    def restore() -> None:
        while applied:
            faults.clear(pair, applied.pop())
        # the starved broker answers again: every partition has a leader and an end offset
        wait_for(lambda: _all_partitions(pair.standby.bootstrap, topics), 60,
                 "the standby to answer after the squeeze")  # fmt: skip

    def on_phase(phase: str, _what: str) -> None:
        if phase == "serve" and not applied:
            squeeze()
        elif phase in ("verify", "rollback", "teardown") and applied:
            restore()

    hooks = Callbacks(phase=on_phase) if cores is not None else Callbacks()
    try:
        out = run_drill(spec, LocalTarget(pair), run_dir, hooks)
    finally:
        if applied:
            restore()
    ev = json.loads((run_dir / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    return out, ev


def _all_partitions(bootstrap: str, topics: list[str]) -> bool:
    try:
        ends = kafka.end_offsets(bootstrap, topics, patience=2)
    except KafkaException:
        return False
    return {t for t, _ in ends} == set(topics) and len(ends) == 3 * len(topics)


def recomputed_drop(run_dir: Path, ev: dict) -> float:
    """1 - acks by the serving region in the serve window / what the step offered in it,
    from the raw history and the spec (not the engine's capacity section)."""
    writes = read_history(run_dir / "history").writes.to_pydict()
    cap = ev["capacity"]
    t_fault = ev["timeline"]["t_fault"]["monotonic"]
    a, b = (t_fault + x for x in cap["window_since_fault_s"])
    acked = sum(
        1
        for c, t in zip(writes["cluster"], writes["ack_time"], strict=True)
        if c == cap["region"] and t is not None and a <= t < b
    )
    offered = BASE_RATE * STEP * (b - a)  # the whole window is after the step
    return max(0.0, 1 - acked / offered)


def test_a_step_load_on_a_squeezed_standby_misses_max_throughput_drop(pair, tmp_path):
    out, ev = run(pair, tmp_path / "run", SQUEEZED_CORES)
    cap = ev["capacity"]
    assert cap["region"] == pair.standby.name and cap["shape"] == "step x1 -> x10 at +0s"
    assert cap["offered_rps"] == pytest.approx(BASE_RATE * STEP, rel=0.01)
    assert cap["throughput_drop"] > BOUND, cap
    assert cap["throughput_drop"] == pytest.approx(recomputed_drop(tmp_path / "run", ev), abs=0.02)
    check = next(c for c in ev["verdict"]["checks"] if c["objective"] == "max_throughput_drop")
    assert check == {"objective": "max_throughput_drop", "value": cap["throughput_drop"],
                     "bound": BOUND, "met": False}  # fmt: skip
    finding = ev["verdict"]["findings"][0]
    assert finding["kind"] == "standby-capacity" and finding["objective"] == "max_throughput_drop"
    assert f"of {cap['offered_rps']:g} records/s offered" in finding["detail"]
    assert cap["finding"] == finding["detail"]
    assert out.exit_code == EXIT_MISSED and not ev["verdict"]["passed"]
    # the offered series shows the step: the schedule at 10x the pre-fault rate after T_fault
    cols = cap["offered_series_columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in cap["offered_series"]]
    before = [r for r in rows if r["since_fault_s"] <= -1]
    after = [r for r in rows if r["since_fault_s"] >= 0 and r is not rows[-1]]
    assert before and all(r["scheduled_rps"] == pytest.approx(BASE_RATE, rel=0.01) for r in before)
    assert after and all(
        r["scheduled_rps"] == pytest.approx(BASE_RATE * STEP, rel=0.01) for r in after
    )
    assert max(r["sent_rps"] for r in after) > 3 * max(r["sent_rps"] for r in before)
    # the squeeze is gone: the standby has the quota the stack gives it
    assert cgroups.quota_cores(pair.standby.cgroup) == pair.standby.spec.cpu_cores
    assert faults.leftovers(pair) == []


@pytest.mark.extended  # the control (40-50 s): out of CI's budget, `-m extended` runs it
def test_the_same_step_on_an_unsqueezed_standby_is_absorbed(pair, tmp_path):
    out, ev = run(pair, tmp_path / "run", None)
    cap = ev["capacity"]
    assert cap["throughput_drop"] <= BOUND, cap
    assert cap["throughput_drop"] == pytest.approx(recomputed_drop(tmp_path / "run", ev), abs=0.02)
    assert "findings" not in ev["verdict"] and "finding" not in cap
    assert out.exit_code == EXIT_PASS, ev["verdict"]


def test_standby_squeezed_then_failover_moves_onto_the_squeezed_standby(pair, tmp_path):
    """drills/scenarios/standby-squeezed-then-failover.yaml (shortened, on a topic of its
    own): the standby's quota cut first, then the primary lost; the drill still fails over
    onto the squeezed standby within its RTO, measures what it sustained there, and leaves
    the stack's quota back in place."""
    data = load_spec(
        REPO / "drills" / "scenarios" / "standby-squeezed-then-failover.yaml"
    ).to_dict()
    topic = f"sq-{uuid.uuid4().hex[:6]}"
    data["workload"]["topics"] = [{"name": topic, "partitions": 3}]
    for g in data["workload"]["groups"]:
        g["topics"] = [topic]
    data["steady_state"]["duration_s"] = 3
    data["cutover"]["run_after_s"] = 3
    s = parse_spec(data)
    squeezed = s.faults[0].params["cores"]
    seen: dict[str, float | None] = {}

    def quota_while_serving(phase: str, _what: str) -> None:
        if phase == "verify" and "verify" not in seen:
            seen["verify"] = cgroups.quota_cores(pair.standby.cgroup)

    out = run_drill(s, LocalTarget(pair), tmp_path / "run", Callbacks(phase=quota_while_serving))
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    # the squeeze struck first, on the standby, and was still in force while it served
    squeeze, loss = ev["faults"]
    assert (squeeze["kind"], squeeze["region"], loss["kind"]) == ("cpu-squeeze", pair.standby.name,
                                                                  "region-loss")  # fmt: skip
    assert loss["incident"] and squeeze["applied"] < loss["applied"]
    assert seen["verify"] == pytest.approx(squeezed)
    # failover onto it: clients served by the standby, within the scenario's bounds
    assert out.record.failover and out.record.serving == pair.standby.name
    rto = ev["measurements"]["rto"]
    assert rto["seconds"] is not None and rto["seconds"] <= s.objectives.max_rto_seconds
    assert ev["measurements"]["rpo"]["split_brain"] == 0
    assert all(c["skipped"] == 0 for c in ev["measurements"]["continuity"])
    cap = ev["capacity"]
    assert cap["region"] == pair.standby.name and cap["offered_rps"] > 0
    assert out.exit_code == EXIT_PASS, ev["verdict"]
    # the squeeze is cleared in teardown: the stack's quota again, nothing left applied
    assert cgroups.quota_cores(pair.standby.cgroup) == pair.standby.spec.cpu_cores
    assert faults.leftovers(pair) == []

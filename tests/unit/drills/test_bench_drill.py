"""bench/drill.py's probe detector: the spec it builds from the default drill (detection
replaced, nothing else), what that rule declares on, and the figures it prints from evidence
(RTO over the runs, the canary before the fault, false detections in steady state)."""

from __future__ import annotations

import pytest
import yaml

from drills.detection import Detector
from drills.library import SCENARIOS_DIR
from drills.spec import SpecError, parse_spec
from tests.unit.benchload import load_bench

DEFAULT = SCENARIOS_DIR / "region-loss.yaml"


@pytest.fixture(scope="module")
def bench():
    return load_bench("drill")


def test_probe_spec_replaces_the_detection_only_and_is_a_valid_drill(bench):
    built = bench.probe_spec(DEFAULT, bench.ProbeChoice())
    original = yaml.safe_load(DEFAULT.read_text())
    assert {k: v for k, v in built.items() if k != "detection"} == {
        k: v for k, v in original.items() if k != "detection"
    }
    d = parse_spec(built, "built").detection
    assert (d.rule, d.checks, d.timeout_ms, d.interval_s, d.threshold) == (
        "probe", ["primary"], 1000, 0.1, 1,
    )  # fmt: skip
    assert d.timeout_s == original["detection"]["timeout_s"]  # the drill's own give-up time
    other = bench.probe_spec(DEFAULT, bench.ProbeChoice(interval_s=0.25, threshold=2,
                                                        timeout_ms=500))  # fmt: skip
    assert other["detection"]["threshold"] == 2 and other["detection"]["timeout_ms"] == 500


def test_probe_spec_refuses_what_the_spec_refuses_in_one_line(bench, tmp_path):
    with pytest.raises(SpecError) as e:
        bench.probe_spec(DEFAULT, bench.ProbeChoice(timeout_ms=50))
    assert "detection.timeout_ms" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SpecError, match="interval_s"):
        bench.probe_spec(DEFAULT, bench.ProbeChoice(interval_s=0.01))
    bad = tmp_path / "x.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(SpecError, match="x.yaml: not a drill spec"):
        bench.probe_spec(bad, bench.ProbeChoice())


def test_the_built_rule_declares_on_the_first_canary_lost_after_the_fault(bench):
    """threshold 1: one round trip not complete in its timeout declares -- only after the
    check worked once, and only for a round trip ending after T_fault."""
    d = Detector(parse_spec(bench.probe_spec(DEFAULT, bench.ProbeChoice()), "b").detection)
    d.round_trip("primary", "east", 10.0, True, "round trip 12 ms")
    d.arm()
    d.round_trip("primary", "east", 10.5, False, "canary 5 not read back")  # before the fault
    d.since(11.0)
    assert d.t_detect is None
    d.round_trip("primary", "east", 11.05, True, "round trip 9 ms")
    d.round_trip("primary", "east", 12.15, False, "canary 7 not read back from east in 1000 ms")
    assert d.t_detect == 12.15 and d.fired.on == "east"


def ev(rto: float | None, detect: float = 1.1, t_fault: float = 50.0, obs=()) -> dict:
    m = None
    if rto is not None:
        m = {"rto": {"seconds": rto, "detect": detect, "decide": 0.01,
                     "cutover": 0.2, "first_consume": rto - detect - 0.21}}  # fmt: skip
    return {"measurements": m, "timeline": {"t_fault": {"monotonic": t_fault}},
            "detection": {"observations": list(obs), "fired": None}}  # fmt: skip


def test_rto_figures_over_the_drills_that_measured_one(bench):
    fig = bench.rto_figures([ev(1.6), {}, ev(None), ev(1.4, detect=1.05), ev(2.3, detect=1.2)])
    assert fig["each"] == [1.4, 1.6, 2.3]
    assert (fig["min"], fig["median"], fig["max"]) == (1.4, 1.6, 2.3)
    assert fig["parts"]["detect"] == 1.1 and fig["parts"]["cutover"] == 0.2
    assert set(fig["parts"]) == {"detect", "decide", "cutover", "first_consume"}
    assert bench.rto_figures([{}, ev(None)]) is None


def test_probe_before_fault_keeps_round_trips_ending_before_t_fault(bench):
    obs = [
        {"probe": "primary", "t": 49.0, "ok": True, "detail": "round trip 14 ms"},
        {"probe": "primary", "t": 49.5, "ok": False, "detail": "canary 3 not read back"},
        {"lag": "replication-lag", "t": 49.6, "value": 1, "unit": "records"},
        {"probe": "primary", "t": 49.9, "ok": True, "detail": "round trip 230 ms"},
        {"probe": "primary", "t": 51.0, "ok": False, "detail": "canary 9 not read back"},
    ]
    assert bench.probe_before_fault([ev(1.5, obs=obs), {}]) == ([14.0, 230.0], 1)


def test_false_detections_count_declarations_per_threshold(bench):
    ok, fail = (0, True, 10.0, ""), (0, False, None, "x")
    seen = [ok, fail, ok, fail, fail, fail, ok, fail, fail]
    assert bench.false_detections(seen, 1) == 3  # each run of failures declares once
    assert bench.false_detections(seen, 2) == 2
    assert bench.false_detections(seen, 3) == 1
    assert bench.false_detections([ok] * 5, 1) == 0


def test_update_tails_read_the_inject_step_of_drills_that_measured_an_rto(bench):
    def with_steps(e: dict, tail: float) -> dict:
        e["journal"] = {"steps": [
            {"phase": "steady-state", "output": {}},
            {"phase": "inject", "output": {"stack_update": {"t_fault_to_return_s": tail}}},
        ]}  # fmt: skip
        return e

    evs = [with_steps(ev(1.5), 0.31), with_steps(ev(None), 9.0), {}, with_steps(ev(3.2), 2.4)]
    assert bench.update_tails(evs) == [0.31, 2.4]

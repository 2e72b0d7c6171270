"""Capacity under peak without a broker: the rate shapes' arithmetic, their spec fields, the
instrumented producer's rate control on a stand-in handle, `judge` on max_throughput_drop,
and the engine's capacity section on the paper target (tests/unit/drills/test_engine.py).
"""

from __future__ import annotations

import time

import pytest

from drills.engine import judge
from drills.shapes import STEADY, RateSchedule, Shape
from drills.spec import Objectives, SpecError, WorkloadShape
from drills.workload import Detector, InstrumentedProducer, ProducerConfig, Recorder, clock
from tests.unit.drills import test_engine as paper
from tests.unit.drills.test_spec import raw
from tests.unit.drills.test_workload import EAST, TIMEOUTS, fake  # noqa: F401 (fixture)

STEP = Shape("step", factor=5, at_s=2)
RAMP = Shape("ramp", factor=3, from_factor=1, at_s=1, over_s=4)


# --- the shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, since, factor",
    [
        (STEADY, None, 1), (STEADY, 100, 1),
        (STEP, None, 1), (STEP, 1.99, 1), (STEP, 2, 5), (STEP, 1e6, 5),
        (RAMP, None, 1), (RAMP, 0.5, 1), (RAMP, 1, 1), (RAMP, 3, 2), (RAMP, 5, 3), (RAMP, 9, 3),
        (Shape("step", factor=0.5, from_factor=2), -1, 2), (Shape("step", factor=0.5, from_factor=2), 0, 0.5),
    ],
)  # fmt: skip
def test_factor_over_time(shape, since, factor):
    assert shape.factor_at(since) == pytest.approx(factor)


@pytest.mark.parametrize("shape", [STEADY, STEP, RAMP, Shape("ramp", 0.2, 4, 0, 3)])
@pytest.mark.parametrize(
    "a, b", [(-3, 10), (0, 1), (1.5, 2.5), (2, 4.5), (4.9, 5.1), (6, 6), (7, 3)]
)
def test_integral_is_the_exact_area_under_the_factor(shape, a, b):
    n = 20_000  # midpoint rule: exact for piecewise-linear factors up to the kinks
    width = (b - a) / n if b > a else 0
    area = sum(shape.factor_at(a + (i + 0.5) * width) for i in range(n)) * width
    assert shape.integral(a, b) == pytest.approx(area, abs=1e-3)


def test_a_schedule_anchored_on_the_fault_steps_only_once_the_fault_is_known():
    anchor: list[float | None] = [None]
    s = RateSchedule(200, Shape("step", factor=10), lambda: anchor[0])
    assert s.rate_at(50) == 200 and s.offered(0, 10) == pytest.approx(2000)
    anchor[0] = 100.0
    assert s.rate_at(99.9) == 200 and s.rate_at(100) == 2000
    assert s.offered(98, 104) == pytest.approx(200 * 2 + 2000 * 4)


def test_describe_and_peak():
    assert STEADY.describe() == "steady" and STEADY.peak == 1
    assert STEP.describe() == "step x1 -> x5 at +2s" and STEP.peak == 5
    assert RAMP.describe() == "ramp x1 -> x3 over 4s at +1s" and RAMP.peak == 3


# --- the spec -------------------------------------------------------------------------


def parse(shape=None, **objectives):
    from drills.spec import parse_spec

    d = raw()
    if shape is not None:
        d["workload"]["shape"] = shape
    d["objectives"].update(objectives)
    return parse_spec(d, "region-loss.yaml")


def test_shape_defaults_to_steady_and_round_trips():
    s = parse()
    assert s.workload.shape == WorkloadShape() and s.workload.shape.shape() == STEADY
    assert s.objectives.max_throughput_drop is None
    s = parse({"kind": "ramp", "factor": 4, "over_s": 10, "relative_to": "start"},
              max_throughput_drop=0.2)  # fmt: skip
    assert s.workload.shape.shape() == Shape("ramp", 4, 1, 0, 10)
    assert s.workload.peak_rate == 4 * s.workload.rate
    from drills.spec import parse_spec

    assert parse_spec(s.to_dict()) == s


@pytest.mark.parametrize(
    "shape, objectives, expected",
    [
        ({"kind": "steady", "factor": 2}, {},
         "workload.shape.factor: steady takes no factor (got 2); set kind: step or ramp, or remove it"),
        ({"kind": "ramp", "factor": 2}, {},
         "workload.shape.over_s: a ramp needs over_s > 0, the seconds from from_factor to factor (got 0), e.g. over_s: 10"),
        ({"kind": "step", "factor": 2, "over_s": 3}, {},
         "workload.shape.over_s: a step has no duration (got over_s: 3); remove it or set kind: ramp"),
        ({"kind": "spike"}, {}, "workload.shape.kind: must be one of 'steady', 'step' or 'ramp' (got 'spike')"),
        ({"kind": "step", "factor": 0}, {}, "workload.shape.factor: must be > 0 (got 0)"),
        ({"kind": "step", "factor": 10_000}, {}, "workload.shape.factor: must be <= 1000 (got 10000)"),
        ({"kind": "step", "relative_to": "cutover"}, {},
         "workload.shape.relative_to: must be one of 'fault' or 'start' (got 'cutover')"),
        (None, {"max_throughput_drop": 1.5}, "objectives.max_throughput_drop: must be <= 1 (got 1.5)"),
        (None, {"max_throughput_drop": -0.1}, "objectives.max_throughput_drop: must be >= 0 (got -0.1)"),
    ],
)  # fmt: skip
def test_bad_shapes_and_bounds_are_one_line(shape, objectives, expected):
    with pytest.raises(SpecError) as e:
        parse(shape, **objectives)
    assert str(e.value) == f"region-loss.yaml: {expected}"


def test_the_peak_rate_is_bounded_like_the_rate():
    from drills.spec import parse_spec

    d = raw()
    d["workload"].update(rate=2000, shape={"kind": "step", "factor": 1000})
    with pytest.raises(SpecError) as e:
        parse_spec(d, "region-loss.yaml")
    assert str(e.value) == (
        "region-loss.yaml: workload.shape: rate * the shape's peak factor is 2e+06 records/s; "
        "at most 1e+06: lower rate or the factor"
    )


# --- the producer's rate control ------------------------------------------------------


def test_the_producer_applies_a_step_when_its_anchor_becomes_known(fake):  # noqa: F811
    anchor: list[float | None] = [None]
    schedule = RateSchedule(100, Shape("step", factor=20), lambda: anchor[0])
    cfg = ProducerConfig(100, keys=5, record_bytes=64, acks="all", idempotence=False,
                         timeouts=TIMEOUTS, schedule=schedule)  # fmt: skip
    rec = Recorder()
    p = InstrumentedProducer("run1-p0", cfg, EAST, rec, Detector("delivery-errors", 3, 2))
    p.start()
    time.sleep(1.0)
    before = rec.ack_count()
    anchor[0] = clock()
    time.sleep(1.0)
    after = rec.ack_count() - before
    p.stop_flag.set()
    p.join(10)
    assert p.error is None
    # 100/s then 2,000/s: generous bounds (a loaded machine delays the thread, never speeds it)
    assert 30 <= before <= 130 and after > 5 * max(before, 1), (before, after)
    # the offered series: cumulative sends, sampled about every half second, non-decreasing
    times, sent = [t for t, _ in p.offered], [n for _, n in p.offered]
    assert len(p.offered) >= 3 and sent == sorted(sent) and times == sorted(times)
    assert sent[-1] == len(fake.made[0].sent)


def test_a_steady_producer_without_a_schedule_keeps_its_rate(fake):  # noqa: F811
    cfg = ProducerConfig(200, keys=5, record_bytes=64, acks="all", idempotence=False,
                         timeouts=TIMEOUTS)  # fmt: skip
    rec = Recorder()
    p = InstrumentedProducer("run1-p0", cfg, EAST, rec, Detector("delivery-errors", 3, 2))
    p.start()
    time.sleep(0.5)
    p.stop_flag.set()
    p.join(10)
    assert 20 <= rec.ack_count() <= 130


# --- judge ----------------------------------------------------------------------------


def result():
    from types import SimpleNamespace

    return SimpleNamespace(
        rto=SimpleNamespace(seconds=1.0),
        rpo=SimpleNamespace(records=0, seconds=0.0, split_brain=0),
        continuity=[], anomalies={}, found=[], tolerated=[],
    )  # fmt: skip


CAP = {"region": "west", "throughput_rps": 579.0, "offered_rps": 2000.0, "throughput_drop": 0.7105,
       "shape": "step x1 -> x10 at +0s"}  # fmt: skip


def test_a_drop_over_the_bound_fails_with_a_capacity_finding():
    v = judge(Objectives(max_throughput_drop=0.25), result(), CAP)
    check = next(c for c in v["checks"] if c["objective"] == "max_throughput_drop")
    assert check == {
        "objective": "max_throughput_drop",
        "value": 0.7105,
        "bound": 0.25,
        "met": False,
    }
    assert not v["passed"]
    assert v["findings"] == [{
        "kind": "standby-capacity", "objective": "max_throughput_drop",
        "detail": "west cannot absorb the offered load (step x1 -> x10 at +0s): it acknowledged "
                  "579 of 2000 records/s offered after cutover, a drop of 71.0% (bound 25.0%)",
    }]  # fmt: skip


def test_a_drop_within_the_bound_passes_and_no_bound_judges_nothing():
    v = judge(Objectives(max_throughput_drop=0.8), result(), CAP)
    assert v["passed"] and "findings" not in v
    v = judge(Objectives(), result(), CAP)
    assert "max_throughput_drop" not in [c["objective"] for c in v["checks"]] and v["passed"]


def test_an_unmeasured_drop_misses_the_objective():
    v = judge(Objectives(max_throughput_drop=0.5), result(), None)
    assert not v["passed"] and "not measured" in v["findings"][0]["detail"]


# --- the engine's capacity section ----------------------------------------------------


def test_the_serve_phase_measures_the_drop_against_the_shape(tmp_path):
    """The paper producer sends about 100/s whatever the schedule says: against a step to
    x10 the serving region acknowledges about a tenth of the offered load."""
    s = paper.spec(**{"workload.shape": {"kind": "step", "factor": 10},
                      "objectives.max_throughput_drop": 0.5, "cutover.run_after_s": 2.0})  # fmt: skip
    d, ev = paper.drill(s, paper.PaperTarget(), tmp_path / "run")
    record = d.run()
    assert record.status == "completed"
    cap = ev.document["capacity"]
    assert cap["region"] == "west" and cap["shape"] == "step x1 -> x10 at +0s"
    assert cap["offered_rps"] == pytest.approx(2000, rel=0.01)  # 200/s x 10, one producer
    assert cap["throughput_drop"] == pytest.approx(
        1 - cap["acknowledged"] / cap["offered"], abs=1e-3
    )
    assert cap["throughput_drop"] > 0.5 and cap["finding"].startswith("west cannot absorb")
    assert ev.document["verdict"]["findings"][0]["kind"] == "standby-capacity"
    assert record.exit_code == 1
    rows = cap["offered_series"]
    assert cap["offered_series_columns"] == [
        "since_fault_s",
        "scheduled_rps",
        "sent_rps",
        "acked_rps",
    ]
    assert rows[0][1] < rows[-1][1] == pytest.approx(2000)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def test_a_steady_drill_within_capacity_passes_the_objective(tmp_path):
    s = paper.spec(**{"workload.rate": 50, "objectives.max_throughput_drop": 0.6,
                      "cutover.run_after_s": 1.0})  # fmt: skip
    d, ev = paper.drill(s, paper.PaperTarget(), tmp_path / "run")
    d.run()
    cap = ev.document["capacity"]
    assert cap["shape"] == "steady" and cap["offered_rps"] == pytest.approx(50, rel=0.01)
    check = next(
        c for c in ev.document["verdict"]["checks"] if c["objective"] == "max_throughput_drop"
    )
    assert check["met"], cap


# --- the report and the summary -------------------------------------------------------


def _with_capacity(drop: float, bound: float | None) -> dict:
    """The passing fixture's evidence with a measured drop and (maybe) the objective."""
    import copy

    from tests.unit.report.conftest import evidence

    ev = copy.deepcopy(evidence("passing"))
    ev["spec"]["objectives"]["max_throughput_drop"] = bound
    ev["capacity"].update(CAP, throughput_drop=drop, offered_rps=2000.0,
                          throughput_rps=round(2000 * (1 - drop), 1))  # fmt: skip
    return ev


@pytest.mark.parametrize("drop, bound, fired", [(0.7105, 0.25, True), (0.05, 0.25, False)])
def test_the_diagnosis_judges_capacity_by_the_objective_when_set(drop, bound, fired):
    from pathlib import Path

    from drills.report.diagnosis import diagnose
    from drills.report.facts import derive
    from drills.report.layers import checks
    from drills.report.load import RunData

    run = RunData(Path("."), _with_capacity(drop, bound), None, "no history")
    f = next(x for x in diagnose(run, derive(run)) if x.rule == "standby-capacity")
    assert f.fired is fired and f.values["max_throughput_drop"] == "25.0%"
    row = next(c for c in checks(run, derive(run)) if c.name.startswith("serving vs offered"))
    assert row.met is (not fired) and row.bound == "drop <= 25.0%"
    assert f"(drop {drop:.1%}; step x1 -> x10 at +0s)" in row.value


def test_the_summary_names_the_capacity_and_the_finding():
    from drills.evidence import summary_lines

    ev = _with_capacity(0.7105, 0.25)
    ev["verdict"]["findings"] = [{"kind": "standby-capacity", "objective": "max_throughput_drop",
                                  "detail": "west cannot absorb ..."}]  # fmt: skip
    lines = summary_lines(ev)
    assert any(x.startswith("capacity: west acknowledged 579 of 2000 records/s offered") and
               "drop 71.0%" in x for x in lines), lines  # fmt: skip
    assert "  finding standby-capacity: west cannot absorb ..." in lines

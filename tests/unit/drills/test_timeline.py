"""Fault timelines: the spec's `faults:` (validation, one line per mistake) and the engine
applying them in order on a paper target (tests/unit/drills/test_engine.py), every fault's
instants recorded, the incident's the drill's T_fault."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drills.spec import SpecError, load_spec, parse_spec
from tests.unit.drills.test_engine import PaperTarget, drill, phases, spec

REPO = Path(__file__).resolve().parents[3]
SCENARIOS = REPO / "drills" / "scenarios"


def with_faults(faults, **changes):
    d = load_spec(SCENARIOS / "region-loss.yaml").to_dict()
    del d["fault"]
    d["faults"] = faults
    for path, value in changes.items():
        node = d
        *parents, last = path.split(".")
        for k in parents:
            node = node[k]
        node[last] = value
    return parse_spec(d)


TWO = [{"kind": "replication-stop", "at_s": 0},
       {"kind": "region-loss", "region": "east", "at_s": 3, "incident": True}]  # fmt: skip


def test_a_timeline_has_its_incident_as_the_fault_and_round_trips():
    s = with_faults(TWO)
    assert [f.kind for f in s.faults] == ["replication-stop", "region-loss"]
    assert s.incident_index == 1 and s.fault.kind == "region-loss" and s.fault.after_s == 3
    d = s.to_dict()
    assert "fault" not in d and len(d["faults"]) == 2  # the derived one is not dumped
    assert parse_spec(d) == s


def test_a_single_fault_is_a_timeline_of_one():
    s = load_spec(SCENARIOS / "region-loss.yaml")
    assert len(s.faults) == 1 and s.faults[0].incident and s.faults[0].kind == "region-loss"
    assert "faults" not in s.to_dict()
    one = with_faults([{"kind": "partition", "at_s": 2}])
    assert one.faults[0].incident and one.fault.kind == "partition" and one.fault.after_s == 2


@pytest.mark.parametrize(
    "faults,changes,message",
    [
        ([{**TWO[0], "incident": True}, TWO[1]], {},
         "faults[1].incident: only one fault is the incident RTO and RPO are measured from (faults[0] is already)"),
        ([TWO[0], {**TWO[1], "incident": False}], {},
         "faults: 2 faults and none is the incident; mark the one RTO and RPO are measured from with `incident: true`"),
        ([TWO[1], {"kind": "replication-stop", "at_s": 1}], {},
         "faults[1].at_s: the timeline is in order of at_s: 1 comes before faults[0]'s 3"),
        ([TWO[1], {"kind": "replication-stop", "at_s": 80}], {},
         "faults[1].at_s: 80 s is 77 s after the incident (faults[0], at_s 3), beyond detection.timeout_s (60)"),
        ([TWO[0], {"kind": "meteor", "incident": True}], {}, "faults[1].kind: must be one of 'region-loss'"),
        ([{"kind": "partition", "region": "east"}], {},
         "faults[0].region: partition acts between the regions and takes no region"),
        ([{"kind": "partition", "after_s": 1}], {}, "faults[0]: unknown key 'after_s'"),
        ([], {}, "faults: needs at least 1 item"),
        (TWO, {"fault": {"kind": "partition"}},
         "faults: give `fault` (one fault) or `faults` (a timeline of faults), not both"),
    ],
)  # fmt: skip
def test_a_bad_timeline_is_one_clear_line(faults, changes, message):
    with pytest.raises(SpecError) as e:
        with_faults(faults, **changes)
    assert str(e.value).startswith(f"<spec>: {message}"), str(e.value)
    assert "\n" not in str(e.value)


def test_neither_fault_nor_faults():
    d = load_spec(SCENARIOS / "region-loss.yaml").to_dict()
    del d["fault"]
    with pytest.raises(SpecError, match=r"^<spec>: fault: missing required key; add it, e\.g\."):
        parse_spec(d)


@pytest.mark.parametrize(
    "detection,message",
    [
        ({"rule": "probe", "max_records": 5}, "detection.max_records: max_records is not used by rule probe"),
        ({"rule": "any"}, "detection.rules: rule any combines rules: list them"),
        ({"rule": "replication-lag"}, "detection.max_lag_s: replication-lag needs one bound"),
        ({"rule": "replication-lag", "max_lag_s": 2, "max_records": 5}, "detection.max_lag_s: replication-lag needs one bound"),
        ({"rule": "consumer-lag"}, "detection.max_records: consumer-lag needs its bound"),
        ({"rule": "consumer-lag", "max_records": 5, "group": "nobody"}, "detection.group: 'nobody' is not a workload group"),
        ({"rule": "all", "rules": [{"rule": "probe", "group": "billing"}]},
         "detection.rules[0].group: group is not used by rule probe"),
        ({"rule": "probe", "checks": ["primary", "primary"]}, "detection.checks: a probe check is listed twice"),
        ({"rule": "probe", "checks": ["east"]}, "detection.checks[0]: must be one of"),
        ({"rule": "probe", "timeout_s": 1.5}, "detection.timeout_s: must be > 2 s, the soonest rule probe can fire"),
    ],
)  # fmt: skip
def test_a_bad_detection_rule_is_one_clear_line(detection, message):
    d = load_spec(SCENARIOS / "region-loss.yaml").to_dict()
    d["detection"] = detection
    with pytest.raises(SpecError) as e:
        parse_spec(d)
    assert str(e.value).startswith(f"<spec>: {message}"), str(e.value)


def test_old_detection_specs_stay_valid_and_combinations_round_trip():
    for name in ("region-loss", "blackhole-endpoint", "broker-kill"):
        s = load_spec(SCENARIOS / f"{name}.yaml")
        assert s.detection.rule in ("delivery-errors", "no-acks")
    d = load_spec(SCENARIOS / "region-loss.yaml").to_dict()
    d["detection"] = {"rule": "any", "timeout_s": 30, "rules": [
        {"rule": "probe", "checks": ["replication", "primary"], "interval_s": 0.2},
        {"rule": "all", "rules": [{"rule": "replication-lag", "max_lag_s": 3, "for_s": 1},
                                  {"rule": "consumer-lag", "max_records": 100, "group": "billing"}]},
    ]}  # fmt: skip
    s = parse_spec(d)
    assert parse_spec(s.to_dict()) == s
    assert [p for p, _ in s.detection.leaves()] == [
        "detection.rules[0]",
        "detection.rules[1].rules[0]",
        "detection.rules[1].rules[1]",
    ]


@pytest.mark.parametrize(
    "name", ["replication-stopped-then-region-loss", "standby-squeezed-then-failover"]
)
def test_the_shipped_timeline_scenarios_validate_and_price(name):
    from drills.cost.drill import projected_window_s

    s = load_spec(SCENARIOS / f"{name}.yaml")
    assert len(s.faults) == 2 and s.faults[1].incident and s.fault.kind == "region-loss"
    window, parts = projected_window_s(s)
    assert parts["after_s"] == s.faults[1].at_s and window > parts["detect"]
    out = subprocess.run([sys.executable, "-m", "drills.cli", "validate", str(SCENARIOS / f"{name}.yaml")],
                         cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0 and f"valid drill spec {name!r}" in out.stdout + out.stderr, (
        out.stderr
    )


def test_validate_names_the_timeline_fault_the_stack_refuses(tmp_path):
    d = with_faults([{"kind": "cpu-squeeze", "region": "mars", "params": {"cores": 1}},
                     {**TWO[1], "at_s": 1}]).to_dict()  # fmt: skip
    import yaml

    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(d))
    out = subprocess.run([sys.executable, "-m", "drills.cli", "validate", str(f)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    err = out.stderr.strip()
    assert "faults[0]:" in err and "mars" in err and len(err.splitlines()) == 1, err


# --- the engine -----------------------------------------------------------------------


def timeline_spec(faults, **changes):
    base = spec(**changes).to_dict()
    del base["fault"]
    base["faults"] = faults
    return parse_spec(base)


def test_the_engine_applies_the_timeline_in_order_and_records_every_instant(tmp_path):
    target = PaperTarget()
    s = timeline_spec([
        {"kind": "replication-stop", "at_s": 0},
        {"kind": "cpu-squeeze", "region": "west", "params": {"cores": 0.5}, "at_s": 0.1, "duration_s": 0.15},
        {"kind": "region-loss", "region": None, "at_s": 0.4, "incident": True},
        {"kind": "latency", "params": {"ms": 100}, "at_s": 0.5},
    ])  # fmt: skip
    d, ev = drill(s, target, tmp_path / "run")
    record = d.run()
    assert record.status == "completed", phases(tmp_path / "run")
    applies = [c for c in target.calls if c in ("apply_fault", "clear_fault", "fence")]
    # the squeeze is cleared after its 0.15 s, before the incident; latency after it
    assert applies[:4] == ["apply_fault", "apply_fault", "clear_fault", "apply_fault"]
    assert "fence" in applies and applies.count("apply_fault") == 4
    faults = record.faults
    assert [f["kind"] for f in faults] == [
        "replication-stop",
        "cpu-squeeze",
        "region-loss",
        "latency",
    ]
    assert [f["incident"] for f in faults] == [False, False, True, False]
    applied = [f["applied"] for f in faults]
    assert applied == sorted(applied) and None not in applied
    inc = faults[2]
    assert inc["applied"] == record.instants["t_fault"] and inc["applied_since_incident_s"] == 0
    assert inc["region"] == "east", "a region-less fault acts on the primary"
    assert faults[0]["applied_since_incident_s"] < 0 < faults[3]["applied_since_incident_s"]
    assert faults[1]["cleared"] is not None and faults[1]["cleared"] < inc["applied"]
    assert faults[1]["cleared"] - faults[1]["applied"] >= 0.15
    assert faults[1]["cleared_by"] == "duration"
    for f in faults:  # never before its time
        assert f["late_s"] >= 0 and f["due"] <= f["applied"]
    assert record.fault_id == inc["fault_id"]
    assert target.faults == {}, "teardown leaves no fault of the timeline applied"
    doc = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert [f["kind"] for f in doc["faults"]] == [f["kind"] for f in faults]
    others = [f for f in doc["faults"] if f["index"] != 1]
    assert all(f["cleared_by"] == "teardown" and f["cleared"] > f["applied"] for f in others)
    assert doc["detection"]["fired"]["rule"] == "delivery-errors"
    assert doc["detection"]["fired"]["on"] == "clients"
    steps = json.loads((tmp_path / "run" / "journal.json").read_text())["steps"]
    inject = next(x for x in steps if x["phase"] == "inject")
    assert len(inject["output"]["timeline"]) == 4 and inject["name"].startswith(
        "timeline of 4 faults"
    )


def test_a_fault_due_while_another_is_applied_strikes_when_that_one_is_done(tmp_path):
    """Faults on one stack are serialised (each is a stack update): one due during the
    previous one's update is late by what is left of it, and the evidence says by how much."""
    target = PaperTarget()
    real = target.apply_fault

    def slow_apply(fspec):
        import time

        time.sleep(0.3)  # a stack update
        return real(fspec)

    target.apply_fault = slow_apply
    s = timeline_spec([{"kind": "replication-stop", "at_s": 0},
                       {"kind": "region-loss", "region": "east", "at_s": 0.1, "incident": True}])  # fmt: skip
    d, _ = drill(s, target, tmp_path / "run")
    record = d.run()
    assert record.status == "completed"
    first, second = record.faults
    assert second["started"] >= first["applied"], "applied one after the other"
    assert second["late_s"] >= 0.15, second


def test_an_interrupt_between_two_faults_clears_the_first(tmp_path):
    target = PaperTarget()
    real = target.apply_fault
    n = {"calls": 0}

    def apply(fspec):
        n["calls"] += 1
        if n["calls"] == 2:
            raise KeyboardInterrupt
        return real(fspec)

    target.apply_fault = apply
    d, _ = drill(timeline_spec(TWO_FAST), target, tmp_path / "run")
    record = d.run()
    assert record.status == "interrupted" and target.faults == {}
    assert "clear_faults" in target.calls


TWO_FAST = [{"kind": "replication-stop", "at_s": 0},
            {"kind": "region-loss", "region": "east", "at_s": 0.05, "incident": True}]  # fmt: skip


def test_the_report_has_a_line_per_fault_and_the_rule_that_fired(tmp_path):
    from drills.report.model import _detection_facts, _timeline_facts

    target = PaperTarget()
    d, ev = drill(timeline_spec(TWO_FAST), target, tmp_path / "run")
    assert d.run().status == "completed"
    doc = ev.document
    lines = dict(_timeline_facts(doc))
    assert list(lines) == ["fault 1", "fault 2 (incident)"]
    assert lines["fault 1"].startswith("replication-stop: due at 0 s, applied -")
    assert lines["fault 2 (incident)"].startswith(
        "region-loss east: due at 0.05 s, applied +0.00 s"
    )
    ((name, text),) = _detection_facts(doc)
    assert name == "detection" and text.startswith(
        "rule delivery-errors fired: delivery-errors (detection) on clients: 3 consecutive delivery failures"
    )
    assert _timeline_facts({"faults": doc["faults"][:1]}) == [], "one fault: the header says it"

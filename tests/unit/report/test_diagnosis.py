"""The decision table as rules: each rule has evidence where it fires and evidence where it does not."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from drills.report.diagnosis import RULES, diagnose
from drills.report.facts import derive
from drills.report.load import RunData

from .conftest import evidence

PASSING = evidence("passing")


def _synced(ev):
    for c in ev["measurements"]["continuity"]:
        if c["role"] == "replicated":
            c["resume_source"], c["duplicates"] = "synced", min(c["duplicates"], 100)


def _no_loss(ev):
    ev["measurements"]["rpo"].update(records=0, seconds=0.0)


def _set(path: str, value):
    def change(ev):
        *head, last = path.split(".")
        d = ev
        for k in head:
            d = d[k]
        d[last] = value

    return change


def _all(*changes):
    def change(ev):
        for c in changes:
            c(ev)

    return change


def _anomaly(kind, tolerated=False):
    return _set(f"anomalies.{kind}", {"count": 3, "tolerated": tolerated, "cases": []})


def _duplicates(n):
    def change(ev):
        ev["measurements"]["continuity"][6]["duplicates"] = n  # billing, synced

    return change


def _slow_cutover(ev):
    ev["measurements"]["rto"].update(seconds=20.0, decide=12.0, cutover=2.0)


def _parity(ev):
    ev["journal"]["steps"][0]["output"]["diff"]["groups_missing_in_standby"] = ["g"]


def _move_data(ev):
    for s in ev["journal"]["steps"]:
        if s["name"] == "stop replication":
            s["duration"] = 5.0


def _not_recovered(ev):
    ev["status"] = "interrupted"
    ev["measurements"]["rto"]["seconds"] = None


CASES = {
    # rule: (fires, does not fire)
    "consumers-resumed-wrong": (lambda ev: None, _synced),
    "group-resumed-from-reset": (lambda ev: None, _synced),
    "duplicates-vs-prediction": (_duplicates(5000), lambda ev: None),
    "cutover-slow": (_slow_cutover, lambda ev: None),
    "standby-capacity": (_set("capacity.throughput_rps", 100.0), lambda ev: None),
    "duplicates-or-reordering": (_anomaly("reordered"), _anomaly("reordered", tolerated=True)),
    "data-movement-dominates": (_move_data, lambda ev: None),
    "parity-differences": (_parity, lambda ev: None),
    "lag-near-bound": (_set("steady_state.max_replication_lag_s", 4.5), lambda ev: None),
    "split-brain": (_set("measurements.rpo.split_brain", 2), lambda ev: None),
    "records-lost": (lambda ev: None, _no_loss),
    "coverage-gap": (
        _set(
            "coverage",
            {
                "never_replicated": 7,
                "uncovered_partitions": [
                    {
                        "topic": "orders",
                        "partition": 3,
                        "standby_topic": "east.orders",
                        "in_standby": False,
                        "acknowledged": 7,
                        "never_replicated": 7,
                        "first_ack": 1.0,
                        "last_ack": 2.0,
                    }
                ],
            },
        ),
        _set("coverage", {"never_replicated": 0, "uncovered_partitions": []}),
    ),  # fmt: skip
    "not-recovered": (_not_recovered, lambda ev: None),
}


def _finding(change, rule: str):
    ev = copy.deepcopy(PASSING)
    change(ev)
    run = RunData(Path("."), ev, None, "no history")
    return next(f for f in diagnose(run, derive(run)) if f.rule == rule)


def test_every_rule_has_a_case():
    assert set(CASES) == {r.id for r in RULES}
    table = [r.title for r in RULES if r.table_row]
    assert len(table) == 5  # the seed's decision table, row by row


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_with_evidence_cause_and_action(rule):
    f = _finding(CASES[rule][0], rule)
    assert f.fired is True, f.values
    assert f.evidence and f.cause and f.action


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_stays_quiet(rule):
    f = _finding(CASES[rule][1], rule)
    assert f.fired is False, f.values
    assert not f.evidence and f.values  # its values are still listed


def test_prediction_from_mm2_settings():
    f = _finding(lambda ev: None, "duplicates-vs-prediction")
    assert "offset.lag.max 100, sync interval 2.0 s (assumed" in f.values["mm2"]
    assert f.values["billing"].startswith("measured 509, predicted <= ")
    assert f.values["analytics"] == "measured 1,015, predicted <= 1,015 (reset)"


def test_prediction_uses_the_settings_the_target_recorded():
    """A target that records MirrorMaker 2's settings (environment.replication) is believed:
    a coarser offset.lag.max predicts more duplicates."""
    fine = _finding(lambda ev: None, "duplicates-vs-prediction")
    coarse = _finding(
        _all(_set("environment.replication.offset_lag_max", 1000),
             _set("environment.replication.sync_interval_s", 2.0)),
        "duplicates-vs-prediction",
    )  # fmt: skip
    assert (
        "offset.lag.max 1000, sync interval 2.0 s (recorded in the evidence)"
        in coarse.values["mm2"]
    )

    def bound(f):
        return int(f.values["billing"].split("predicted <= ")[1].split()[0].replace(",", ""))

    assert bound(coarse) > bound(fine)

"""Detection rules on hand-made observations: each leaf, the any/all combinations, what the
firing says, and that nothing before the incident counts."""

from __future__ import annotations

import pytest

from drills.detection import Detector, Firing
from drills.spec import Rule


def det(**rule) -> Detector:
    d = Detector(Rule(**rule))
    d.arm()
    d.since(100.0)
    return d


def test_probe_fires_after_threshold_consecutive_failures_and_names_what_it_crossed():
    d = det(rule="probe", checks=["replication"], threshold=3)
    d.round_trip("replication", "east->west", 99.0, True, "round trip 80 ms")  # before: worked once
    d.round_trip("replication", "east->west", 100.5, False, "canary 1 not read back")
    d.round_trip("replication", "east->west", 101.0, True, "round trip 90 ms")  # resets the count
    d.round_trip("replication", "east->west", 101.5, False, "x")
    d.round_trip("replication", "east->west", 102.0, False, "x")
    assert d.t_detect is None
    d.round_trip(
        "replication", "east->west", 102.5, False, "canary 4 not read back from east->west"
    )
    assert d.t_detect == 102.5 and d.declared.is_set()
    assert d.fired == Firing("probe", "detection", "east->west",
                             d.fired.observation, 102.5)  # fmt: skip
    assert "3 consecutive canary round trips failed" in d.fired.observation
    assert d.report()["fired"]["on"] == "east->west"


def test_probe_checks_it_is_not_watching_and_never_healthy_checks_do_not_fire():
    d = det(rule="probe", checks=["primary"], threshold=1)
    d.round_trip("replication", "east->west", 101.0, False, "x")
    assert d.t_detect is None, "a check the rule does not watch"
    d.round_trip("primary", "east", 101.0, False, "x")
    assert d.t_detect is None, "the primary check never worked: a broken probe, not a failure"
    d.round_trip("primary", "east", 101.5, True, "ok")
    d.round_trip("primary", "east", 102.0, False, "no acknowledgement")
    assert d.t_detect == 102.0 and d.fired.on == "east"


def test_probe_for_s_fires_on_a_long_failure_before_the_threshold():
    d = det(rule="probe", threshold=100, for_s=2.0)
    d.round_trip("primary", "east", 99.0, True, "ok")
    for t in (100.5, 101.5, 102.4):
        d.round_trip("primary", "east", t, False, "x")
    assert d.t_detect is None
    d.round_trip("primary", "east", 102.6, False, "x")
    assert d.t_detect == 102.6


def test_probe_failed_share_fires_on_scattered_failures_never_in_a_row():
    """Partial loss: failures here and there, never `threshold` in a row. k of the last n
    declares; a sparser loss (one in ten) never does, and round trips before the incident
    do not count towards the share."""
    d = Detector(Rule(rule="probe", threshold=3, failed_share=0.2, of_last=20))
    d.arm()
    for i in range(20):  # before the incident: every other one failed, never counted
        d.round_trip("primary", "east", 90.0 + i * 0.25, i % 2 == 0, "x")
    d.since(100.0)
    t = 100.0
    for ok in [True, False, True, True, False, True, True, False]:
        t += 0.25
        d.round_trip("primary", "east", t, ok, "no acknowledgement in 1000 ms")
    assert d.t_detect is None, "3 failed of the last 8 since the incident: under 4 of 20"
    d.round_trip("primary", "east", t + 0.25, False, "no acknowledgement in 1000 ms")
    assert d.t_detect == t + 0.25
    assert "4 of the last 20 canary round trips failed" in d.fired.observation
    sparse = det(rule="probe", threshold=3, failed_share=0.2, of_last=20)
    sparse.round_trip("primary", "east", 99.0, True, "ok")
    for i in range(200):  # one in ten fails: at most 2 of any 20
        sparse.round_trip("primary", "east", 100.0 + i * 0.25, i % 10 != 0, "x")
    assert sparse.t_detect is None


def test_failed_share_belongs_to_the_probe_and_bounds_the_earliest_detection():
    from drills.spec import Clients, SpecError

    with pytest.raises((SpecError, ValueError), match="failed_share is not used by rule"):
        Rule(rule="delivery-errors", failed_share=0.2)
    r = Rule(rule="probe", threshold=10, failed_share=0.2, of_last=20, interval_s=0.25,
             timeout_ms=1000)  # fmt: skip
    assert r.earliest_s(Clients()) == 3.0  # 4 failed round trips, 1 s apart at the soonest


def test_replication_lag_must_stay_over_the_bound_for_for_s():
    d = det(rule="replication-lag", max_records=100, for_s=1.0)
    d.lag("replication-lag", "east->west", 100.2, 500, "records")
    d.lag("replication-lag", "east->west", 100.8, 50, "records")  # back under: starts again
    d.lag("replication-lag", "east->west", 101.0, 500, "records")
    d.lag("replication-lag", "east->west", 101.5, 9, "seconds")  # the other unit: not this rule
    assert d.t_detect is None
    d.lag("replication-lag", "east->west", 102.0, 700, "records")
    assert d.t_detect == 102.0
    assert (
        d.fired.rule == "replication-lag"
        and "lag 700 records over the bound 100" in d.fired.observation
    )


def test_consumer_lag_watches_its_group_only():
    d = det(rule="consumer-lag", max_records=10, group="billing")
    d.lag("consumer-lag", "analytics", 101.0, 500, "records")
    assert d.t_detect is None
    d.lag("consumer-lag", "billing", 101.0, 11, "records")
    assert d.t_detect == 101.0 and d.fired.on == "billing"


def test_any_fires_with_its_first_rule():
    d = det(rule="any", rules=[{"rule": "delivery-errors", "threshold": 2},
                               {"rule": "probe", "threshold": 1}])  # fmt: skip
    d.round_trip("primary", "east", 99.0, True, "ok")
    d.failure(100.1, "Local: Message timed out")
    d.round_trip("primary", "east", 100.2, False, "no acknowledgement from east in 1000 ms")
    assert d.t_detect == 100.2
    f = d.report()["fired"]
    assert f["rule"] == "any" and f["parts"][0]["rule"] == "probe"
    assert f["parts"][0]["path"] == "detection.rules[1]"
    d.failure(100.3, "again")  # the first declaration stands
    assert d.t_detect == 100.2


def test_all_fires_only_when_every_rule_has_fired_at_the_last_ones_instant():
    d = det(rule="all", rules=[{"rule": "delivery-errors", "threshold": 2},
                               {"rule": "replication-lag", "max_lag_s": 1.0}])  # fmt: skip
    d.failure(100.1, "timed out")
    d.failure(100.2, "timed out")
    assert d.t_detect is None, "one of two rules fired"
    d.lag("replication-lag", "east->west", 103.0, 2.5, "seconds")
    assert d.t_detect == 103.0
    f = d.fired
    assert f.rule == "all" and [p.rule for p in f.parts] == ["delivery-errors", "replication-lag"]
    assert f.on == "clients, east->west"


def test_nested_combinations():
    d = det(rule="any", rules=[
        {"rule": "all", "rules": [{"rule": "probe", "threshold": 1},
                                  {"rule": "consumer-lag", "max_records": 5}]},
        {"rule": "delivery-errors", "threshold": 50},
    ])  # fmt: skip
    d.round_trip("primary", "east", 99.0, True, "ok")
    d.round_trip("primary", "east", 101.0, False, "x")
    assert d.t_detect is None
    d.lag("consumer-lag", "billing", 101.5, 6, "records")
    assert d.t_detect == 101.5 and d.fired.parts[0].rule == "all"


def test_nothing_before_the_incident_counts():
    """An earlier fault of the timeline (e.g. replication stopped) made the lag rule fire;
    since(T_fault of the incident) drops it, and the lag must stay over the bound from T_fault."""
    d = Detector(Rule(rule="replication-lag", max_records=10, for_s=1.0))
    d.arm()
    d.lag("replication-lag", "east->west", 50.0, 400, "records")
    d.lag("replication-lag", "east->west", 51.0, 400, "records")
    assert d.t_detect == 51.0  # armed, no incident yet: it would count...
    d.since(60.0)  # ...but the incident struck at 60
    assert d.t_detect is None and not d.declared.is_set() and d.fired is None
    d.lag("replication-lag", "east->west", 60.5, 900, "records")
    assert d.t_detect is None, "over the bound since T_fault only 0.5 s"
    d.lag("replication-lag", "east->west", 61.0, 900, "records")
    assert d.t_detect == 61.0


def test_delivery_failures_before_detection_are_counted_for_the_evidence():
    d = det(rule="probe", threshold=1)
    d.round_trip("primary", "east", 99.0, True, "ok")
    d.failure(100.5, "timed out")
    d.round_trip("primary", "east", 101.0, False, "x")
    d.failure(101.5, "timed out")  # after the declaration: not counted
    assert d.report()["delivery_failures_before_detect"] == 1


def test_unarmed_detector_declares_nothing():
    d = Detector(Rule(rule="probe", threshold=1))
    d.round_trip("primary", "east", 1.0, True, "ok")
    d.round_trip("primary", "east", 2.0, False, "x")
    assert d.t_detect is None


@pytest.mark.parametrize("rule", ["delivery-errors", "no-acks"])
def test_the_old_constructor_still_works(rule):
    d = Detector(rule, threshold=1, window_s=1.0)
    d.arm()
    d.failure(5.0, "x") if rule == "delivery-errors" else d.tick(d.last_ack + 1.5, 3)
    assert d.t_detect is not None and d.fired.rule == rule

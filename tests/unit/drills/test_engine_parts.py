"""The engine's pure parts: record identity, detection rules, the journal, parity, the verdict."""

import json
from types import SimpleNamespace

import pytest

from drills.engine import judge, parity
from drills.history import REORDERED
from drills.journal import Journal
from drills.workload import Detector, Recorder, decode, encode


def test_record_identity_round_trips_and_pads_to_size():
    v = encode("ab12cd-p0", "k7", 41, 1009, 1234.5678901, 200)
    assert len(v) == 200
    pid, key, seq, gseq, sent = decode(v)
    assert (pid, key, seq, gseq) == ("ab12cd-p0", "k7", 41, 1009)
    assert sent == pytest.approx(1234.5678901, abs=1e-6)


@pytest.mark.parametrize("value", [b"", b"hello", b"a|b|c", b"p|k|x|1|2|", None])
def test_foreign_records_are_not_mistaken_for_workload_records(value):
    assert decode(value) is None


def test_delivery_errors_rule_needs_consecutive_failures_after_arming():
    d = Detector("delivery-errors", threshold=3, window_s=2)
    for t in (1.0, 2.0, 3.0):
        d.failure(t, "timed out")
    assert d.t_detect is None, "failures before arming must not count"
    d.arm()
    d.failure(10.0, "x")
    d.failure(10.1, "x")
    d.success(10.2)  # an ack in between resets the run
    d.failure(10.3, "x")
    d.failure(10.4, "x")
    assert d.t_detect is None
    d.failure(10.5, "Local: Message timed out")
    assert d.t_detect == 10.5 and "3 consecutive" in d.evidence
    d.failure(11.0, "x")
    assert d.t_detect == 10.5, "the first declaration stands"


def test_no_acks_rule_fires_only_with_sends_outstanding():
    d = Detector("no-acks", threshold=3, window_s=2.0)
    d.arm()
    d.success(100.0)
    d.tick(103.0, outstanding=0)
    assert d.t_detect is None, "silence with nothing in flight is not a failure"
    d.tick(101.5, outstanding=5)
    assert d.t_detect is None
    d.tick(102.5, outstanding=5)
    assert d.t_detect == 102.5


def test_what_clients_saw_before_t_fault_does_not_count():
    """Armed before the fault is applied, the detector would count stalls the applying
    itself causes (a stack update's CPU burst); `since(t_fault)` drops them."""
    d = Detector("delivery-errors", threshold=2, window_s=2)
    d.arm()
    d.failure(10.0, "x")
    d.failure(10.1, "x")
    assert d.t_detect == 10.1
    d.since(12.0)  # T_fault came later: that detection was the update, not the fault
    assert d.t_detect is None and d.evidence == ""
    d.failure(11.9, "reported late, happened before")
    d.failure(12.5, "x")
    assert d.t_detect is None
    d.failure(12.6, "x")
    assert d.t_detect == 12.6
    n = Detector("no-acks", threshold=1, window_s=2.0)
    n.arm()
    n.success(100.0)
    n.since(105.0)  # quiet during the update: counted from T_fault only
    n.tick(106.0, outstanding=5)
    assert n.t_detect is None
    n.tick(107.0, outstanding=5)
    assert n.t_detect == 107.0
    k = Detector("no-acks", threshold=1, window_s=2.0)
    k.arm()
    k.success(45.0)
    k.tick(50.0, outstanding=1)
    k.since(40.0)  # a detection after T_fault stays
    assert k.t_detect == 50.0


def test_recorder_counts_acks_in_a_window_and_finds_the_first_ack_of_a_cluster():
    r = Recorder()
    for t, cluster in [(1.0, "east"), (2.0, "east"), (5.0, "west"), (6.0, "west")]:
        r.acknowledged("p", "k", 0, int(t), cluster, "orders", 0, 0, t - 0.1, t)
    assert r.acks_between(1.5, 5.5) == 2
    assert r.first_ack("west", after=3.0) == 5.0
    assert r.first_ack("east", after=3.0) is None
    assert r.last_ack("east", before=5.5) == 2.0 and r.last_ack("west", before=5.5) == 5.0
    assert r.last_ack("west", before=5.0) is None  # strictly before


def test_an_interrupt_during_a_steps_first_save_still_marks_it_interrupted(tmp_path, monkeypatch):
    j = Journal(drill="d", spec={}, path=tmp_path / "journal.json")
    real_save, calls = j.save, []

    def save_then_interrupt() -> None:  # the file shows the step running, then SIGINT lands
        real_save()
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(j, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt), j.step("cutover", "fence east"):
        pass
    on_disk = json.loads((tmp_path / "journal.json").read_text())
    assert on_disk["steps"][0]["status"] == "interrupted" and on_disk["steps"][0]["ended"]


def test_journal_step_is_written_before_it_runs_and_completed_after(tmp_path):
    j = Journal(drill="d", spec={}, path=tmp_path / "journal.json")
    with j.step("inject", "partition") as s:
        on_disk = json.loads((tmp_path / "journal.json").read_text())
        assert on_disk["steps"][0]["status"] == "running"
        s.output = {"fault_id": "f1"}
    on_disk = json.loads((tmp_path / "journal.json").read_text())
    assert on_disk["steps"][0]["status"] == "completed" and on_disk["steps"][0]["output"] == {
        "fault_id": "f1"
    }

    with pytest.raises(KeyboardInterrupt), j.step("detect", "rule"):
        raise KeyboardInterrupt
    with pytest.raises(RuntimeError), j.step("cutover", "fence"):
        raise RuntimeError("fence failed")
    j.finish("interrupted")
    on_disk = json.loads((tmp_path / "journal.json").read_text())
    assert [s["status"] for s in on_disk["steps"]] == ["completed", "interrupted", "failed"]
    assert on_disk["steps"][2]["error"] == "RuntimeError: fence failed"
    assert on_disk["status"] == "interrupted" and on_disk["duration"] is not None


def test_parity_reports_what_a_failover_would_expose():
    prim = {
        "topics": {"orders": 3, "payments": 6, "audit": 1, "mm2-offset-syncs.west.internal": 1},
        "configs": {"orders": {"retention.ms": "100"}, "payments": {"retention.ms": "5"}},
        "groups": ["billing", "fraud"],
    }
    stby = {
        "topics": {"east.orders": 3, "east.payments": 3},
        "configs": {"east.orders": {"retention.ms": "100"}, "east.payments": {"retention.ms": "7"}},
        "groups": ["billing"],
    }
    d = parity(prim, stby, lambda t: f"east.{t}")
    assert d["topics_missing_in_standby"] == ["audit"]
    assert d["partition_mismatch"] == {"payments": {"primary": 6, "standby": 3}}
    assert d["config_mismatch"] == {"payments": {"retention.ms": {"primary": "5", "standby": "7"}}}
    assert d["groups_missing_in_standby"] == ["fraud"]


def result(
    rto=10.0,
    rpo_records=3,
    rpo_seconds=0.5,
    split=0,
    dup=(2, 0),
    skipped=(0, 0),
    found=(),
    tolerated=(),
):
    return SimpleNamespace(
        rto=SimpleNamespace(seconds=rto),
        rpo=SimpleNamespace(records=rpo_records, seconds=rpo_seconds, split_brain=split),
        continuity=[
            SimpleNamespace(duplicates=d, skipped=s) for d, s in zip(dup, skipped, strict=True)
        ],
        anomalies={REORDERED: ("case",)} if REORDERED in found else {},
        found=found,
        tolerated=tolerated,
    )


OBJ = SimpleNamespace(max_rto_seconds=30.0, max_rpo_records=10, max_rpo_seconds=5.0, max_duplicates=None,
                      max_skipped=0, max_split_brain_writes=0, ordering_per_key=True)  # fmt: skip


def test_verdict_passes_when_every_objective_is_met():
    v = judge(OBJ, result())
    assert v["passed"], v
    assert {c["objective"] for c in v["checks"]} >= {
        "max_rto_seconds",
        "max_rpo_records",
        "max_skipped",
    }
    assert "max_duplicates" not in {
        c["objective"] for c in v["checks"]
    }  # null: reported, not judged


@pytest.mark.parametrize(
    "change,missed",
    [
        ({"rto": 31.0}, "max_rto_seconds"),
        ({"rto": None}, "max_rto_seconds"),  # never recovered
        ({"rpo_records": 11}, "max_rpo_records"),
        ({"rpo_seconds": 5.5}, "max_rpo_seconds"),
        ({"split": 1}, "max_split_brain_writes"),
        ({"skipped": (0, 1)}, "max_skipped"),
        ({"found": (REORDERED,)}, "ordering_per_key"),
        ({"found": ("lost-interior",)}, "no untolerated anomalies"),
    ],
)
def test_each_missed_objective_fails_the_verdict_and_is_named(change, missed):
    v = judge(OBJ, result(**change))
    assert not v["passed"]
    assert [c["objective"] for c in v["checks"] if not c["met"]][0] == missed

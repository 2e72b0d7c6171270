"""Budget guard and the cost section of a drill's evidence, on a target with no Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from components.local import config as local_config
from drills.cost.catalog import Catalog
from drills.cost.drill import BudgetExceeded, guard, project, projected_window_s, summary_lines
from drills.cost.drill import evidence as cost_evidence
from drills.cost.model import inventory_local
from drills.engine import EXIT_NOT_RUN
from drills.hooks import Callbacks
from drills.journal import Journal
from drills.record import RunRecord
from drills.runner import run_drill
from drills.spec import load_spec, parse_spec
from drills.targets import TargetFacts

SCENARIO = Path(__file__).resolve().parents[3] / "drills" / "scenarios" / "region-loss.yaml"


def spec(budget=None):
    d = load_spec(SCENARIO).to_dict()
    d["cost"] = {"budget_usd": budget}
    return parse_spec(d)


class PaperTarget:
    """Just enough of a Target for a drill refused before it touches anything."""

    primary, standby, policy = "east", "west", "prefixed"

    def __init__(self):
        self.inv = inventory_local(local_config.load("local"))
        self.touched: list[str] = []

    def facts(self):
        return TargetFacts("local", "local", "east", "west", "prefixed")

    def resolve_fault(self, fault):
        return fault

    def cost_inventory(self):
        return self.inv

    def open_faults(self, pid):
        return []

    def fault_update(self, fid):
        return {}

    def clear_faults(self, ids, final=False):
        self.touched += ids

    def region_out_bytes(self):
        return {}

    def upload_evidence(self, run_dir):
        raise RuntimeError("no bucket here")

    def __getattr__(self, name):  # anything else would touch the environment
        if not name.startswith("__"):
            self.__dict__.setdefault("asked", []).append(name)
        raise AttributeError(name)


def test_projected_window_is_the_sum_of_bounds():
    total, parts = projected_window_s(spec())
    # region-loss: 30 preflight + 8 steady + 0 after + 60 detect + 0 decide + 60 cutover
    # + 10 serve + 60 verify/teardown
    assert parts["detect"] == 60 and parts["steady_state"] == 8 and parts["serve"] == 10
    assert total == pytest.approx(228)


def test_projection_hand_computed():
    cat = Catalog.load()
    rep = project(spec(), inventory_local(local_config.load("local")), cat,
                  now=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    h = 228 / 3600
    offered = 200 * 1 * (200 + 70)  # rate x producers x (record + overhead) bytes/s
    expect = (3 * 0.0816 * h  # two brokers + MM2 on m7g.large
              + 2 * 100 * h / 744 * 0.08  # two 100 GiB gp3 volumes (January: 744 h)
              + offered * 228 / 2**30 * 0.02  # USE1-USW2-AWS-Out-Bytes
              + 12 * 0.000005)  # evidence PUTs in us-west-2  # fmt: skip
    assert rep.total == pytest.approx(expect)
    assert rep.basis == "projected"


def record(the_spec, run_dir: Path, inventory=None) -> RunRecord:
    """A run record as the engine starts it, on the local stack's inventory."""
    rec = RunRecord("abc123", the_spec, run_dir, Journal(drill=the_spec.name, spec={}),
                    PaperTarget().facts())  # fmt: skip
    rec.cost_inventory = inventory or PaperTarget().inv
    return rec


def test_guard_refuses_over_budget_with_one_line(tmp_path):
    r = record(spec(budget=0.001), tmp_path)
    with pytest.raises(BudgetExceeded) as e:
        guard(r)
    msg = str(e.value)
    assert "\n" not in msg
    assert (
        msg.startswith("refused: projected cost $0.0") and "exceeds cost.budget_usd $0.0010" in msg
    )
    assert r.sections["cost"]["projected"]["budget_usd"] == 0.001
    assert r.sections["cost"]["refused"] is True


def test_guard_passes_under_budget_and_without_one(tmp_path):
    for budget in (None, 5.0):
        r = record(spec(budget=budget), tmp_path)
        guard(r)
        assert r.sections["cost"]["projected"]["total_usd"] > 0
        assert "refused" not in r.sections["cost"]


def test_engine_refuses_before_touching_anything(tmp_path):
    said = []
    target = PaperTarget()
    out = run_drill(spec(budget=0.0001), target, tmp_path / "run", Callbacks(info=said.append))
    assert out.status == "refused" and out.exit_code == EXIT_NOT_RUN == 2
    assert (
        said
        and said[0].startswith("refused: projected cost $")
        and "cost.budget_usd $0.0001" in said[0]
    )
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    c = ev["cost"]
    assert c["refused"] and c["budget_usd"] == 0.0001
    assert c["projected"]["total_usd"] > 0.0001
    assert c["final"]["basis"] == "measured" and c["final"]["mode"] == "local"
    assert sorted(c["exports"]) == ["cost-focus.csv", "cost-focus.parquet", "cost.json"]
    assert all((tmp_path / "run" / f).exists() for f in c["exports"])
    lines = summary_lines(ev)
    assert lines[0].startswith("cost: REFUSED: projected $") and "> budget $0.0001" in lines[0]
    assert target.touched == []
    assert target.__dict__.get("asked", []) == []  # nothing beyond the facts and counters


def test_evidence_never_raises(tmp_path):
    r = record(spec(), tmp_path)
    r.cost_inventory, r.cost_inventory_error = None, "RuntimeError: stack unreadable"
    r.journal.finish("completed")
    c = cost_evidence(r)
    assert c["error"] == "ValueError: RuntimeError: stack unreadable"
    assert summary_lines({"cost": c}) == [
        "cost: not computed: ValueError: RuntimeError: stack unreadable"
    ]


def test_measured_usage_reads_the_record(tmp_path):
    """Bytes each local region sent become transfer from its AWS region to the other's."""
    from drills.cost.drill import measured_usage

    r = record(spec(), tmp_path)
    r.out_bytes_start, r.out_bytes_end = {"east": 100, "west": 50}, {"east": 1100, "west": 80}
    r.acknowledged = 7
    r.journal.finish("completed")
    u = measured_usage(r, r.cost_inventory)
    assert u.transfer_bytes == {("us-east-1", "us-west-2"): 1000, ("us-west-2", "us-east-1"): 30}
    assert u.produced_bytes == 7 * r.spec.workload.record_bytes


def test_evidence_carries_the_split_and_the_summary_prints_it(tmp_path):
    """Issue 21 item 4: the local pair's brokers are standing (allocated), what crossed
    regions and the evidence PUTs are the drill's own (incremental)."""
    r = record(spec(), tmp_path)
    r.out_bytes_start, r.out_bytes_end = {"east": 0}, {"east": 2**30}
    r.journal.finish("completed")
    c = cost_evidence(r)
    final = c["final"]
    by = {x["usage_type"]: x["allocation"] for x in final["lines"]}
    assert (
        by["BoxUsage:m7g.large"] == "allocated" and by["USE1-USW2-AWS-Out-Bytes"] == "incremental"
    )
    split = final["split_usd"]
    assert split["incremental"] + split["allocated"] == pytest.approx(final["total_usd"], abs=2e-6)
    assert split["incremental"] >= 0.02  # 1 GiB across regions at $0.02
    assert any(
        x.startswith("  incremental (caused by the drill):") for x in summary_lines({"cost": c})
    )

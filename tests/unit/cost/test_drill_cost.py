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
from drills.engine import EXIT_NOT_RUN, Drill, Hooks
from drills.spec import load_spec, parse_spec

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

    def cost_inventory(self):
        return self.inv

    def open_faults(self, pid):
        return []

    def clear_faults(self, ids, teardown=False):
        self.touched += ids

    def bytes_between_regions(self):
        return 0

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
              + 2 * 100 * h / 730 * 0.08  # two 100 GiB gp3 volumes
              + offered * 228 / 2**30 * 0.02  # USE1-USW2-AWS-Out-Bytes
              + 12 * 0.000005)  # evidence PUTs in us-west-2  # fmt: skip
    assert rep.total == pytest.approx(expect)
    assert rep.basis == "projected"


def test_guard_refuses_over_budget_with_one_line():
    class D:
        pass

    d = D()
    d.spec, d.target = spec(budget=0.001), PaperTarget()
    with pytest.raises(BudgetExceeded) as e:
        guard(d)
    msg = str(e.value)
    assert "\n" not in msg
    assert (
        msg.startswith("refused: projected cost $0.0") and "exceeds cost.budget_usd $0.0010" in msg
    )
    assert d.cost_meter.projection["budget_usd"] == 0.001


def test_guard_passes_under_budget_and_without_one():
    class D:
        pass

    for budget in (None, 5.0):
        d = D()
        d.spec, d.target = spec(budget=budget), PaperTarget()
        guard(d)
        assert d.cost_meter.projection["total_usd"] > 0


def test_engine_refuses_before_touching_anything(tmp_path):
    said = []
    target = PaperTarget()
    out = Drill(spec(budget=0.0001), target, tmp_path / "run", Hooks(info=said.append)).run()
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
    assert set(target.__dict__.get("asked", [])) <= {"pair"}  # only: is it a local pair?


def test_evidence_never_raises(tmp_path):
    class Broken(PaperTarget):
        def cost_inventory(self):
            raise RuntimeError("stack unreadable")

    (tmp_path / "run").mkdir()
    d = Drill(spec(), Broken(), tmp_path / "run")
    d.journal.finish("completed")
    c = cost_evidence(d, "completed")
    assert c["error"] == "RuntimeError: stack unreadable"
    assert summary_lines({"cost": c}) == ["cost: not computed: RuntimeError: stack unreadable"]

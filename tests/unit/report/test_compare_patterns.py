"""`kdrill compare` across recovery patterns: the pattern row, conflicts read per pattern, and
the standby's monthly cost from the cost model with the pattern's replication parts -- on
the recorded run fixtures, edited into the other patterns' evidence shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drills.cli import main
from drills.report import compare


def as_pattern(run: Path, engine: str, section: dict | None = None, name: str | None = None):
    """The fixture's evidence as a run of another pattern (what that pattern's drill adds)."""
    ev = json.loads((run / "evidence.json").read_text())
    ev["spec"]["replication"]["engine"] = engine
    ev["drill"] = f"{engine}-region-loss"
    if name:
        ev["pattern"] = {"name": name, "describe": name}
    if section:
        ev.update(section)
    (run / "evidence.json").write_text(json.dumps(ev))
    return run


def dual_write(lost_only: int) -> dict:
    """A dual_write section (drills/history/dualwrite.py) after east was lost: `lost_only`
    records only in east's log, 2031 written to west after the loss, all 32 keys diverging."""
    return {"dual_write": {
        "lost": "east", "survivor": "west",
        "logged": {"both": 6554, "one_sided": {"east": lost_only, "west": 2031}},
        "divergence": {"keys": 32, "of_keys": 32, "sample": []},
    }}  # fmt: skip


def test_conflicts_are_read_per_pattern(run_dir):
    passing = run_dir("passing")
    passive = compare.load(passing)
    assert passive.pattern == "active-passive (mirrormaker2)"
    assert passive.figures["conflicts"] == 0  # split-brain writes: none in the fixture

    ev = json.loads((passing / "evidence.json").read_text())
    ev["measurements"]["rpo"]["split_brain"] = 3
    assert compare.conflicts(ev) == 3

    dw = compare.load(as_pattern(run_dir("failed"), "dual-write", dual_write(7), "dual-write"))
    assert (dw.pattern, dw.figures["conflicts"]) == ("dual-write", 7)  # east's only, not west's

    d = run_dir("no_failover")
    aa = compare.load(as_pattern(d, "active-active", {"active_active": {"conflicts": 12}}))
    assert (aa.pattern, aa.figures["conflicts"]) == ("active-active", 12)
    # the checker's shape: records in conflict, not the keys they touch
    shape = {"active_active": {"conflicts": {"records": 9992, "keys": 16, "of_keys": 16}}}
    assert compare.conflicts(shape) == 9992
    for shape in ({"count": 5}, [{"key": "k1"}] * 5):  # a count object, or the cases
        ev = json.loads((d / "evidence.json").read_text())
        ev["active_active"]["conflicts"] = shape
        assert compare.conflicts(ev) == 5
    ev["active_active"]["conflicts"] = None
    assert compare.conflicts(ev) is None  # not measured: "-", never 0


def test_standby_monthly_cost_follows_what_the_pattern_runs_in_the_standby(run_dir):
    passive = compare.load(run_dir("passing"))
    dw = compare.load(as_pattern(run_dir("failed"), "dual-write", name="dual-write"))
    aa = compare.load(as_pattern(run_dir("no_failover"), "active-active"))
    usd = {r.pattern: r.figures["standby_monthly_usd"] for r in (passive, dw, aa)}
    assert all(isinstance(v, float) and v > 0 for v in usd.values()), usd
    # one m7g.large MirrorMaker 2 worker a month, at the catalog's us-west-2 price, is the
    # whole difference: gone under dual-write, doubled under active-active
    mm2 = usd["active-passive (mirrormaker2)"] - usd["dual-write"]
    assert mm2 > 10, usd
    assert usd["active-active"] - usd["active-passive (mirrormaker2)"] == pytest.approx(mm2)
    assert "measured in passing" in passive.standby_note
    assert dw.standby_note.startswith("dual-write: no MirrorMaker 2 worker in the standby")
    assert aa.standby_note.startswith("active-active: a second MirrorMaker 2 worker")


def test_compare_prints_the_pattern_table(run_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    a = run_dir("passing")
    b = as_pattern(run_dir("failed"), "dual-write", dual_write(4), "dual-write")
    assert main(["compare", str(a), str(b), "--threshold", ""]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 4}
    for label in ("pattern", "conflicts", "drill cost USD", "standby USD/month", "RPO records"):
        assert label in rows, (label, out)
    assert "dual-write" in rows["pattern"] and "active-passive" in rows["pattern"]
    cells = [c.strip() for c in rows["conflicts"].split("│")[2:4]]
    assert cells == ["0", "4"], rows["conflicts"]
    assert "failed: standby USD/month: dual-write: no MirrorMaker 2 worker" in out

"""bench/patterns.py picks its drills from the scenario files' `replication.engine`, one
region-loss scenario per engine, never from a list of its own."""

from __future__ import annotations

import shutil

from drills.library import SCENARIOS_DIR
from tests.unit.benchload import load_bench


def bench():
    return load_bench("patterns")


def test_one_region_loss_scenario_per_engine_from_the_files(tmp_path):
    for name in ("region-loss.yaml", "dual-write-region-loss.yaml",
                 "replication-stopped-then-region-loss.yaml",  # a timeline: not the pattern's
                 "failback-after-region-loss.yaml", "broker-kill.yaml"):  # fmt: skip
        shutil.copy(SCENARIOS_DIR / name, tmp_path / name)
    text = (SCENARIOS_DIR / "region-loss.yaml").read_text()
    (tmp_path / "msk-replicator-region-loss.yaml").write_text(
        text.replace("  engine: mirrormaker2\n", "  engine: msk-replicator\n")
    )
    (tmp_path / "broken.yaml").write_text(text.replace("  engine: mirrormaker2\n", "  engine: x\n"))
    picks, notes = bench().region_loss_scenarios(tmp_path)
    assert [(p.engine, p.path.name) for p in picks] == [
        ("mirrormaker2", "region-loss.yaml"),  # first: the baseline column
        ("dual-write", "dual-write-region-loss.yaml"),
        ("msk-replicator", "msk-replicator-region-loss.yaml"),  # skipped later on a local pair
    ]
    assert len(notes) == 1 and notes[0].startswith("broken.yaml: not a valid spec"), notes

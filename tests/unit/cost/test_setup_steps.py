"""`./run drill` does not build the FOCUS validator; `./run tests` does (issue 21 item 8).

Runs the real `run` and `tools/bootstrap.sh` from a scratch copy of the repo whose set-up
steps are stubs that log their names, with the virtualenv and Kafka already "set up", so
only the step selection is exercised (well under a second)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STEPS = ("setup-focus-validator.sh", "setup-pulumi.sh", "setup-toxiproxy.sh")


@pytest.fixture
def repo(tmp_path):
    missing = [c for c in ("ip", "nft", "java", "mvn") if shutil.which(c) is None]
    if missing or not (shutil.which("go") or Path("/usr/local/go/bin/go").exists()):
        pytest.skip(f"bootstrap would install {missing or 'go'} first")
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    shutil.copy2(ROOT / "run", root / "run")
    shutil.copy2(ROOT / "tools" / "bootstrap.sh", root / "tools" / "bootstrap.sh")
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    log = tmp_path / "steps.log"
    for step in STEPS:
        (root / "tools" / step).write_text(f"#!/usr/bin/env bash\necho {step} >> {log}\n")
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (root / ".venv" / f".kdrill-deps-{digest}").touch()
    for exe in ("kdrill", "python"):
        (venv / exe).write_text(f'#!/usr/bin/env bash\necho {exe} "$@" >> {log}\n')
        (venv / exe).chmod(0o755)
    kafka = tmp_path / "kafka"
    (kafka / "libs").mkdir(parents=True)
    return root, log, kafka


def run(repo, *args):
    root, log, kafka = repo
    env = {k: v for k, v in os.environ.items() if k != "KDRILL_WITH_FOCUS_VALIDATOR"}
    env |= {"KAFKA_HOME": str(kafka), "KDRILL_PYTHON": shutil.which("python3.11") or "python3"}
    p = subprocess.run([str(root / "run"), *args], env=env, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    return log.read_text().split("\n")


def test_run_drill_skips_the_validator_build(repo):
    lines = run(repo, "drill")
    assert "setup-pulumi.sh" in lines and "setup-toxiproxy.sh" in lines
    assert "setup-focus-validator.sh" not in lines
    assert any(x.startswith("kdrill run drills/scenarios/region-loss.yaml") for x in lines)


def test_run_tests_sets_the_validator_up(repo):
    lines = run(repo, "tests", "-q")
    assert "setup-focus-validator.sh" in lines and "python -m pytest -q" in lines


def test_ci_runs_the_tests_command():
    assert "exec ./run tests" in (ROOT / ".ci" / "run").read_text()

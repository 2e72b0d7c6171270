"""The CLI's answers to bad input: one line naming what is wrong, exit 2, nothing touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills import cli

REPO = Path(__file__).resolve().parents[3]
DEFAULT = REPO / "drills" / "scenarios" / "region-loss.yaml"


def spec_file(tmp_path: Path, fault: str) -> str:
    p = tmp_path / "drill.yaml"
    p.write_text(
        "version: 1\nname: x\nworkload: {topics: [{name: a}], groups: [{name: g}]}\n"
        f"fault: {fault}\n"
    )
    return str(p)


def run(capsys, *argv: str) -> tuple[int, list[str]]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def test_a_valid_spec_validates(capsys):
    code, lines = run(capsys, "validate", str(DEFAULT))
    assert code == 0 and "valid drill spec 'region-loss'" in lines[-1]


@pytest.mark.parametrize(
    "fault,expected",
    [
        ("{kind: region-loss, region: mars}", "fault: unknown region 'mars'; this stack has: east, west"),
        ("{kind: packet-loss, params: {percent: 300}}", "fault.params.percent: must be in 0.1..100"),
        ("{kind: region-degraded, params: {az_index: 1}}", "region-degraded"),
        ("{kind: earthquake}", "fault.kind"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_faults_are_one_line_and_exit_2(capsys, tmp_path, fault, expected, command):
    code, lines = run(capsys, command, spec_file(tmp_path, fault))
    assert code == 2
    assert len(lines) == 1 and expected in lines[0], lines
    assert "Traceback" not in lines[0]


@pytest.mark.parametrize(
    "stack,expected",
    [
        ("nosuch", "stack 'nosuch' does not exist"),
        ("apache-use1-usw2", "is an AWS stack"),
    ],
)
def test_a_stack_that_cannot_be_drilled_is_one_line(capsys, stack, expected):
    code, lines = run(capsys, "run", str(DEFAULT), "--stack", stack)
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines


def test_status_of_a_pair_that_is_down_is_one_line(tmp_path):
    """No brokers to time out against: one line, exit 3, in about a second."""
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "KDRILL_STATE_DIR": str(tmp_path)}

    def timed(*argv: str) -> tuple[float, subprocess.CompletedProcess]:
        started = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "drills.cli", *argv],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        return time.monotonic() - started, p

    # The CLI's own start-up (imports) is the baseline: on a loaded machine it alone
    # takes seconds; waiting on an absent broker would add its connection timeouts.
    baseline, _ = timed("local", "--help")
    took, p = timed("local", "status")
    assert p.returncode == 3, p.stderr
    assert p.stderr.strip().splitlines() == [
        "local pair local is not up; `kdrill local up` starts it"
    ]
    assert took - baseline < 2.5, f"status waited on brokers that are not there ({took:.1f}s)"

"""bench/first_run.py's own parts: the environment it calls fresh, and the figures it reads
from `./run drill`'s output (here a script printing the lines the real set-up and drill
print, taken from a first run on 2026-12-02, so a changed wording in tools/bootstrap.sh or the
CLI shows up here as a missing figure)."""

from __future__ import annotations

import stat

import pytest

from tests.unit.benchload import load_bench

LINES = r"""[setup] creating virtualenv and installing Python dependencies (first run: a few minutes)
[setup] waiting for the Pulumi engine build (running in the background for 152 s; log: x.log)
  pulumi | [setup] Pulumi engine v3.260.0 ready in /tmp/kc-4/pulumi-3.260.0/bin (571 s)
  \u2713 pulumi up -s local (state in /var/tmp/kdrill/kd/pulumi) (2.9s)
stack local ready: done in 41.4s
RTO 5.77s = detect 5.42s + decide 0.01s + cutover 0.22s + first consume 0.11s
verdict: PASS
"""


@pytest.fixture(scope="module")
def bench():
    return load_bench("first_run")


def test_every_cache_is_under_the_work_dir_and_nothing_is_inherited(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("KDRILL_WITH_CDS", "1")
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    env = bench.fresh_environment(tmp_path)
    for name in ("KDRILL_CACHE", "GOCACHE", "GOMODCACHE"):
        assert env[name].startswith(str(tmp_path))
    assert env["MAVEN_OPTS"] == f"-Dmaven.repo.local={tmp_path / 'm2'}"
    assert env["PIP_NO_CACHE_DIR"] == "1"
    assert "KDRILL_WITH_CDS" not in env and "GOFLAGS" not in env


def _fake_checkout(tmp_path, status: int):
    run = tmp_path / "run"
    run.write_text(f"#!/bin/sh\nprintf '%b' '{LINES}'\nexit {status}\n")
    run.chmod(run.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def test_the_phases_build_time_and_verdict_are_read_from_the_output(bench, tmp_path, capsys):
    figures = bench.run_drill(
        _fake_checkout(tmp_path, 0), {"PATH": "/usr/bin:/bin"}, tmp_path / "log"
    )
    assert figures["exit_status"] == 0
    assert figures["pulumi_build_seconds"] == 571
    assert figures["verdict"] == "PASS"
    assert 0 <= figures["setup_seconds"] <= figures["seconds"]
    assert figures["drill_seconds"] == pytest.approx(figures["seconds"] - figures["setup_seconds"])
    assert "verdict: PASS" in (tmp_path / "log").read_text()
    bench.report(figures, "before", "after")
    out = capsys.readouterr().out
    assert "the Pulumi engine build: 571 s" in out
    assert "target (a first ./run drill under 8 minutes): met" in out


def test_a_failed_drill_never_meets_the_target(bench, tmp_path, capsys):
    figures = bench.run_drill(
        _fake_checkout(tmp_path, 2), {"PATH": "/usr/bin:/bin"}, tmp_path / "log"
    )
    assert figures["exit_status"] == 2
    bench.report(figures, "before", "after")
    assert "NOT met" in capsys.readouterr().out

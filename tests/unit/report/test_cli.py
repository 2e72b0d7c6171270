"""kdrill report / verify / keys / compare, and the JUnit output: one-line errors, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from drills.cli import main
from drills.report.compare import ThresholdError, parse_thresholds


def test_report_command_rebuilds_and_resigns(run_dir, capsys):
    d = run_dir("passing")
    assert main(["report", str(d)]) == 0
    from drills.report.manifest import write_manifest

    write_manifest(d)
    assert main(["report", str(d)]) == 0  # only report.* changed: re-signed
    assert "re-signed" in capsys.readouterr().err
    assert main(["verify", str(d)]) == 0


def test_report_on_unknown_schema_is_one_line(run_dir, capsys):
    d = run_dir("interrupted")
    ev = json.loads((d / "evidence.json").read_text())
    ev["schema_version"] = 9
    (d / "evidence.json").write_text(json.dumps(ev))
    assert main(["report", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "evidence schema version 9" in err


def test_verify_fails_on_tampering(run_dir, capsys):
    d = run_dir("failed")
    main(["report", str(d)])
    from drills.report.manifest import write_manifest

    write_manifest(d)
    assert main(["verify", str(d)]) == 0
    (d / "report.md").write_text("edited")
    assert main(["verify", str(d)]) == 1
    assert "report.md: changed" in capsys.readouterr().err


def test_keys_prints_the_public_key(capsys):
    assert main(["keys"]) == 0
    first = capsys.readouterr().out.split()
    assert first[0] == "ed25519" and len(first[1]) == 44
    assert main(["keys"]) == 0  # the same key next time
    assert capsys.readouterr().out.split()[1] == first[1]


def test_junit_a_testcase_per_objective(run_dir, tmp_path):
    junit = tmp_path / "j.xml"
    assert main(["report", str(run_dir("failed")), "--junit", str(junit)]) == 0
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 8 and suite.get("failures") == "2"
    failure = next(c for c in cases if c.get("name") == "max_rto_seconds").find("failure")
    assert failure.get("message") == "max_rto_seconds: value 6.070008220000091 exceeds bound 5.0"
    main(["report", str(run_dir("interrupted")), "--junit", str(junit)])
    assert ET.parse(junit).getroot().find("testsuite").get("errors") == "1"


def test_compare_regressions_and_exit_codes(run_dir, tmp_path, capsys):
    a, b = run_dir("passing"), run_dir("failed")
    assert main(["compare", str(a), str(a), "--threshold", "rto=20%,rpo_records=0"]) == 0
    ev = json.loads((b / "evidence.json").read_text())
    ev["measurements"]["rto"]["seconds"] = 8.0  # +32%
    (b / "evidence.json").write_text(json.dumps(ev))
    html = tmp_path / "c.html"
    assert main(["compare", str(a), str(b), "--threshold", "rto=20%", "--html", str(html)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED failed: rto 8 vs baseline 6.07001 (threshold rto=20%)" in out
    assert "RTO s" in out and "cost USD" in out
    assert "<table>" in html.read_text()
    assert main(["compare", str(a), str(b), "--threshold", "rto=40%"]) == 0
    assert main(["compare", str(a), "--threshold", "nope=1"]) == 2


def test_threshold_parsing():
    t = parse_thresholds("rto=20%,rpo_records=0")
    assert [(x.figure, x.amount, x.relative) for x in t] == [
        ("rto", 0.2, True),
        ("rpo_records", 0, False),
    ]
    with pytest.raises(ThresholdError):
        parse_thresholds("rto=-1")


def test_run_names_the_report_last_and_writes_junit(monkeypatch, tmp_path, capsys):
    """`kdrill run` on a stand-in drill: the last lines name report.html; --junit is written."""
    import shutil
    from types import SimpleNamespace

    import drills.cli as cli
    import drills.runner as runner
    from drills.report.build import ReportHooks

    from .conftest import FIXTURES, evidence

    class Target:
        owned = False

        def prepare(self, progress=None):
            pass

        def release(self):
            pass

    monkeypatch.setattr(
        cli,
        "_load",
        lambda *a, **k: (
            SimpleNamespace(name="region-loss", target=SimpleNamespace(stack="local")),
            Target(),
        ),
    )

    def fake_run(spec, target, run_dir, *hooks):
        shutil.copytree(FIXTURES / "failed", run_dir)
        ReportHooks().finishing(SimpleNamespace(run_dir=run_dir, run_id="r"))
        return runner.DrillOutcome(1, "completed", run_dir, None, evidence("failed"))

    monkeypatch.setattr(runner, "run_drill", fake_run)
    junit = tmp_path / "j.xml"
    code = main(["run", "spec.yaml", "--out", str(tmp_path / "ev"), "--junit", str(junit)])
    assert code == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("report: ") and "report.html" in last
    assert 'failures="2"' in junit.read_text()

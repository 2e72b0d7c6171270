"""ReportHooks: report and manifest before the upload; manifest rewritten last if evidence changed."""

from __future__ import annotations

import json
from types import SimpleNamespace

from drills.report.build import ReportHooks
from drills.report.manifest import verify


def test_finishing_then_finished(run_dir):
    d = run_dir("passing")
    record = SimpleNamespace(run_dir=d, run_id="r1")
    hooks = ReportHooks()
    hooks.finishing(record)
    assert (d / "report.html").exists() and (d / "report.md").exists()
    assert verify(d).ok
    # the evidence hook rewrites evidence.json with the upload outcome
    ev = json.loads((d / "evidence.json").read_text())
    ev["uploaded_to"] = "s3://bucket/run/"
    (d / "evidence.json").write_text(json.dumps(ev))
    hooks.finished(record)
    v = verify(d)
    assert v.ok and not v.notes
    signed = json.loads((d / "manifest.json").read_text())["files"]
    assert (
        max((d / f).stat().st_mtime_ns for f in signed) <= (d / "manifest.json").stat().st_mtime_ns
    )


def test_a_broken_report_still_signs(run_dir):
    d = run_dir("passing")
    (d / "evidence.json").write_text("not json")
    hooks = ReportHooks()
    hooks.finishing(SimpleNamespace(run_dir=d, run_id="r1"))
    assert "not JSON" in hooks.error
    assert verify(d).ok

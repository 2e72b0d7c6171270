"""report.html and report.md rendered from recorded evidence: content, offline, rebuildable."""

from __future__ import annotations

import json
import re

import pytest

from drills.report.build import write_report
from drills.report.layers import LAYERS
from drills.report.load import ReportError, load_run

from .conftest import NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_renders_offline_and_small(run_dir, name):
    d = run_dir(name)
    rep, page, md = write_report(d)
    text = page.read_text()
    assert page.stat().st_size < 5_000_000
    assert not re.search(r"https?://", text), "the report must name no http(s) address"
    assert "<script" not in text and " src=" not in text
    for layer in LAYERS:
        assert f'data-layer="{layer}"' in text
    for rule in rep.findings:  # every rule listed, fired or not
        assert rule.title in text.replace("&#x27;", "'")
    assert md.read_text().startswith(f"### kdrill {rep.header['drill']}")
    assert len(md.read_text()) < 65_536


def test_passing_report_header_timeline_and_findings(run_dir):
    rep, page, md = write_report(run_dir("passing"))
    text = page.read_text()
    assert 'id="verdict" class="verdict pass">PASS<' in text
    for label in (
        "stack",
        "pattern",
        "versions",
        "kafka 4.1.1",
        "approver",
        "RTO",
        "RPO (records)",
        "cost",
    ):
        assert label in text
    for part in (
        "detect (T_detect",
        "decide (T_decide",
        "fence (T_fence",
        "cutover (T_cut",
        "first consume",
    ):
        assert part in text
    for marker in ("t_fault", "t_detect", "t_decide", "t_fence", "t_cut"):
        assert f'id="marker-{marker}"' in text
    assert 'id="marker-consume-analytics"' in text and 'id="marker-consume-billing"' in text
    fired = {f.rule for f in rep.findings if f.fired}
    assert fired == {"consumers-resumed-wrong", "group-resumed-from-reset", "records-lost"}
    assert 'data-rule="group-resumed-from-reset"' in text
    assert "analytics: east.orders-f5dc72[0] committed 351 resumed 0" in text
    assert "1,015 records re-read" in text
    # findings that do not fail the drill are unresolved risks
    assert any("consumer group resumed from auto.offset.reset" in r for r in rep.risks)
    assert "A consumer group resumed from auto.offset.reset" in md.read_text()
    # the five layers carry the default drill's checks
    names = {c.name for c in rep.checks if c.measured}
    for needed in (
        "replication lag (steady state, max)",
        "RPO (records lost)",
        "detection time (T_detect - T_fault)",
        "failed sends (delivery errors)",
        "topic parity (partitions)",
        "group parity (groups missing in the standby)",
        "serving vs pre-fault throughput",
        "drill cost (measured)",
        "decision mode",
        "step time: cutover",
    ):
        assert needed in names
    not_measured = [c for c in rep.checks if not c.measured]
    assert not_measured and all(c.note for c in not_measured)
    assert "lost-tail: 6 records (tolerated by the spec)" in text


def test_failed_report_names_what_was_missed(run_dir):
    rep, page, md = write_report(run_dir("failed"))
    text = page.read_text()
    assert "OBJECTIVES MISSED" in text
    missed = {c.name for c in rep.checks if c.state == "MISSED"}
    assert {"RTO", "duplicates consumed (all groups)", "serving vs pre-fault throughput"} <= missed
    assert {"standby-capacity", "duplicates-or-reordering", "cutover-slow"} <= {
        f.rule for f in rep.findings if f.fired
    }
    assert "No timeline: no history kept" in text
    assert "| max_rto_seconds | 6.070008220000091 | 5.0 | **no** |" in md.read_text()


def test_interrupted_report_says_what_was_not_measured(run_dir):
    rep, page, _ = write_report(run_dir("interrupted"))
    text = page.read_text()
    assert "DID NOT RUN (interrupted)" in text
    assert [f.rule for f in rep.findings if f.fired] == ["not-recovered"]
    assert "detect: rule delivery-errors interrupted" in text
    rpo = next(c for c in rep.checks if c.name == "RPO (records lost)")
    assert rpo.state == "not measured" and "interrupted before the history was checked" in rpo.note


def test_no_failover_report(run_dir):
    rep, page, _ = write_report(run_dir("no_failover"))
    text = page.read_text()
    assert "no failover" in text
    assert "marker-t_fence" not in text and "marker-t_cut" not in text
    assert "marker-t_fault" not in text  # no history kept, so no plot
    assert not rep.facts.failover
    assert not next(f for f in rep.findings if f.rule == "group-resumed-from-reset").fired


def test_rebuild_is_identical_apart_from_generation_time(run_dir):
    d = run_dir("passing")
    _, page, md = write_report(d, generated="first")
    one, one_md = page.read_text(), md.read_text()
    _, page, md = write_report(d, generated="second")
    assert one.replace('id="generated">first<', 'id="generated">second<') == page.read_text()
    assert one_md == md.read_text()


def test_unknown_evidence_major_is_one_clear_error(run_dir):
    d = run_dir("passing")
    ev = json.loads((d / "evidence.json").read_text())
    ev["schema_version"] = 2
    (d / "evidence.json").write_text(json.dumps(ev))
    with pytest.raises(ReportError, match="evidence schema version 2 is not one this kdrill reads"):
        load_run(d)


def test_missing_evidence_is_one_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no evidence.json"):
        load_run(tmp_path)

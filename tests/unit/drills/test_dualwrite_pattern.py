"""The pattern field (`replication.engine`): dual-write's spec rules, one line each, and the
evidence, summary and report saying which pattern ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from drills.evidence import summary_lines
from drills.report.build import write_report
from drills.spec import SpecError, load_spec, parse_spec

SCENARIO = (
    Path(__file__).resolve().parents[3] / "drills" / "scenarios" / "dual-write-region-loss.yaml"
)
FIXTURES = Path(__file__).resolve().parents[1] / "report" / "fixtures"


def raw() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


def test_the_shipped_dual_write_scenario_names_its_pattern():
    s = load_spec(SCENARIO)
    assert s.replication.engine == "dual-write"
    assert s.fault.kind == "region-loss" and s.rollback.rule == "none"
    assert "000_95c13f4b651d68d3" in SCENARIO.read_text().split("version: 1")[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replication": {"engine": "dualwrite"}},
         "replication.engine: must be one of 'mirrormaker2', 'dual-write', 'active-active', "
         "'backup-restore' or 'msk-replicator' (got 'dualwrite')"),
        ({"rollback": {"rule": "failback"}},
         "rollback.rule: dual-write has no replication to fail back; set rollback.rule: none"),
        ({"fault": {"kind": "partition"}},
         "fault.kind: replication.engine dual-write drills a region-loss incident (got 'partition'); "
         "use kind: region-loss or engine: mirrormaker2"),
        ({"cutover": {"failover": False}},
         "cutover.failover: dual-write moves the groups to the survivor; set cutover.failover: true"),
    ],
)  # fmt: skip
def test_a_bad_dual_write_spec_is_one_line(change, message):
    data = raw()
    for k, v in change.items():
        data[k] = {**data[k], **v} if k != "fault" else v
    with pytest.raises(SpecError) as e:
        parse_spec(data)
    assert str(e.value).splitlines() == [f"<spec>: {message}"], str(e.value)


def test_summary_and_report_name_the_pattern(tmp_path):
    import shutil

    d = tmp_path / "passing"
    shutil.copytree(FIXTURES / "passing", d)
    ev = json.loads((d / "evidence.json").read_text())
    ev["pattern"] = {"name": "dual-write", "describe": "application dual-write: every record ..."}
    ev["dual_write"] = {
        "lost": "east", "survivor": "west", "records": 10,
        "acknowledged": {"both": 7, "one_sided": {"east": 1, "west": 2}, "one_sided_total": 3, "neither": 0},
        "logged": {"both": 8, "one_sided": {"east": 0, "west": 2}, "one_sided_total": 2},
        "divergence": {"keys": 2, "of_keys": 4, "sample": []},
        "dedup": [{"group": "billing", "handed": 12, "delivered": 10, "removed": 2,
                   "expected_removed": 2, "delivered_twice": 0}],
        "dedup_removed": 2,
    }  # fmt: skip
    (d / "evidence.json").write_text(json.dumps(ev))
    lines = summary_lines(ev)
    assert lines[1] == "pattern: application dual-write: every record ..."
    assert any(x.startswith("dual-write: 10 records; acknowledged by one region only: 1 east, 2 west")
               for x in lines), lines  # fmt: skip
    _, page, md = write_report(d)
    text = md.read_text()
    assert "application dual-write: every record ..." in text
    assert (
        "dual-write: acknowledged by one region only" in text and "3 (east 1, west 2) of 10" in text
    )
    assert "dual-write: deduplication in group billing" in text


def test_older_evidence_without_a_pattern_still_says_asynchronous_replication(tmp_path):
    import shutil

    d = tmp_path / "passing"
    shutil.copytree(FIXTURES / "passing", d)
    _, _, md = write_report(d)
    assert "asynchronous replication (mirrormaker2" in md.read_text()

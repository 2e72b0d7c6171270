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


# --- preflight: the standby topics a dual-write's principals are checked on -------------------


def _preflight_on_a_pair_whose_mirrormaker2_has_not_caught_up(
    scenario: Path, tmp_path, monkeypatch
):
    """The preflight of `scenario` on paper, each principal's rights asked of a stand-in for
    the brokers that knows only the topics the drill itself created: the pair right after a
    MirrorMaker 2 drill, whose teardown restarted MirrorMaker 2, which has not yet discovered
    the new topic (no `east.<topic>` in west). Returns (what was asked per region and role,
    the line the preflight stopped on or None)."""
    from drills import controlstate
    from drills.engine import Drill
    from drills.journal import StepFailed
    from tests.unit.drills.test_engine import PaperTarget, paper_clients

    class Pair(PaperTarget):
        def __init__(self):
            super().__init__()
            self.topics: dict[str, set[str]] = {"east": set(), "west": set()}

        def create_topics(self, region, topics):
            super().create_topics(region, topics)
            self.topics[region] |= set(topics)

    target, asked = Pair(), {}

    def authorize(bootstrap, region, need, timeout=5, logger=None):  # as the brokers answer
        asked[(region, need.role)] = dict(need.topics)
        out = {"region": region, "role": need.role, "principal": "u", "ok": True, "finding": ""}
        for topic, op in sorted(need.topics.items()):
            if topic not in target.topics[region]:
                out.update(ok=False, finding=f"{region}: u ({need.role}) cannot {op} {topic}: "
                                             "the topic does not exist")  # fmt: skip
        return out

    monkeypatch.setattr(controlstate, "authorize", authorize)
    data = load_spec(scenario).to_dict()
    data["workload"]["topics"] = [{"name": "orders", "partitions": 3}]
    drill = Drill(parse_spec(data), target, tmp_path / "run", [], paper_clients(target))
    drill.dir.mkdir(parents=True)
    try:
        drill._preflight()
    except StepFailed as e:
        return asked, str(e)
    return asked, None


def test_dual_write_preflight_checks_the_standby_copy_it_writes_not_mirrormaker2s_replica(
    tmp_path, monkeypatch
):
    """The defect: a dual-write drill right after a MirrorMaker 2 drill stopped in preflight on
    `west: ... cannot READ east.orders: the topic does not exist` -- its groups' standby needs
    were named through the replication policy, but a dual-write group reads the application's
    own copy (`orders`) in the survivor, and its preflight rightly does not wait for
    MirrorMaker 2 to create a replica nobody reads."""
    asked, stopped = _preflight_on_a_pair_whose_mirrormaker2_has_not_caught_up(
        SCENARIO, tmp_path, monkeypatch
    )
    assert stopped is None, stopped
    west = {role: topics for (region, role), topics in asked.items() if region == "west"}
    assert west == {
        "producer": {"orders": "WRITE"},
        "group:billing": {"orders": "READ"},
        "group:analytics": {"orders": "READ"},
    }
    assert not any(t.startswith("east.") for (_, _), ts in asked.items() for t in ts)


def test_mirrormaker2_preflight_still_checks_the_replica_its_groups_resume_from(
    tmp_path, monkeypatch
):
    """The other side of the same list: under MirrorMaker 2 the groups resume from the replica,
    so a standby without READ on it (here: without the topic) still stops the preflight."""
    default = SCENARIO.parent / "region-loss.yaml"
    asked, stopped = _preflight_on_a_pair_whose_mirrormaker2_has_not_caught_up(
        default, tmp_path, monkeypatch
    )
    assert asked[("west", "group:billing")] == {"east.orders": "READ", "orders": "READ"}
    assert stopped is not None and "cannot READ east.orders: the topic does not exist" in stopped

"""The pattern field for active-active (`replication.engine: active-active`): its spec rules,
one line each, the refusal before anything is touched, and the evidence, summary and report
saying which pattern ran."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from drills import activeactive
from drills.evidence import summary_lines
from drills.journal import DrillRefused
from drills.report.build import write_report
from drills.spec import SpecError, load_spec, parse_spec

SCENARIO = (
    Path(__file__).resolve().parents[3] / "drills" / "scenarios" / "active-active-region-loss.yaml"
)
FIXTURES = Path(__file__).resolve().parents[1] / "report" / "fixtures"


def raw() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


def test_the_shipped_active_active_scenario_names_its_pattern():
    s = load_spec(SCENARIO)
    assert s.replication.engine == "active-active" and s.replication.policy == "prefixed"
    assert s.fault.kind == "region-loss" and s.rollback.rule == "none"
    assert not s.cutover.failover and s.steady_state.duration_s == 5
    assert "000_95c13f4b651d68d3" in SCENARIO.read_text().split("version: 1")[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rollback": {"rule": "failback"}},
         "rollback.rule: active-active has no failback (both regions serve throughout); "
         "set rollback.rule: none"),
        ({"fault": {"kind": "partition"}},
         "fault.kind: replication.engine active-active drills a region-loss incident (got "
         "'partition'); use kind: region-loss or engine: mirrormaker2"),
        ({"cutover": {"failover": True}},
         "cutover.failover: active-active moves no client: the lost region returns and serves its "
         "own clients again; set cutover.failover: false"),
        ({"replication": {"policy": "identity"}},
         "replication.policy: active-active needs the prefixed policy (under identity each "
         "region's copies land in the topic the other region writes, and copy back); set "
         "policy: prefixed"),
    ],
)  # fmt: skip
def test_a_bad_active_active_spec_is_one_line(change, message):
    data = raw()
    for k, v in change.items():
        data[k] = {**data[k], **v} if k != "fault" else v
    with pytest.raises(SpecError) as e:
        parse_spec(data)
    assert str(e.value).splitlines() == [f"<spec>: {message}"], str(e.value)


def test_a_stack_under_identity_is_refused_before_anything_is_touched():
    data = raw()
    data["replication"]["policy"] = None
    spec = parse_spec(data)
    touched = []
    target = SimpleNamespace(
        policy="identity", primary="east", standby="west",
        facts=lambda: SimpleNamespace(stack="local"),
        start_reverse_replication=lambda **kw: touched.append("reverse"),
    )  # fmt: skip
    drill = SimpleNamespace(spec=spec, target=target, fault=SimpleNamespace(region="east"))
    with pytest.raises(DrillRefused) as e:
        activeactive.validate(drill)
    assert str(e.value).startswith("replication.engine: active-active needs the prefixed policy")
    assert touched == []
    target.policy = "prefixed"
    activeactive.validate(drill)  # the stack's own prefixed policy will do


@pytest.mark.parametrize(
    ("stack", "fix"),
    [("apache-use1-usw2", "replication.engine: mirrormaker2"),
     ("msk-use1-usw2", "replication.engine: msk-replicator")],
)  # fmt: skip
def test_active_active_on_an_aws_stack_is_refused_in_one_line(capsys, tmp_path, stack, fix):
    """An AWS target has no reverse replication (nor a restart of the forward one): refused
    by `kdrill run --plan` and `kdrill validate` before anything is read from AWS, where
    the local pair's stack validates."""
    from drills import cli

    spec = tmp_path / "aa.yaml"  # AWS stacks name their regions primary / standby
    spec.write_text(SCENARIO.read_text().replace("  region: east\n", "  region: primary\n"))
    for argv in (
        ["run", str(spec), "--stack", stack, "--plan"],
        ["validate", str(spec), "--stack", stack],
    ):
        code = cli.main(argv)
        err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
        assert code == 2 and len(err) == 1, (argv, err)
        assert (
            f"active-active needs reverse replication, which AWS stack {stack} does not have yet"
            in err[0]
            and "--stack local" in err[0]
            and err[0].endswith(fix)
        ), err
    assert cli.main(["validate", str(SCENARIO), "--stack", "local"]) == 0, capsys.readouterr().err


def test_summary_and_report_name_the_pattern(tmp_path):
    d = tmp_path / "passing"
    shutil.copytree(FIXTURES / "passing", d)
    ev = json.loads((d / "evidence.json").read_text())
    ev["pattern"] = {"name": "active-active", "describe": "active-active: both regions ..."}
    ev["active_active"] = {
        "pattern": "active-active", "lost_region": "east", "survivor": "west", "window_s": 0.5,
        "records": {"east": 10, "west": 12},
        "conflicts": {"records": 7, "keys": 3, "of_keys": 4, "by_region": {"east": 3, "west": 4},
                      "sample": []},
        "ordering": {"keys_differing": 2, "groups": []},
        "copies": {r: {"exactly_one": 22, "duplicated": 0, "misplaced": 0, "missing": 0}
                   for r in ("east", "west")},
        "loop_topics": [], "crossed_twice": 0, "lost": {"east": 0, "west": 1}, "lost_total": 1,
        "lost_locally": {"east": 0, "west": 0}, "stranded": 3, "notes": [],
    }  # fmt: skip
    (d / "evidence.json").write_text(json.dumps(ev))
    lines = summary_lines(ev)
    assert lines[1] == "pattern: active-active: both regions ..."
    assert (
        "active-active: east 10, west 12 records; 7 in conflict on 3 of 4 keys (same key from "
        "both regions within 0.50s); cross-region order differs on 2 keys" in lines
    ), lines
    assert (
        "active-active: crossed twice 0 (loop topics 0); lost east 0, west 1; stranded by the "
        "loss of east: 3" in lines
    ), lines
    _, _, md = write_report(d)
    text = md.read_text()
    assert "active-active: both regions ..." in text
    assert "active-active: records in conflict" in text and "7 on 3 of 4 keys" in text
    assert "active-active: acknowledged, never reached the other region" in text

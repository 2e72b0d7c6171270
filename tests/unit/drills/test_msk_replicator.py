"""`replication.engine: msk-replicator` on the AWS stacks, under Pulumi's mocks: the rendered
aws.msk.Replicator inputs (starting position, topic names, group-offset sync, the cutover's
stop), the target's naming and stop, `kdrill run --plan`'s lines, and the one-line refusals
when the spec and the stack's replication do not go together."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from components.aws.config import ConfigError, parse_stack_config
from components.aws.mocks import diff
from drills import cli
from drills.targets import TargetError
from drills.targets.aws import check_engine, plan_lines
from tests.unit.components.harness import render, stack_config
from tests.unit.drills.test_aws_target import DEFAULT, target

REPLICATOR = "aws:msk/replicator:Replicator"
MSK = "msk-use1-usw2"


def msk_spec(tmp_path: Path, resume: str = "synced") -> str:
    text = (
        DEFAULT.read_text()
        .replace("  region: east\n", "  region: primary\n")
        .replace("  engine: mirrormaker2\n", "  engine: msk-replicator\n")
        .replace("  resume: synced ", f"  resume: {resume} ")
    )
    assert "engine: msk-replicator" in text and f"resume: {resume}" in text
    p = tmp_path / "msk-drill.yaml"
    p.write_text(text)
    return str(p)


def msk_stack(tmp_path: Path, **replication) -> str:
    """stacks/Pulumi.msk-use1-usw2.yaml with its replication block changed, as a stack file."""
    doc = yaml.safe_load((Path(DEFAULT).parents[2] / "stacks" / f"Pulumi.{MSK}.yaml").read_text())
    doc["config"]["kdrill:replication"].update(replication)
    p = tmp_path / f"Pulumi.{MSK}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return str(p)


def replicator_info(config: dict) -> dict:
    (rep,) = render(config, MSK).of(REPLICATOR)
    assert rep.provider and "aws-standby" in rep.provider, f"{rep.name}: not in the standby"
    return rep.inputs["replicationInfoList"]


# --- the rendered Replicator ---------------------------------------------------------------


def test_default_replicator_copies_from_earliest_under_identical_names_and_syncs_groups():
    info = replicator_info(stack_config(MSK))
    (topics,) = info["topicReplications"]
    (groups,) = info["consumerGroupReplications"]
    assert topics["startingPosition"] == {"type": "EARLIEST"}
    assert topics["topicNameConfiguration"] == {"type": "IDENTICAL"}
    assert topics["topicsToReplicates"] == [".*"] and "topicsToExcludes" not in topics
    assert groups == {
        "consumerGroupsToReplicates": [".*"],
        "synchroniseConsumerGroupOffsets": True,
        "detectAndCopyNewConsumerGroups": True,
    }


def test_latest_and_prefixed_render_as_the_api_spells_them():
    raw = copy.deepcopy(stack_config(MSK))
    raw["replication"].update(startingPosition="latest", topicNames="prefixed")
    (topics,) = replicator_info(raw)["topicReplications"]
    assert topics["startingPosition"] == {"type": "LATEST"}
    assert topics["topicNameConfiguration"] == {"type": "PREFIXED_WITH_SOURCE_CLUSTER_ALIAS"}


def test_stopping_excludes_every_topic_and_group_and_changes_nothing_else():
    raw = stack_config(MSK)
    before, after = render(raw, MSK), render({**raw, "replicationStopped": True}, MSK)
    d = diff(before, after)
    assert not d.added and not d.removed, f"stopping adds {d.added} or removes {d.removed}"
    assert d.changed == [(REPLICATOR, "kdrill-replicator-replicator", ["replicationInfoList"])]
    (rep,) = after.of(REPLICATOR)
    (topics,) = rep.inputs["replicationInfoList"]["topicReplications"]
    (groups,) = rep.inputs["replicationInfoList"]["consumerGroupReplications"]
    assert topics["topicsToExcludes"] == [".*"] and groups["consumerGroupsToExcludes"] == [".*"]
    # the fields that would replace the Replicator are untouched
    assert topics["startingPosition"] == {"type": "EARLIEST"}
    assert topics["topicNameConfiguration"] == {"type": "IDENTICAL"}
    assert rep.inputs["replicatorName"] == before.of(REPLICATOR)[0].inputs["replicatorName"]


def test_replicator_settings_on_another_replication_kind_are_one_line():
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    raw["replication"]["startingPosition"] = "latest"
    with pytest.raises(ConfigError) as e:
        parse_stack_config(raw)
    msg = " ".join(str(e.value).split())
    assert "replication.startingPosition only apply to kind msk-replicator" in msg, msg
    assert "not mirrormaker2" in msg, msg
    raw = copy.deepcopy(stack_config(MSK))
    raw["replication"]["topicNames"] = "renamed"
    with pytest.raises(ConfigError, match="topicNames"):
        parse_stack_config(raw)


# --- the target ------------------------------------------------------------------------------


def test_target_names_follow_the_topic_name_configuration(tmp_path):
    t, fake = target(MSK)
    assert (t.policy, t.remote_topic("orders")) == ("identity", "orders")
    t, fake = target(msk_stack(tmp_path, topicNames="prefixed"))
    assert t.policy == "prefixed"
    with pytest.raises(TargetError, match="no replication.sourceClusterAlias"):
        t.remote_topic("orders")  # the fake stack's outputs lack it: one line, not a KeyError
    t._outputs = {**fake.outputs(), "replication": {"sourceClusterAlias": "src-abc123"}}
    t._outputs = {k: getattr(v, "value", v) for k, v in t._outputs.items()}
    assert t.remote_topic("orders") == "src-abc123.orders"  # the alias AWS chose, not "primary"
    notes = t.facts().to_dict()["notes"]["mskReplicator"]
    assert "PREFIXED_WITH_SOURCE_CLUSTER_ALIAS" in notes and "no consumer of it is active" in notes


def test_stop_replication_is_a_stack_update_and_is_cleared_like_a_fault():
    t, fake = target(MSK)
    fid, _ = t.stop_replication()
    assert fake.config["kdrill:replicationStopped"] == "true" and len(fake.ups) == 1
    assert t.open_faults(0) == [fid]
    t.clear_faults([fid], final=True)
    assert "kdrill:replicationStopped" not in fake.config and len(fake.ups) == 2
    with pytest.raises(TargetError, match="MSK Replicator does not write"):
        t.checkpoints()  # no MirrorMaker 2 checkpoints topic to translate from


def test_check_engine_pairs_the_spec_with_the_stack():
    msk, apache = target(MSK)[0].facts(), target("apache-use1-usw2")[0].facts()
    check_engine("msk-replicator", "synced", msk)
    check_engine("mirrormaker2", "checkpoint", apache)
    check_engine("dual-write", "synced", msk)  # the application replicates: any stack
    with pytest.raises(TargetError, match="stack apache-use1-usw2 replicates with mirrormaker2"):
        check_engine("msk-replicator", "synced", apache)
    with pytest.raises(TargetError, match="set replication.engine: msk-replicator"):
        check_engine("mirrormaker2", "synced", msk)
    with pytest.raises(TargetError, match="resume: checkpoint reads MirrorMaker 2's"):
        check_engine("msk-replicator", "checkpoint", msk)


# --- kdrill run --plan ---------------------------------------------------------------------


def test_plan_shows_the_replicator_the_drill_relies_on_and_its_stop(tmp_path):
    lines = plan_lines(msk_spec(tmp_path), MSK)
    at = lines.index(
        "plan: replication msk-replicator, aws:msk/replicator:Replicator "
        "kdrill-replicator-replicator (in us-west-2, the standby's region)"
    )
    assert "6 to add, 0 to change, 0 to remove" in lines[at - 1]  # the fault's plan first
    assert lines[at + 1] == (
        "  startingPosition EARLIEST, topicNameConfiguration IDENTICAL (policy identity: the "
        "standby reads orders)"
    )
    assert lines[at + 2] == (
        "  consumerGroupReplication: groups ['.*'], synchroniseConsumerGroupOffsets True"
    )
    stop = [x for x in lines if x.startswith("    ~ ")]
    assert stop == [
        f"    ~ {REPLICATOR} kdrill-replicator-replicator (replicationInfoList): "
        "topicsToExcludes ['.*'], consumerGroupsToExcludes ['.*'] [UpdateReplicationInfo, "
        "in place]"
    ]
    resume = lines[-1]
    assert resume.startswith("  groups billing, analytics resume from the Replicator's synced")
    assert "join each group only at cutover, after the stop" in resume


def test_plan_of_a_latest_prefixed_replicator_warns_of_what_latest_loses(tmp_path):
    lines = plan_lines(msk_spec(tmp_path), msk_stack(tmp_path, startingPosition="latest",
                                                     topicNames="prefixed"))  # fmt: skip
    text = "\n".join(lines)
    assert (
        "startingPosition LATEST, topicNameConfiguration PREFIXED_WITH_SOURCE_CLUSTER_ALIAS "
        "(policy prefixed: the standby reads <sourceKafkaClusterAlias>.orders)" in text
    ), text
    assert "never reach the standby and count as lost" in text


@pytest.mark.parametrize(
    ("stack", "resume", "expected"),
    [
        ("apache-use1-usw2", "synced", "needs a stack replicated by MSK Replicator, but stack "
         "apache-use1-usw2 replicates with mirrormaker2"),
        ("local", "synced", "the local pair runs MirrorMaker 2 only"),
        (MSK, "checkpoint", "cutover.resume: checkpoint reads MirrorMaker 2's checkpoints topic"),
    ],
)  # fmt: skip
def test_msk_replicator_where_it_cannot_run_is_one_line(capsys, tmp_path, stack, resume, expected):
    spec = msk_spec(tmp_path, resume)
    plan = [] if stack == "local" else [["run", spec, "--stack", stack, "--plan"]]
    for argv in [*plan, ["validate", spec, "--stack", stack]]:
        code = cli.main(argv)
        err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
        assert code == 2 and len(err) == 1 and expected in err[0], (argv, err)

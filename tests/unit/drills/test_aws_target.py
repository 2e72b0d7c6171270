"""The AWS target (drills/targets/aws.py) without AWS: a stand-in for the Pulumi stack
(outputs, config, up), the shared Kafka-side code, `kdrill run --plan` (the real program
under Pulumi's mocks) and the one-line refusal of a real run without credentials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.faults import FaultSpec
from drills import cli
from drills.targets import AwsTarget, LocalTarget, TargetError, TargetFacts, kafka_side, open_target
from drills.targets.aws import plan_lines

REPO = Path(__file__).resolve().parents[3]
DEFAULT = REPO / "drills" / "scenarios" / "region-loss.yaml"


def aws_spec(tmp_path: Path, region: str = "primary") -> str:
    text = DEFAULT.read_text().replace("  region: east\n", f"  region: {region}\n")
    p = tmp_path / "aws-drill.yaml"
    p.write_text(text)
    return str(p)


class Value:
    def __init__(self, value):
        self.value = value


class FakeStack:
    """Automation API stack stand-in: outputs, kdrill:faults config, up."""

    def __init__(self):
        self.config: dict[str, str] = {}
        self.ups: list[list] = []

    def outputs(self):
        regions = {
            role: {"bootstrapServers": f"{role}-b:9092", "evidenceBucket": f"ev-{role}"}
            for role in ("primary", "standby")
        }
        return {"regions": Value(regions)}

    def get_config(self, key):
        if key not in self.config:
            raise KeyError(key)
        return Value(self.config[key])

    def set_config(self, key, value):
        self.config[key] = value.value

    def remove_config(self, key):
        self.config.pop(key, None)

    def up(self, on_output=None):
        self.ups.append(json.loads(self.config.get("kdrill:faults", "[]")))


def target(stack="apache-use1-usw2") -> tuple[AwsTarget, FakeStack]:
    t = open_target(stack)
    fake = FakeStack()
    t._stack_ops = fake
    return t, fake


def test_open_target_gives_an_aws_target_reading_files_only():
    t = open_target("msk-use1-usw2")
    assert isinstance(t, AwsTarget)
    assert (t.primary, t.standby) == ("primary", "standby")
    facts = t.facts().to_dict()
    assert facts["kind"] == "aws" and facts["replication"]["engine"] == "msk-replicator"
    assert t.remote_topic("orders") == "orders"  # MSK Replicator keeps names (IDENTICAL)
    assert open_target("apache-use1-usw2").remote_topic("orders") == "primary.orders"


def test_bootstraps_and_evidence_bucket_come_from_stack_outputs():
    t, _ = target()
    t.prepare()
    assert t.bootstrap("primary") == "primary-b:9092"
    assert t.bootstrap("standby") == "standby-b:9092"
    assert t._region("standby")["evidenceBucket"] == "ev-standby"
    with pytest.raises(TargetError, match="primary and standby"):
        t.bootstrap("east")


def test_faults_are_stack_config_then_up_and_clearing_restores_it():
    t, fake = target()
    fid, t_fault = t.apply_fault(FaultSpec("region-loss"))
    assert fid == "region-loss@primary" and t_fault > 0
    assert fake.ups[-1] == [{"kind": "region-loss", "region": "primary"}]
    t.apply_fault(FaultSpec("fis-cross-region", region="standby", params={"duration": "PT5M"}))
    assert fake.ups[-1][1] == {"kind": "fis-cross-region", "region": "standby", "duration": "PT5M"}
    assert t.open_faults(0) == ["region-loss@primary", "fis-cross-region@standby"]
    t.clear_faults([fid])
    assert [e["kind"] for e in fake.ups[-1]] == ["fis-cross-region"]
    assert t.recover() == ["fis-cross-region@standby: kdrill:faults entry on apache-use1-usw2"]
    assert fake.ups[-1] == [] and "kdrill:faults" not in fake.config
    with pytest.raises(TargetError, match="partition does not run on the aws target"):
        t.resolve_fault(FaultSpec("partition"))


def test_kafka_side_is_the_local_targets_code(monkeypatch):
    # create_topics and inventory: the local target adds workload ACLs and quotas around them
    for method in ("end_offsets", "checkpoints"):
        assert getattr(AwsTarget, method) is getattr(LocalTarget, method), method
    for method in ("create_topics", "inventory", "end_offsets", "checkpoints"):
        assert getattr(AwsTarget, method) is getattr(kafka_side.KafkaSide, method), method
    seen = []

    class Client:  # the one client per region end_offsets keeps open
        def __init__(self, conf, logger=None):
            self.bootstrap = conf["bootstrap.servers"]
            seen.append(("open", self.bootstrap))

        def close(self):
            seen.append(("close", self.bootstrap))

    monkeypatch.setattr(kafka_side, "Consumer", Client)
    monkeypatch.setattr(
        kafka_side.kafka,
        "read_end_offsets",
        lambda c, topics: seen.append((c.bootstrap, topics)) or {},
    )
    monkeypatch.setattr(
        kafka_side.kafka, "create_topics", lambda b, topics, rf: seen.append((b, topics, rf))
    )
    t, _ = target()
    t.end_offsets("standby", ["primary.orders"])
    t.end_offsets("standby", ["primary.orders"])
    t.create_topics("primary", {"orders": 6})
    t.release()
    assert seen == [
        ("open", "standby-b:9092"),
        ("standby-b:9092", ["primary.orders"]),
        ("standby-b:9092", ["primary.orders"]),  # the same client, not a new one
        ("primary-b:9092", {"orders": 6}, 3),
        ("close", "standby-b:9092"),  # closed with the target
    ]
    assert t.checkpoints_topic() == "primary.checkpoints.internal"


def test_plan_prints_what_the_fault_adds_changes_and_removes(tmp_path):
    lines = plan_lines(aws_spec(tmp_path), "apache-use1-usw2")
    added = [x for x in lines if x.startswith("  + ")]
    changed = [x for x in lines if x.startswith("  ~ ")]
    assert len(added) == 6 and all("fault-deny" in x for x in added), added
    assert len(changed) == 3 and all("instanceState" in x for x in changed), changed
    assert all("(force, state) [update or replace: unknown under mocks]" in x for x in changed)
    assert lines[-1] == "  6 to add, 3 to change, 0 to remove"


def test_run_plan_cli_and_refusals_are_one_line(capsys, tmp_path, monkeypatch):
    code = cli.main(["run", aws_spec(tmp_path), "--stack", "apache-use1-usw2", "--plan"])
    out = capsys.readouterr().out
    assert code == 0 and "6 to add, 3 to change, 0 to remove" in out, out
    code = cli.main(["run", str(DEFAULT), "--stack", "local", "--plan"])
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 2 and len(err) == 1 and "--plan shows what a fault changes" in err[0], err

    import boto3

    monkeypatch.setattr(boto3.session.Session, "get_credentials", lambda self: None)
    code = cli.main(["run", aws_spec(tmp_path), "--stack", "apache-use1-usw2"])
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 2 and len(err) == 1, err
    assert "is an AWS stack and there are no AWS credentials" in err[0], err


def test_stop_replication_scales_mirrormaker2_to_zero_and_is_cleared():
    t, fake = target("apache-use1-usw2")
    fid, _ = t.stop_replication()
    assert fake.config["kdrill:replicationStopped"] == "true" and len(fake.ups) == 1
    assert t.open_faults(0) == [fid]
    t.clear_faults([fid], final=True)
    assert "kdrill:replicationStopped" not in fake.config and len(fake.ups) == 2
    none, _ = target("apache-use1-usw2")  # MSK Replicator's stop: test_msk_replicator.py
    none.cfg = none.cfg.model_copy(
        update={"replication": none.cfg.replication.model_copy(update={"kind": "none"})}
    )
    with pytest.raises(TargetError, match="stopping none is not a stack operation"):
        none.stop_replication()


def test_evidence_states_what_s3_replication_does_under_region_loss():
    t, _ = target("automq-use1-usw2")
    notes = t.facts().to_dict()["notes"]
    assert notes["s3ReplicationUnderRegionLoss"].startswith(
        "buckets replicated primary -> standby: evidence, ops; continues: S3 cross-region"
    ), notes
    local = TargetFacts("local", "local", "east", "west", "prefixed").to_dict()
    assert "notes" not in local  # evidence without notes keeps its shape

"""The whole pack against whole mocked stacks: clean stacks pass; seeded violations —
through config where config allows them, otherwise by editing the rendered inputs — are
each caught, and the message names the offending resource."""

import copy
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.components.harness import AWS_STACKS, render, render_stack, stack_config
from tests.unit.policies.helpers import run_pack


def as_resources(rendered):
    return [(r.typ, r.name, copy.deepcopy(r.inputs)) for r in rendered.resources]


def edit(resources, name, change):
    for _, n, props in resources:
        if n == name:
            change(props)
            return resources
    raise AssertionError(f"no resource {name}")


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_checked_in_stacks_pass_the_pack(stack):
    assert run_pack(as_resources(render_stack(stack))) == []


def test_undersized_standby_from_config_is_caught():
    raw = copy.deepcopy(stack_config("msk-use1-usw2"))
    raw["brokers"]["standby"] = {"count": 3, "instanceType": "kafka.m7g.large"}
    raw["brokers"]["primary"] = {"count": 6, "instanceType": "kafka.m7g.large"}
    found = run_pack(as_resources(render(raw, "msk-use1-usw2")))
    assert (
        len(found) == 1 and "standby broker capacity 6 units is below the primary's 12" in found[0]
    ), found


def test_ephemeral_stack_expiry():
    raw = copy.deepcopy(stack_config("automq-use1-usw2"))
    raw["environment"] = "ephemeral"
    raw["expiresAt"] = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    assert run_pack(as_resources(render(raw, "automq-use1-usw2"))) == []
    raw["expiresAt"] = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    found = run_pack(as_resources(render(raw, "automq-use1-usw2")))
    assert found and all("kdrill:expires-at" in m for m in found), found[:3]
    assert any(m.startswith("kdrill-primary-vpc ") for m in found)


def test_seeded_violations_are_each_caught():
    rs = as_resources(render_stack("apache-use1-usw2"))
    edit(rs, "kdrill-primary-vpc", lambda p: p["tags"].pop("cost-center"))
    edit(rs, "kdrill-standby-evidence-sse", lambda p: p.update(rules=[]))
    edit(
        rs, "kdrill-primary-evidence-replication", lambda p: p["rules"][0].update(status="Disabled")
    )
    edit(rs, "kdrill-primary-kafka-fleet-broker-1-log-volume", lambda p: p.update(encrypted=False))
    edit(rs, "kdrill-standby-kafka-fleet-broker-0-log-volume", lambda p: p.update(iops=100))
    edit(rs, "kdrill-primary-kafka-from-apps-use1", lambda p: p.update(cidrIpv4="0.0.0.0/0"))
    edit(rs, "kdrill-standby-kafka-fleet-broker-2", lambda p: p.update(instanceType="m7g.large"))
    found = run_pack(rs)
    expected = {
        "kdrill-primary-vpc (aws:ec2/vpc:Vpc) lacks cost tags: cost-center",
        "kdrill-standby-evidence-bucket: bucket kdrill-apache-use1-usw2-us-west-2-evidence has no default encryption",
        "kdrill-primary-evidence-bucket: bucket kdrill-apache-use1-usw2-us-east-1-evidence must replicate",
        "kdrill-primary-kafka-fleet-broker-1-log-volume (log-volume) is not encrypted",
        "kdrill-standby-kafka-fleet-broker-0-log-volume (log-volume) has iops=100",
        "kdrill-primary-kafka-from-apps-use1 opens a Kafka port to the internet",
        "standby broker capacity 10 units is below the primary's 12",
    }
    for prefix in expected:
        assert any(m.startswith(prefix) for m in found), f"pack missed: {prefix}\nfound: {found}"
    assert len(found) == len(expected), f"unexpected extra violations: {found}"


def test_msk_plaintext_is_caught():
    rs = as_resources(render_stack("msk-use1-usw2"))
    edit(
        rs,
        "kdrill-standby-msk-cluster",
        lambda p: p["encryptionInfo"]["encryptionInTransit"].update(clientBroker="TLS_PLAINTEXT"),
    )
    found = run_pack(rs)
    assert len(found) == 1 and found[0].startswith(
        "kdrill-standby-msk-cluster: MSK clientBroker"
    ), found

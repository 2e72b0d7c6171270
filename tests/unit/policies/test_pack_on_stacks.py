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


# --- issue 20 item 11: one seeded misconfiguration per rule, on a whole mocked stack ------------


def _split_world(rs):
    """Two rules on the brokers' SG that each look private but together cover the internet."""
    rule = next(p for _, n, p in rs if n == "kdrill-primary-kafka-from-apps-use1")
    rule["cidrIpv4"] = "0.0.0.0/1"
    twin = dict(rule, cidrIpv4="128.0.0.0/1")
    rs.append(("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "kdrill-twin", twin))


def _bucket_v2(rs):
    """A BucketV2 (the deprecated name) without versioning or encryption is still a bucket."""
    tags = next(p for _, n, p in rs if n == "kdrill-primary-vpc")["tags"]
    rs.append(("aws:s3/bucketV2:BucketV2", "kdrill-v2", {"bucket": "kdrill-v2", "tags": tags}))


def _deny_after_allow(rs):
    rule = next(p for t, n, p in rs if n == "kdrill-primary-private-0-allow-vpc-in")
    deny = dict(rule, ruleAction="deny", ruleNumber=150, cidrBlock="0.0.0.0/0", protocol="-1")
    rs.append(("aws:ec2/networkAclRule:NetworkAclRule", "kdrill-late-deny", deny))


def _one_region(rs):
    for t, _, p in rs:
        if t == "pulumi:providers:aws":
            p["region"] = "us-east-1"


SEEDED = [
    ("apache-use1-usw2", _split_world, "kdrill-primary-kafka-from-apps-use1, kdrill-twin: together open"),
    ("apache-use1-usw2", _bucket_v2, "kdrill-v2: bucket kdrill-v2 is not versioned"),
    ("apache-use1-usw2", lambda rs: edit(rs, "kdrill-primary-privatelink-nlb", lambda p: p.update(internal=False)), "kdrill-primary-privatelink-nlb: load balancer is internet-facing"),
    ("msk-use1-usw2", lambda rs: edit(rs, "kdrill-primary-msk-cluster", lambda p: p["clientAuthentication"].update(unauthenticated=True)), "kdrill-primary-msk-cluster: MSK allows unauthenticated"),
    ("automq-use1-usw2", lambda rs: edit(rs, "kdrill-standby-automq-fleet-lt", lambda p: p["blockDeviceMappings"][0]["ebs"].update(encrypted="false")), "kdrill-standby-automq-fleet-lt: block device /dev/xvda is not encrypted"),
    ("automq-use1-usw2", _one_region, "primary and standby must be in two distinct regions"),
    ("apache-use1-usw2", _deny_after_allow, "kdrill-late-deny: deny rule 150 comes after allow rule 100"),
]  # fmt: skip


@pytest.mark.parametrize(
    "stack,seed,message",
    SEEDED,
    ids=[s[1].__name__ if s[1].__name__ != "<lambda>" else s[2].split(":")[0] for s in SEEDED],
)
def test_issue20_rule_catches_its_seeded_misconfiguration(stack, seed, message):
    rs = as_resources(render_stack(stack))
    seed(rs)
    found = run_pack(rs)
    assert any(m.startswith(message) for m in found), f"pack missed: {message}\nfound: {found}"

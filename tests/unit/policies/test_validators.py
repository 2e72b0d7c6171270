"""Each validator with a passing and a violating hand-built case."""

from datetime import UTC, datetime, timedelta

import pytest

from policies import validators as v
from tests.unit.policies.helpers import resource_args, stack_args, violations

TAGS = {
    "kdrill:drill-id": "d1",
    "kdrill:stack": "s",
    "owner": "o",
    "cost-center": "cc",
    "environment": "staging",
}


def soon(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_cost_tags():
    ok = resource_args("aws:ec2/vpc:Vpc", {"tags": TAGS}, "vpc")
    assert violations(v.validate_cost_tags, ok) == []
    bad = resource_args("aws:ec2/vpc:Vpc", {"tags": {"owner": "o"}}, "vpc-bad")
    (msg,) = violations(v.validate_cost_tags, bad)
    assert "vpc-bad" in msg and "cost-center" in msg and "kdrill:drill-id" in msg
    untaggable = resource_args("aws:s3/bucketVersioning:BucketVersioning", {}, "ver")
    assert violations(v.validate_cost_tags, untaggable) == []


def test_ephemeral_resources_need_expiry_tag():
    bad = resource_args("aws:ec2/vpc:Vpc", {"tags": {**TAGS, "environment": "ephemeral"}}, "eph")
    assert any("kdrill:expires-at" in m for m in violations(v.validate_cost_tags, bad))


@pytest.mark.parametrize(
    "expires,ok",
    [(soon(24), True), (soon(24 * 30), False), ("next tuesday", False), (None, False)],
)
def test_expiry(expires, ok):
    tags = {**TAGS, "environment": "ephemeral"}
    if expires is not None:
        tags["kdrill:expires-at"] = expires
    args = resource_args("aws:ec2/vpc:Vpc", {"tags": tags}, "eph-vpc", config={"maxTtlHours": 72})
    found = violations(v.validate_expiry, args)
    assert (found == []) is ok, found
    if not ok:
        assert "eph-vpc" in found[0]


def test_expiry_limit_comes_from_policy_config():
    tags = {**TAGS, "environment": "ephemeral", "kdrill:expires-at": soon(10)}
    strict = resource_args("aws:ec2/vpc:Vpc", {"tags": tags}, "eph", config={"maxTtlHours": 4})
    assert violations(v.validate_expiry, strict)


@pytest.mark.parametrize(
    "tags,problem",
    [
        ({}, None),
        ({"environment": "staging"}, None),
        ({"environment": "ephemeral", "kdrill:expires-at": soon(2)}, None),
        ({"environment": "ephemeral"}, "has no kdrill:expires-at"),
        ({"environment": "ephemeral", "kdrill:expires-at": soon(24 * 30)}, "more than"),
        ({"environment": "ephemeral", "kdrill:expires-at": "tomorrow"}, "not an ISO 8601"),
        ({"environment": "ephemeral", "kdrill:expires-at": "2026-12-01T10:00:00"}, "no time zone"),
    ],
)
def test_stack_expiry_from_stack_tags(tags, problem):
    # The local stack's only resource (the fault switch) carries no tags: the stack tags decide.
    switch = [("pulumi-python:dynamic:Resource", "kd-faults", {"faults": {}})]
    found = violations(v.validate_stack_expiry, stack_args(switch, stack_tags=tags))
    if problem is None:
        assert found == []
    else:
        (msg,) = found
        assert problem in msg and "stack tags" in msg


def test_stack_expiry_limit_comes_from_policy_config():
    tags = {"environment": "ephemeral", "kdrill:expires-at": soon(10)}
    assert violations(v.validate_stack_expiry, stack_args([], {"maxTtlHours": 4}, tags))
    assert not violations(v.validate_stack_expiry, stack_args([], {"maxTtlHours": 12}, tags))


def bucket_set(
    name="b", versioned=True, sse="AES256", public_blocked=True, replicate=None, replicated=False
):
    res = [
        (
            "aws:s3/bucket:Bucket",
            name,
            {
                "bucket": name,
                "tags": {**TAGS, **({"kdrill:replicate": replicate} if replicate else {})},
            },
        )
    ]
    if versioned:
        res.append(
            (
                "aws:s3/bucketVersioning:BucketVersioning",
                f"{name}-v",
                {"bucket": name, "versioningConfiguration": {"status": "Enabled"}},
            )
        )
    if sse:
        res.append(
            (
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                f"{name}-sse",
                {
                    "bucket": name,
                    "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": sse}}],
                },
            )
        )
    flags = dict.fromkeys(
        ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
    )
    if not public_blocked:
        flags["restrictPublicBuckets"] = False
    res.append(
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{name}-pab",
            {"bucket": name, **flags},
        )
    )
    if replicated:
        res.append(
            (
                "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
                f"{name}-r",
                {
                    "bucket": name,
                    "rules": [{"status": "Enabled", "destination": {"bucket": "arn:aws:s3:::x"}}],
                },
            )
        )
    return res


@pytest.mark.parametrize(
    "kwargs,expect",
    [
        ({}, None),
        ({"versioned": False}, "not versioned"),
        ({"sse": None}, "no default encryption"),
        ({"public_blocked": False}, "public access"),
        ({"replicate": "required"}, "must replicate"),
        ({"replicate": "required", "replicated": True}, None),
    ],
)
def test_bucket_hardening(kwargs, expect):
    found = violations(v.validate_buckets, stack_args(bucket_set("evidence", **kwargs)))
    if expect is None:
        assert found == []
    else:
        assert len(found) == 1 and expect in found[0] and found[0].startswith("evidence"), found


def test_bucket_settings_must_match_by_name():
    res = bucket_set("a") + [("aws:s3/bucket:Bucket", "b", {"bucket": "b", "tags": TAGS})]
    found = violations(v.validate_buckets, stack_args(res))
    assert found and all(m.startswith("b:") for m in found), found


@pytest.mark.parametrize(
    "props,problems",
    [
        ({"encrypted": True, "iops": 6000}, 0),
        ({"encrypted": False, "iops": 6000}, 1),
        ({"encrypted": True, "iops": 2000}, 1),
        ({"encrypted": False}, 2),
    ],
)
def test_wal_volumes(props, problems):
    args = resource_args(
        "aws:ebs/volume:Volume",
        {**props, "tags": {"kdrill:part": "wal-volume"}},
        "wal-0",
        config={"minWalIops": 3000},
    )
    found = violations(v.validate_wal_volumes, args)
    assert len(found) == problems and all("wal-0" in m for m in found), found


def test_wal_policy_ignores_other_volumes():
    args = resource_args("aws:ebs/volume:Volume", {"encrypted": False, "tags": {}}, "scratch")
    assert violations(v.validate_wal_volumes, args) == []


@pytest.mark.parametrize(
    "typ,props,bad",
    [
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 9092, "toPort": 9092},
            True,
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"cidrIpv4": "10.0.0.0/16", "ipProtocol": "tcp", "fromPort": 9092, "toPort": 9092},
            False,
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 443, "toPort": 443},
            False,
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"cidrIpv6": "::/0", "ipProtocol": "-1"},
            True,
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {
                "ingress": [
                    {
                        "cidrBlocks": ["0.0.0.0/0"],
                        "protocol": "tcp",
                        "fromPort": 9000,
                        "toPort": 9100,
                    }
                ]
            },
            True,
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {
                "type": "ingress",
                "cidrBlocks": ["0.0.0.0/0"],
                "protocol": "tcp",
                "fromPort": 9098,
                "toPort": 9098,
            },
            True,
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {
                "type": "egress",
                "cidrBlocks": ["0.0.0.0/0"],
                "protocol": "-1",
                "fromPort": 0,
                "toPort": 0,
            },
            False,
        ),
    ],
)
def test_no_public_kafka(typ, props, bad):
    found = violations(v.validate_no_public_kafka, resource_args(typ, props, "sg-rule"))
    assert bool(found) is bad, found
    if bad:
        assert "sg-rule" in found[0]


@pytest.mark.parametrize(
    "transit,bad",
    [
        ({"clientBroker": "TLS", "inCluster": True}, 0),
        ({"clientBroker": "TLS_PLAINTEXT", "inCluster": True}, 1),
        ({"clientBroker": "TLS", "inCluster": False}, 1),
        (None, 1),
    ],
)
def test_msk_in_transit(transit, bad):
    props = {"encryptionInfo": {"encryptionInTransit": transit}} if transit else {}
    found = violations(
        v.validate_msk_in_transit, resource_args("aws:msk/cluster:Cluster", props, "msk-p")
    )
    assert len(found) == bad and all("msk-p" in m for m in found), found


def msk(role, count, typ):
    return (
        "aws:msk/cluster:Cluster",
        f"msk-{role}",
        {
            "numberOfBrokerNodes": count,
            "brokerNodeGroupInfo": {"instanceType": typ},
            "tags": {"kdrill:region-role": role},
        },
    )


def broker(role, i, typ):
    return (
        "aws:ec2/instance:Instance",
        f"{role}-b{i}",
        {"instanceType": typ, "tags": {"kdrill:region-role": role, "kdrill:part": "broker"}},
    )


@pytest.mark.parametrize(
    "resources,bad",
    [
        ([msk("primary", 3, "kafka.m7g.large"), msk("standby", 3, "kafka.m7g.large")], False),
        ([msk("primary", 6, "kafka.m7g.large"), msk("standby", 3, "kafka.m7g.xlarge")], False),
        ([msk("primary", 6, "kafka.m7g.large"), msk("standby", 3, "kafka.m7g.large")], True),
        (
            [broker("primary", i, "m7g.2xlarge") for i in range(3)]
            + [broker("standby", i, "m7g.xlarge") for i in range(3)],
            True,
        ),
        (
            [broker("primary", i, "m7g.xlarge") for i in range(3)]
            + [broker("standby", i, "m7g.xlarge") for i in range(3)],
            False,
        ),
    ],
)
def test_standby_capacity(resources, bad):
    found = violations(v.validate_standby_capacity, stack_args(resources))
    assert bool(found) is bad, found


def test_instance_units():
    assert v.instance_units("kafka.m7g.large") == 2
    assert v.instance_units("m7g.4xlarge") == 16
    assert v.instance_units("r7g.xlarge") == 4

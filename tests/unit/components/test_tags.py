"""Cost tags: which types are taggable, the tag transform and provider default tags.

Under mocks neither providers (default tags) nor transforms run, so both mechanisms are
tested directly here; test_stacks.py checks the explicit tags on every resource.
"""

import json
from datetime import UTC, datetime

import pulumi
import pytest

from components.aws.tags import COST_TAG_KEYS, EXPIRES_AT_TAG, CostTags, is_taggable, tag_transform
from tests.unit.components.harness import AWS_STACKS, render_stack

TAGS = CostTags("d-1", "s", "o", "cc", "ephemeral", datetime(2030, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "token,taggable",
    [
        ("aws:ec2/vpc:Vpc", True),
        ("aws:s3/bucket:Bucket", True),
        ("aws:msk/cluster:Cluster", True),
        ("aws:ebs/volume:Volume", True),
        ("aws:s3/bucketVersioning:BucketVersioning", False),
        ("aws:ec2/networkAclRule:NetworkAclRule", False),
        ("aws:ec2transitgateway/instanceState:InstanceState", False),
        ("kubernetes:apps/v1:Deployment", False),
        ("pulumi:providers:aws", False),
    ],
)
def test_is_taggable_reads_the_sdk_schema(token, taggable):
    assert is_taggable(token) is taggable, token


def test_cost_tags_include_expiry_for_ephemeral():
    tags = TAGS.as_dict()
    assert set(COST_TAG_KEYS) <= set(tags)
    assert tags[EXPIRES_AT_TAG] == "2030-01-01T00:00:00Z"


def _transform_args(type_, props):
    return pulumi.ResourceTransformArgs(
        custom=True, type_=type_, name="r", props=props, opts=pulumi.ResourceOptions()
    )


def test_tag_transform_fills_missing_tags_and_keeps_explicit_ones():
    transform = tag_transform(TAGS.as_dict())
    result = transform(_transform_args("aws:ec2/vpc:Vpc", {"tags": {"owner": "explicit"}}))
    assert result is not None
    assert result.props["tags"]["owner"] == "explicit"
    assert result.props["tags"]["cost-center"] == "cc"


def test_tag_transform_leaves_untaggable_resources_alone():
    transform = tag_transform(TAGS.as_dict())
    assert transform(_transform_args("aws:s3/bucketVersioning:BucketVersioning", {})) is None


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_each_region_provider_carries_default_tags(stack):
    rendered = render_stack(stack)
    providers = rendered.of("pulumi:providers:aws")
    assert {p.name for p in providers} == {"aws-primary", "aws-standby"}
    for p in providers:
        default = p.inputs.get("defaultTags")
        if isinstance(default, str):  # providers receive JSON-encoded nested config
            default = json.loads(default)
        missing = [k for k in COST_TAG_KEYS if k not in (default or {}).get("tags", {})]
        assert not missing, f"provider {p.name} default tags lack {missing}"

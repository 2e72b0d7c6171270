"""Cost tags: what they are, which resources take them, and the two ways they are applied.

Tags are applied twice on purpose: explicitly on every taggable resource the components
create (visible in preview, in state and to the policy pack) and through the AWS
provider's `default_tags` (catches anything created outside the components). A resource
is taggable when its pulumi-aws Args class has a `tags` input; `is_taggable` reads that
from the installed SDK rather than from a hand-kept list.

The keys below are what FinOps joins the bill on; the cost model and drill engine read
them from state (see `COST_TAG_KEYS`, `ROLE_TAG`, `PART_TAG`).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import pulumi

# Keys every taggable resource carries (ephemeral stacks add EXPIRES_AT_TAG).
DRILL_ID_TAG = "kdrill:drill-id"
STACK_TAG = "kdrill:stack"
OWNER_TAG = "owner"
COST_CENTER_TAG = "cost-center"
ENVIRONMENT_TAG = "environment"
EXPIRES_AT_TAG = "kdrill:expires-at"
# Ephemeral environments (`kdrill env create`, components/local/envs.py) also carry their env
# id and creation time; their drill id is the env id (what Cost Explorer reconciliation filters).
ENV_ID_TAG = "kdrill:env-id"
CREATED_AT_TAG = "kdrill:created-at"
COST_TAG_KEYS: tuple[str, ...] = (
    DRILL_ID_TAG,
    STACK_TAG,
    OWNER_TAG,
    COST_CENTER_TAG,
    ENVIRONMENT_TAG,
)
# Descriptive keys the components add (not required by policy, used to read a stack).
ROLE_TAG = "kdrill:region-role"  # primary | standby
PART_TAG = "kdrill:part"  # e.g. broker, log-volume, wal-volume, evidence-bucket
REPLICATE_TAG = "kdrill:replicate"  # "required" on buckets that must replicate cross-region


@dataclass(frozen=True)
class CostTags:
    """The stack-wide cost tags. `as_dict` is what providers and resources receive."""

    drill_id: str
    stack: str
    owner: str
    cost_center: str
    environment: str
    expires_at: datetime | None = None
    env_id: str | None = None
    created_at: datetime | None = None

    def as_dict(self) -> dict[str, str]:
        tags = {
            DRILL_ID_TAG: self.drill_id,
            STACK_TAG: self.stack,
            OWNER_TAG: self.owner,
            COST_CENTER_TAG: self.cost_center,
            ENVIRONMENT_TAG: self.environment,
        }
        if self.expires_at is not None:
            tags[EXPIRES_AT_TAG] = self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.env_id is not None:
            tags[ENV_ID_TAG] = self.env_id
        if self.created_at is not None:
            tags[CREATED_AT_TAG] = self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return tags

    def required_keys(self) -> tuple[str, ...]:
        return COST_TAG_KEYS + ((EXPIRES_AT_TAG,) if self.expires_at is not None else ())


def with_tags(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """Base cost tags plus descriptive ones (keyword names map `region_role` -> ROLE_TAG etc.)."""
    names = {"region_role": ROLE_TAG, "part": PART_TAG, "replicate": REPLICATE_TAG}
    out = dict(base)
    for k, v in extra.items():
        out[names.get(k, k)] = v
    return out


def _class_for_token(token: str) -> type | None:
    """`aws:ec2/vpc:Vpc` -> pulumi_aws.ec2.Vpc (None when the token is not an AWS resource)."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != "aws":
        return None
    module = parts[1].split("/")[0]
    try:
        mod = importlib.import_module("pulumi_aws" if module == "index" else f"pulumi_aws.{module}")
    except ImportError:
        return None
    return getattr(mod, parts[2], None)


@functools.cache
def is_taggable(token: str) -> bool:
    """True when the pulumi-aws schema gives the resource type a `tags` input."""
    cls = _class_for_token(token)
    if cls is None or not hasattr(cls, "_internal_init"):
        return False
    return "tags" in inspect.signature(cls._internal_init).parameters


def tag_transform(tags: Mapping[str, str]) -> pulumi.ResourceTransform:
    """A stack transform that fills missing cost tags on any taggable AWS resource.

    Explicit tags win; this only adds keys a resource lacks. Register it with
    `pulumi.runtime.register_resource_transform` (the engine runs it; mocks do not).
    """

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not is_taggable(args.type_):
            return None
        props = dict(args.props)
        current = props.get("tags") or {}
        if isinstance(current, pulumi.Output):
            props["tags"] = current.apply(lambda t: {**tags, **(t or {})})
        else:
            props["tags"] = {**tags, **current}
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform

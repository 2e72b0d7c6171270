"""The Pulumi program for the AWS patterns: stack config -> providers -> PairedRegionKafka.

Stack outputs (what `drills` and the cost model read, e.g. with `pulumi stack output
--json` or the Automation API's `stack.outputs()`):

    engine, stack, costTags          the pattern and the tags the bill joins on
    regions.<primary|standby>.*      see components/aws/paired.py
    replication                      kind and its ids (replicator ARN, MM2 deployment, note)
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.config import REGION_ROLES, StackConfig, load_stack_config
from components.aws.paired import PairedRegionKafka, PairedRegionKafkaArgs
from components.aws.tags import CostTags


def cost_tags(cfg: StackConfig, stack: str) -> CostTags:
    return CostTags(
        drill_id=cfg.drill_id,
        stack=stack,
        owner=cfg.owner,
        cost_center=cfg.cost_center,
        environment=cfg.environment,
        expires_at=cfg.expires_at,
        env_id=cfg.env_id,
        created_at=cfg.created_at,
    )


def region_providers(cfg: StackConfig, tags: dict[str, str]) -> dict[str, aws.Provider]:
    """One explicit provider per region, carrying the cost tags as default tags."""
    return {
        role: aws.Provider(
            f"aws-{role}",
            region=cfg.regions.by_role(role).region,
            default_tags={"tags": tags},
        )
        for role in REGION_ROLES
    }


def build(cfg: StackConfig | None = None, stack: str | None = None) -> PairedRegionKafka:
    """Render the stack; exports what drills and cost reports need."""
    cfg = cfg or load_stack_config()
    stack = stack or pulumi.get_stack()
    tags = cost_tags(cfg, stack).as_dict()
    pair = PairedRegionKafka(
        "kdrill",
        PairedRegionKafkaArgs(
            config=cfg, stack=stack, providers=region_providers(cfg, tags), tags=tags
        ),
    )
    outputs: dict[str, Any] = {
        "engine": cfg.engine,
        "stack": stack,
        "costTags": tags,
        "regions": pair.regions,
        "replication": pair.replication,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return pair

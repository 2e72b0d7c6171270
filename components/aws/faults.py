"""The fault switch: `kdrill:faults` in stack config -> what each region renders.

The kinds, their parameters and checks are the fault registry's (components/faults);
this module only says how an AWS stack renders the ones that run on AWS:

| kind              | rendered as                                                             |
| ----------------- | ----------------------------------------------------------------------- |
| region-loss       | deny-all NACL rules on every subnet of the region (stateless: cuts live  |
|                   | Kafka connections) + self-managed brokers' InstanceState -> stopped      |
|                   | (MSK cannot be stopped: isolation only)                                  |
| region-degraded   | the same, for one AZ (`azIndex`)                                        |
| blackhole         | the endpoint service loses its allowed principals and the client        |
|                   | endpoints their ingress rule (a blocked private endpoint; the local     |
|                   | pair's `blackhole` drops the same clients' packets). Formerly           |
|                   | `endpoint-blocked`, which is now an error naming the new name           |
| fis-cross-region  | an AWS FIS experiment template (cross-region connectivity disruption,   |
|                   | time-boxed by `duration`); starting it is the drill's job — its id is   |
|                   | exported as `faults.<region>.fisExperimentTemplateId`                   |

Clearing the list renders the original graph exactly (tests/unit/components check it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.aws.config import FaultConfig, RegionRole
from components.aws.iam import assume_role_policy
from components.aws.tags import ROLE_TAG, STACK_TAG, with_tags

ROUTE_TABLE_ACTION = "aws:network:route-table-disrupt-cross-region-connectivity"
TRANSIT_GATEWAY_ACTION = "aws:network:transit-gateway-disrupt-cross-region-connectivity"


@dataclass(frozen=True)
class RegionFaults:
    """What the fault switch changes in one region."""

    isolated_azs: tuple[int, ...] = ()
    endpoint_blocked: bool = False
    fis_duration: str | None = None

    @property
    def stopped_azs(self) -> tuple[int, ...]:
        return self.isolated_azs


def plan_faults(faults: Sequence[FaultConfig], role: RegionRole) -> RegionFaults:
    """Pure: the faults config -> this region's switches."""
    azs: set[int] = set()
    blocked = False
    fis = None
    for f in faults:
        if f.region != role:
            continue
        if f.kind == "region-loss":
            azs |= {0, 1, 2}
        elif f.kind == "region-degraded":
            assert f.az_index is not None
            azs.add(f.az_index)
        elif f.kind == "blackhole":
            blocked = True
        elif f.kind == "fis-cross-region":
            fis = f.duration
    return RegionFaults(tuple(sorted(azs)), blocked, fis)


@dataclass
class CrossRegionExperimentArgs:
    """An FIS template that cuts `role`'s region off from `peer_region` for `duration`.

    Targets are found by tag (`kdrill:stack` + `kdrill:region-role`), so the template
    needs no account id and follows the subnets / transit gateways the stack owns.
    """

    role: RegionRole
    stack: str
    peer_region: str
    duration: str
    link: Literal["vpc-peering", "transit-gateway"]
    tags: Mapping[str, str]
    extra_tags: Mapping[str, str] = field(default_factory=dict)


def fis_role_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "ec2:DescribeRouteTables",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeVpcs",
                        "ec2:DescribeTransitGateways",
                        "ec2:DescribeTransitGatewayAttachments",
                        "ec2:DescribeTransitGatewayPeeringAttachments",
                        "ec2:CreateRouteTable",
                        "ec2:DeleteRouteTable",
                        "ec2:CreateRoute",
                        "ec2:AssociateRouteTable",
                        "ec2:DisassociateRouteTable",
                        "ec2:ReplaceRouteTableAssociation",
                        "ec2:CreateManagedPrefixList",
                        "ec2:DeleteManagedPrefixList",
                        "ec2:ModifyManagedPrefixList",
                        "ec2:CreateTags",
                        "ec2:DisassociateTransitGatewayRouteTable",
                        "ec2:AssociateTransitGatewayRouteTable",
                    ],
                    "Resource": "*",
                }
            ],
        }
    )


class CrossRegionExperiment(pulumi.ComponentResource):
    template_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: CrossRegionExperimentArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:CrossRegionExperiment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = with_tags(args.tags, region_role=args.role, part="fault-experiment")
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("fis.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=fis_role_policy(), opts=child)
        if args.link == "vpc-peering":
            action_id, target_key, resource_type = ROUTE_TABLE_ACTION, "Subnets", "aws:ec2:subnet"
        else:
            action_id, target_key, resource_type = (
                TRANSIT_GATEWAY_ACTION,
                "TransitGateways",
                "aws:ec2:transit-gateway",
            )
        template = aws.fis.ExperimentTemplate(
            f"{name}-template",
            description=f"kdrill {args.stack}: cut {args.role} off from {args.peer_region} for {args.duration}",
            role_arn=role.arn,
            stop_conditions=[{"source": "none"}],
            targets=[
                {
                    "name": "regionTargets",
                    "resource_type": resource_type,
                    "selection_mode": "ALL",
                    "resource_tags": [
                        {"key": STACK_TAG, "value": args.stack},
                        {"key": ROLE_TAG, "value": args.role},
                    ],
                }
            ],
            actions=[
                {
                    "name": "disruptCrossRegion",
                    "action_id": action_id,
                    "target": {"key": target_key, "value": "regionTargets"},
                    "parameters": [
                        {"key": "region", "value": args.peer_region},
                        {"key": "duration", "value": args.duration},
                    ],
                }
            ],
            tags=tags,
            opts=child,
        )
        self.template_id = template.id
        self.register_outputs({"templateId": template.id, "roleArn": role.arn})

"""The fault switch: `kdrill:faults` in stack config -> what each region renders.

The kinds, their parameters and checks are the fault registry's (components/faults);
this module only says how an AWS stack renders the ones that run on AWS:

| kind              | rendered as                                                             |
| ----------------- | ----------------------------------------------------------------------- |
| region-loss       | deny-all NACL rules on every subnet of the region (stateless: cuts live  |
|                   | Kafka connections) + self-managed brokers' InstanceState -> stopped,     |
|                   | forced (no clean shutdown, as in a lost region); MSK cannot be stopped:  |
|                   | isolation only. S3 cross-region replication is AWS's, outside the VPC:   |
|                   | it keeps running (see S3_REPLICATION_UNDER_LOSS, exported per region)    |
| region-degraded   | the same, for one AZ (`azIndex`)                                        |
| blackhole         | deny rules on the client VPCs' endpoint-subnet NACLs (stateless, so     |
|                   | open connections die too; removing principals or SG rules would leave   |
|                   | tracked flows alive). The local pair's `blackhole` drops the same       |
|                   | clients' packets. Formerly `endpoint-blocked` (now an error naming it)  |
| fis-cross-region  | AWS FIS experiment templates, time-boxed by `duration`, with a stop     |
|                   | condition (an abort alarm) and CloudWatch logging: the cross-region     |
|                   | route-table / transit-gateway action (`fisExperimentTemplateId`) and    |
|                   | the managed NACL equivalent `aws:network:disrupt-connectivity`          |
|                   | (`fisDisruptConnectivityTemplateId`). Starting one is the drill's job   |

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
DISRUPT_CONNECTIVITY_ACTION = "aws:network:disrupt-connectivity"
ABORT_METRIC = ("kdrill/Drill", "Abort")  # put a datapoint >= 1 to stop an experiment

S3_REPLICATION_UNDER_LOSS = (
    "continues: S3 cross-region replication runs in AWS's network, not the VPC, so the "
    "region-loss NACLs do not stop it; objects written before the loss keep arriving in "
    "the standby (FIS aws:s3:bucket-pause-replication would pause it)"
)


@dataclass(frozen=True)
class RegionFaults:
    """What the fault switch changes in one region."""

    isolated_azs: tuple[int, ...] = ()
    endpoint_blocked: bool = False
    fis_duration: str | None = None
    region_lost: bool = False  # the whole region: stops are forced

    @property
    def forced_stop(self) -> bool:
        return self.region_lost

    @property
    def stopped_azs(self) -> tuple[int, ...]:
        return self.isolated_azs


def plan_faults(faults: Sequence[FaultConfig], role: RegionRole) -> RegionFaults:
    """Pure: the faults config -> this region's switches."""
    azs: set[int] = set()
    blocked = False
    fis = None
    lost = False
    for f in faults:
        if f.region != role:
            continue
        if f.kind == "region-loss":
            azs |= {0, 1, 2}
            lost = True
        elif f.kind == "region-degraded":
            assert f.az_index is not None
            azs.add(f.az_index)
        elif f.kind == "blackhole":
            blocked = True
        elif f.kind == "fis-cross-region":
            fis = f.duration
    return RegionFaults(tuple(sorted(azs)), blocked, fis, lost)


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


# The route-table / transit-gateway actions' permissions (FIS actions reference,
# https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html#network-actions-reference):
# besides route tables they describe network interfaces, managed prefix lists and peering
# connections and modify gateway endpoints. Cross-checked with the managed policy
# AWSFaultInjectionSimulatorNetworkAccess (docs.aws.amazon.com/aws-managed-policy/latest/
# reference/AWSFaultInjectionSimulatorNetworkAccess.html) and Resilience Hub's multi-Region
# isolation role (resilience-hub/latest/userguide/next-gen-resilience-testing-iam-sa-multi-region-isolation.html).
FIS_NETWORK_ACTIONS = (
    "ec2:DescribeRouteTables",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeManagedPrefixLists",
    "ec2:GetManagedPrefixListEntries",
    "ec2:DescribePrefixLists",
    "ec2:DescribeTransitGateways",
    "ec2:DescribeTransitGatewayAttachments",
    "ec2:DescribeTransitGatewayPeeringAttachments",
    "ec2:CreateRouteTable",
    "ec2:DeleteRouteTable",
    "ec2:CreateRoute",
    "ec2:AssociateRouteTable",
    "ec2:DisassociateRouteTable",
    "ec2:ReplaceRouteTableAssociation",
    "ec2:ModifyVpcEndpoint",
    "ec2:CreateManagedPrefixList",
    "ec2:DeleteManagedPrefixList",
    "ec2:ModifyManagedPrefixList",
    "ec2:CreateTags",
    "ec2:DisassociateTransitGatewayRouteTable",
    "ec2:AssociateTransitGatewayRouteTable",
)
# aws:network:disrupt-connectivity clones the subnets' NACLs (AWSFaultInjectionSimulatorNetworkAccess)
FIS_NACL_ACTIONS = (
    "ec2:DescribeNetworkAcls",
    "ec2:CreateNetworkAcl",
    "ec2:CreateNetworkAclEntry",
    "ec2:DeleteNetworkAcl",
    "ec2:ReplaceNetworkAclAssociation",
)
# Experiment logging to CloudWatch Logs: FIS sends vended logs, which need these
# (https://docs.aws.amazon.com/fis/latest/userguide/monitoring-logging.html ->
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-CWL.html)
FIS_LOGGING_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def fis_role_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CrossRegionRouting",
                    "Effect": "Allow",
                    "Action": list(FIS_NETWORK_ACTIONS),
                    "Resource": "*",
                },
                {
                    "Sid": "DisruptConnectivityNacls",
                    "Effect": "Allow",
                    "Action": list(FIS_NACL_ACTIONS),
                    "Resource": "*",
                },
                {
                    "Sid": "ExperimentLogging",
                    "Effect": "Allow",
                    "Action": list(FIS_LOGGING_ACTIONS),
                    "Resource": "*",
                },
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
        # Stop condition: an alarm a drill (or a person) trips to end the experiment early.
        namespace, metric = ABORT_METRIC
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-abort",
            alarm_description=f"kdrill {args.stack}: abort the {args.role} FIS experiment",
            namespace=namespace,
            metric_name=metric,
            dimensions={"Stack": args.stack},
            statistic="Maximum",
            period=60,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            tags=tags,
            opts=child,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/kdrill/{args.stack}/{args.role}/fis",
            retention_in_days=90,
            tags=tags,
            opts=child,
        )
        common = {
            "role_arn": role.arn,
            "stop_conditions": [{"source": "aws:cloudwatch:alarm", "value": alarm.arn}],
            "log_configuration": {
                "log_schema_version": 2,
                "cloudwatch_logs_configuration": {
                    "log_group_arn": pulumi.Output.concat(logs.arn, ":*")
                },
            },
            "tags": tags,
        }
        region_tags = [
            {"key": STACK_TAG, "value": args.stack},
            {"key": ROLE_TAG, "value": args.role},
        ]
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
            targets=[
                {
                    "name": "regionTargets",
                    "resource_type": resource_type,
                    "selection_mode": "ALL",
                    "resource_tags": region_tags,
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
            **common,
            opts=child,
        )
        # The managed NACL equivalent: FIS swaps the region's subnets' NACLs for copies that
        # deny all traffic in and out (scope `all`) and restores them when the time is up.
        nacl = aws.fis.ExperimentTemplate(
            f"{name}-disrupt-connectivity",
            description=f"kdrill {args.stack}: NACL-cut {args.role} from {args.peer_region} for {args.duration}",
            targets=[
                {
                    "name": "regionSubnets",
                    "resource_type": "aws:ec2:subnet",
                    "selection_mode": "ALL",
                    "resource_tags": region_tags,
                }
            ],
            actions=[
                {
                    "name": "disruptConnectivity",
                    "action_id": DISRUPT_CONNECTIVITY_ACTION,
                    "target": {"key": "Subnets", "value": "regionSubnets"},
                    "parameters": [
                        {"key": "scope", "value": "all"},
                        {"key": "duration", "value": args.duration},
                    ],
                }
            ],
            **common,
            opts=child,
        )
        self.template_id = template.id
        self.disrupt_connectivity_template_id = nacl.id
        self.register_outputs(
            {
                "templateId": template.id,
                "disruptConnectivityTemplateId": nacl.id,
                "abortAlarmArn": alarm.arn,
                "logGroup": logs.name,
                "roleArn": role.arn,
            }
        )

"""BrokerFleet: self-managed broker instances (Apache Kafka or AutoMQ) on EC2.

One launch template per region, one instance per broker at a fixed private address,
one encrypted EBS volume per broker (the log dir, or AutoMQ's EBS WAL) attached to it,
and an `InstanceState` per broker that the fault switch turns to `stopped`. Clearing the
fault turns it back to `running`: the resource exists in both graphs, so a cleared
fault really restarts the brokers rather than forgetting them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.config import BrokerCapacity, RegionConfig, RegionRole, VolumeConfig
from components.aws.iam import assume_role_policy
from components.aws.network import broker_ip
from components.aws.tags import DRILL_ID_TAG, ENVIRONMENT_TAG, EXPIRES_AT_TAG, with_tags

# Tags that change per drill or per environment. A launch template's tag specifications
# are part of its version, and a new version would replace brokers whose private IPs are
# fixed (create-before-delete then fails on the address): such tags go on the instances,
# volumes and the template resource itself (in-place updates), never into tag specs.
VOLATILE_TAGS = (DRILL_ID_TAG, ENVIRONMENT_TAG, EXPIRES_AT_TAG)


def stable_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k not in VOLATILE_TAGS}


ROOT_VOLUME = {"volume_size": 30, "volume_type": "gp3", "encrypted": True}

DATA_DEVICE = "/dev/sdf"  # appears as /dev/nvme1n1 on Nitro instances


@dataclass(frozen=True)
class BrokerSlot:
    """Where broker `node_id` lives: AZ index, AZ name, fixed private IP."""

    node_id: int
    az_index: int
    az: str
    ip: str


def broker_slots(count: int, region: RegionConfig, subnet_cidrs: Sequence[str]) -> list[BrokerSlot]:
    """Round-robin brokers over the three AZs, each at a fixed address in its subnet."""
    return [
        BrokerSlot(
            node_id=i,
            az_index=i % 3,
            az=region.azs[i % 3],
            ip=broker_ip(subnet_cidrs[i % 3], i // 3),
        )
        for i in range(count)
    ]


EC2_ASSUME = assume_role_policy("ec2.amazonaws.com")


@dataclass
class BrokerFleetArgs:
    """role/region/tags: placement and cost tags.
    subnet_ids/subnet_cidrs/security_group_id: from RegionNetwork.
    capacity: broker count and instance type. image: AMI id or `resolve:ssm:` reference.
    volume: per-broker EBS volume, or None (AutoMQ with its WAL on S3).
    volume_part: tag value for the volume (`log-volume` or `wal-volume`).
    user_data: pure function slot -> cloud-init script (no Outputs: addresses are fixed).
    policy_statements: extra IAM statements for the instance role (plain or Output JSON).
    stopped_azs: AZ indexes whose brokers the fault switch stops.
    """

    role: RegionRole
    region: RegionConfig
    tags: Mapping[str, str]
    subnet_ids: Sequence[pulumi.Input[str]]
    subnet_cidrs: Sequence[str]
    security_group_id: pulumi.Input[str]
    capacity: BrokerCapacity
    image: str
    volume: VolumeConfig | None
    volume_part: str
    user_data: Callable[[BrokerSlot], str]
    policy: pulumi.Input[str] | None = None
    artifacts_arn: str | None = None  # s3 object ARN prefix of the staged software
    stopped_azs: Sequence[int] = ()
    force_stop: bool = False  # region loss: stop without a clean shutdown
    data_opts: pulumi.ResourceOptions | None = None  # protect / retain log volumes


class BrokerFleet(pulumi.ComponentResource):
    instance_ids: list[pulumi.Output[str]]
    slots: list[BrokerSlot]

    def __init__(
        self, name: str, args: BrokerFleetArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:BrokerFleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = with_tags(args.tags, region_role=args.role)
        self.slots = broker_slots(args.capacity.count, args.region, args.subnet_cidrs)

        role = aws.iam.Role(
            f"{name}-instance-role",
            assume_role_policy=EC2_ASSUME,
            managed_policy_arns=["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
            tags=with_tags(tags, part="broker-role"),
            opts=child,
        )
        if args.policy is not None:
            aws.iam.RolePolicy(
                f"{name}-instance-policy", role=role.id, policy=args.policy, opts=child
            )
        if args.artifacts_arn is not None:
            aws.iam.RolePolicy(
                f"{name}-artifacts-policy",
                role=role.id,
                policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["s3:GetObject"],
                                "Resource": [args.artifacts_arn],
                            }
                        ],
                    }
                ),
                opts=child,
            )
        profile = aws.iam.InstanceProfile(
            f"{name}-instance-profile",
            role=role.name,
            tags=with_tags(tags, part="broker-role"),
            opts=child,
        )
        broker_tags = with_tags(tags, part="broker")
        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            image_id=args.image,
            instance_type=args.capacity.instance_type,
            vpc_security_group_ids=[args.security_group_id],
            iam_instance_profile={"arn": profile.arn},
            ebs_optimized="true",
            metadata_options={"http_tokens": "required", "http_endpoint": "enabled"},
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {**ROOT_VOLUME, "encrypted": "true"},
                }
            ],
            tag_specifications=[
                {"resource_type": "instance", "tags": stable_tags(broker_tags)},
                {
                    "resource_type": "volume",
                    "tags": stable_tags(with_tags(tags, part="root-volume")),
                },
            ],
            update_default_version=True,
            tags=tags,
            opts=child,
        )

        self.instance_ids = []
        self.volume_ids: list[pulumi.Output[str]] = []
        for slot in self.slots:
            broker = f"{name}-broker-{slot.node_id}"
            instance = aws.ec2.Instance(
                broker,
                launch_template={"id": template.id, "version": template.latest_version.apply(str)},
                # Same as the template's; explicit so capacity is readable from the Instance.
                instance_type=args.capacity.instance_type,
                subnet_id=args.subnet_ids[slot.az_index],
                private_ip=slot.ip,
                user_data_base64=base64.b64encode(args.user_data(slot).encode()).decode(),
                user_data_replace_on_change=False,
                tags=with_tags(broker_tags, Name=broker, **{"kdrill:node-id": str(slot.node_id)}),
                root_block_device={**ROOT_VOLUME, "tags": with_tags(tags, part="root-volume")},
                # A fixed private IP cannot be held by two instances: delete first. Template
                # edits reach brokers only when they are replaced for another reason.
                opts=pulumi.ResourceOptions(
                    parent=self, delete_before_replace=True, ignore_changes=["launchTemplate"]
                ),
            )
            self.instance_ids.append(instance.id)
            if args.volume is not None:
                v = args.volume
                volume = aws.ebs.Volume(
                    f"{broker}-{args.volume_part}",
                    availability_zone=slot.az,
                    size=v.size_gib,
                    type=v.type,
                    iops=v.iops,
                    throughput=v.throughput_mibps,
                    encrypted=True,
                    tags=with_tags(
                        tags, part=args.volume_part, Name=f"{broker}-{args.volume_part}"
                    ),
                    opts=pulumi.ResourceOptions.merge(child, args.data_opts),
                )
                aws.ec2.VolumeAttachment(
                    f"{broker}-{args.volume_part}-attachment",
                    device_name=DATA_DEVICE,
                    volume_id=volume.id,
                    instance_id=instance.id,
                    stop_instance_before_detaching=True,
                    opts=child,
                )
                self.volume_ids.append(volume.id)
            aws.ec2transitgateway.InstanceState(
                f"{broker}-state",
                instance_id=instance.id,
                state="stopped" if slot.az_index in args.stopped_azs else "running",
                # force: stop like a lost region, without flushing file systems or a clean
                # shutdown (EC2 StopInstances Force)
                force=args.force_stop and slot.az_index in args.stopped_azs,
                opts=child,
            )

        self.launch_template_id = template.id
        self.register_outputs(
            {
                "instanceIds": self.instance_ids,
                "volumeIds": self.volume_ids,
                "launchTemplateId": template.id,
                "brokerIps": [s.ip for s in self.slots],
            }
        )

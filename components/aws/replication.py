"""Replication between the regions that is not MirrorMaker 2 on Kubernetes.

MskReplicator: aws.msk.Replicator in the standby region (the replicator runs in the
target's region), reading the primary MSK cluster and writing the standby, with consumer
group offset sync. Both clusters use IAM client auth, which MSK Replicator requires.

What a drill relies on, and how it is rendered (`replication_info`, a pure function the
unit tests and `kdrill run --plan` read):
- StartingPosition EARLIEST or LATEST (stack `replication.startingPosition`): where the
  Replicator starts in a topic it picks up. Fixed at creation (a change replaces it).
- TopicNameConfiguration IDENTICAL or PREFIXED_WITH_SOURCE_CLUSTER_ALIAS (stack
  `replication.topicNames`): `orders` or `<sourceKafkaClusterAlias>.orders` in the standby;
  the alias is chosen by AWS (a stack output once created). Fixed at creation too.
- ConsumerGroupReplication with SynchroniseConsumerGroupOffsets: translated offsets are
  approximate (sampled offset mappings, biased to re-reads), and written into a target
  group only while no consumer of it is active there.
- Stopped (`kdrill:replicationStopped`, set by a drill at cutover): every topic and group
  excluded (TopicsToExclude / ConsumerGroupsToExclude [".*"]), an in-place
  UpdateReplicationInfo; clearing it restores the lists. The Replicator has no pause API.

AUTOMQ_LINKING_NOTE: AutoMQ's offset-preserving Kafka Linking is a commercial-edition
feature; choosing it renders no resource, only this note as a stack output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.iam import assume_role_policy
from components.aws.tags import with_tags

AUTOMQ_LINKING_NOTE = (
    "replication kind automq-linking renders nothing: AutoMQ Kafka Linking (byte-level, "
    "offset-preserving) needs the AutoMQ commercial edition (BYOC or Software) and is set up "
    "through its console/API. Choose mirrormaker2 for an open-source pair."
)


@dataclass
class ReplicatorEnd:
    cluster_arn: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]


@dataclass
class MskReplicatorArgs:
    replicator_name: str
    source: ReplicatorEnd
    target: ReplicatorEnd
    topics: Sequence[str]
    groups: Sequence[str]
    tags: Mapping[str, str]
    starting_position: str = "earliest"  # earliest | latest (stack replication.startingPosition)
    topic_names: str = "identical"  # identical | prefixed (stack replication.topicNames)
    stopped: bool = False  # kdrill:replicationStopped: every topic and group excluded


# The managed policy AWSMSKReplicatorExecutionRole, mirrored action for action but scoped to
# the two clusters (WriteDataIdempotently is needed on both clusters):
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSMSKReplicatorExecutionRole.html
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-ser.html
REPLICATOR_CLUSTER_ACTIONS = (
    "kafka-cluster:Connect",
    "kafka-cluster:DescribeCluster",
    "kafka-cluster:AlterCluster",
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:CreateTopic",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:WriteData",
    "kafka-cluster:ReadData",
    "kafka-cluster:AlterGroup",
    "kafka-cluster:DescribeGroup",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:AlterTopicDynamicConfiguration",
    "kafka-cluster:WriteDataIdempotently",
)
REPLICATOR_TOPIC_ACTIONS = (
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:CreateTopic",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:WriteData",
    "kafka-cluster:ReadData",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:AlterTopicDynamicConfiguration",
    "kafka-cluster:AlterCluster",
)
REPLICATOR_GROUP_ACTIONS = (
    "kafka-cluster:AlterGroup",
    "kafka-cluster:DescribeGroup",
    "kafka-cluster:DeleteGroup",
)
# Explicit, not the provider's defaults (AWS's default naming is prefixed): by default
# replicate what the source already holds, and keep topic names (a drill's consumers move to
# the same topic name in the standby). Values as the API spells them (CloudFormation
# AWS::MSK::Replicator ReplicationStartingPosition / ReplicationTopicNameConfiguration).
STARTING_POSITIONS = {"earliest": "EARLIEST", "latest": "LATEST"}
TOPIC_NAME_TYPES = {"identical": "IDENTICAL", "prefixed": "PREFIXED_WITH_SOURCE_CLUSTER_ALIAS"}
STARTING_POSITION = STARTING_POSITIONS["earliest"]
TOPIC_NAMES = TOPIC_NAME_TYPES["identical"]
EVERYTHING = [".*"]


def replication_info(args: MskReplicatorArgs) -> dict:
    """The Replicator's `replication_info_list` (CreateReplicator's ReplicationInfo) for
    `args`. Stopped: every topic and consumer group excluded -- the fields
    UpdateReplicationInfo changes in place, so stopping neither replaces the Replicator nor
    loses its starting position, names or offset mappings."""
    stop = {"topics_to_excludes": EVERYTHING} if args.stopped else {}
    stop_groups = {"consumer_groups_to_excludes": EVERYTHING} if args.stopped else {}
    return {
        "source_kafka_cluster_arn": args.source.cluster_arn,
        "target_kafka_cluster_arn": args.target.cluster_arn,
        "target_compression_type": "NONE",
        "topic_replications": [
            {
                "topics_to_replicates": list(args.topics),
                **stop,
                "copy_topic_configurations": True,
                "copy_access_control_lists_for_topics": True,
                "detect_and_copy_new_topics": True,
                "starting_position": {"type": STARTING_POSITIONS[args.starting_position]},
                "topic_name_configuration": {"type": TOPIC_NAME_TYPES[args.topic_names]},
            }
        ],
        "consumer_group_replications": [
            {
                "consumer_groups_to_replicates": list(args.groups),
                **stop_groups,
                "synchronise_consumer_group_offsets": True,
                "detect_and_copy_new_consumer_groups": True,
            }
        ],
    }


def replicator_policy(
    source_arn: pulumi.Input[str], target_arn: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Cluster, topic and group permissions on both clusters (IAM client auth)."""

    def scoped(arn: str, kind: str) -> str:
        # arn:aws:kafka:<region>:<acct>:cluster/<name>/<uuid> -> .../<kind>/<name>/<uuid>/*
        return arn.replace(":cluster/", f":{kind}/", 1) + "/*"

    def doc(arns: list[str]) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ClusterPermissions",
                        "Effect": "Allow",
                        "Action": list(REPLICATOR_CLUSTER_ACTIONS),
                        "Resource": arns,
                    },
                    {
                        "Sid": "TopicPermissions",
                        "Effect": "Allow",
                        "Action": list(REPLICATOR_TOPIC_ACTIONS),
                        "Resource": [scoped(a, "topic") for a in arns],
                    },
                    {
                        "Sid": "GroupPermissions",
                        "Effect": "Allow",
                        "Action": list(REPLICATOR_GROUP_ACTIONS),
                        "Resource": [scoped(a, "group") for a in arns],
                    },
                ],
            }
        )

    return pulumi.Output.all(source_arn, target_arn).apply(doc)


def source_alias(info) -> str | None:
    """SourceKafkaClusterAlias from the Replicator's replication info (typed or plain)."""
    if type(info) is dict:  # noqa: E721 - a plain mapping, not the typed output (a dict too)
        return info.get("source_kafka_cluster_alias") or info.get("sourceKafkaClusterAlias")
    return getattr(info, "source_kafka_cluster_alias", None)


class MskReplicator(pulumi.ComponentResource):
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: MskReplicatorArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:MskReplicator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = with_tags(args.tags, part="replicator", region_role="standby")
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("kafka.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=replicator_policy(args.source.cluster_arn, args.target.cluster_arn),
            opts=child,
        )
        replicator = aws.msk.Replicator(
            f"{name}-replicator",
            replicator_name=args.replicator_name,
            description="kdrill primary -> standby",
            service_execution_role_arn=role.arn,
            kafka_clusters=[
                {
                    "amazon_msk_cluster": {"msk_cluster_arn": end.cluster_arn},
                    "vpc_config": {
                        "subnet_ids": list(end.subnet_ids),
                        "security_groups_ids": [end.security_group_id],
                    },
                }
                for end in (args.source, args.target)
            ],
            replication_info_list=replication_info(args),
            tags=tags,
            opts=child,
        )
        self.arn = replicator.arn
        # PREFIXED names replicas `<alias>.<topic>`; AWS picks the alias (DescribeReplicator's
        # SourceKafkaClusterAlias), so a drill reads it from this output.
        self.source_alias = replicator.replication_info_list.apply(source_alias)
        self.register_outputs(
            {"arn": replicator.arn, "roleArn": role.arn, "sourceClusterAlias": self.source_alias}
        )

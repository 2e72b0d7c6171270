"""MskCluster: Amazon MSK in one region — TLS in transit, encryption at rest, IAM client
auth (MSK Replicator requires IAM auth on both clusters), broker storage from config.

MSK cannot be stopped: under the region-loss fault it is isolated by the network ACLs of
RegionNetwork, never changed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.config import BrokerCapacity, RegionRole, VolumeConfig
from components.aws.network import PortRange
from components.aws.tags import with_tags

IAM_PORT = PortRange("kafka-iam", 9098, 9098)
TLS_PORT = PortRange("kafka-tls", 9094, 9094)
CLIENT_PORTS = (IAM_PORT, TLS_PORT)

SERVER_PROPERTIES = {
    "auto.create.topics.enable": "false",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
}


def server_properties(props: Mapping[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in sorted(props.items()))


@dataclass
class MskClusterArgs:
    """cluster_name: MSK name. kafka_version: an MSK-supported version (e.g. 3.9.x).
    capacity: `kafka.`-prefixed instance type and broker count (multiple of 3).
    storage: per-broker EBS size and, for gp3 above 125 MiB/s, provisioned throughput.
    """

    role: RegionRole
    cluster_name: str
    kafka_version: str
    capacity: BrokerCapacity
    storage: VolumeConfig
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    tags: Mapping[str, str]
    # A cross-region MSK Replicator reads its source over multi-VPC private connectivity,
    # turned on for IAM auth (the `unauthenticated` type is not supported with it):
    # https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-prepare-cluster.html
    multi_vpc_iam: bool = False
    # Data: kept on delete / protected outside ephemeral stacks (see paired.data_options).
    data_opts: pulumi.ResourceOptions | None = None


# MSK creates and updates take tens of minutes; the provider's defaults are too short.
MSK_TIMEOUTS = pulumi.CustomTimeouts(create="120m", update="120m", delete="60m")


class MskCluster(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    bootstrap_servers: pulumi.Output[str]

    def __init__(self, name: str, args: MskClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kdrill:aws:MskCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = with_tags(args.tags, region_role=args.role)
        kms = aws.kms.Key(
            f"{name}-kms",
            description=f"MSK encryption at rest ({args.cluster_name})",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            tags=with_tags(tags, part="msk-kms"),
            opts=child,
        )
        configuration = aws.msk.Configuration(
            f"{name}-config",
            kafka_versions=[args.kafka_version],
            server_properties=server_properties(SERVER_PROPERTIES),
            opts=child,
        )
        throughput = args.storage.throughput_mibps
        ebs_info: dict = {"volume_size": args.storage.size_gib}
        if throughput is not None and throughput > 250:
            ebs_info["provisioned_throughput"] = {"enabled": True, "volume_throughput": throughput}
        cluster = aws.msk.Cluster(
            f"{name}-cluster",
            cluster_name=args.cluster_name,
            kafka_version=args.kafka_version,
            number_of_broker_nodes=args.capacity.count,
            broker_node_group_info={
                "instance_type": args.capacity.instance_type,
                "client_subnets": list(args.subnet_ids),
                "security_groups": [args.security_group_id],
                "storage_info": {"ebs_storage_info": ebs_info},
                **(
                    {
                        "connectivity_info": {
                            "vpc_connectivity": {"client_authentication": {"sasl": {"iam": True}}}
                        }
                    }
                    if args.multi_vpc_iam
                    else {}
                ),
            },
            encryption_info={
                "encryption_at_rest_kms_key_arn": kms.arn,
                "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True},
            },
            client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
            configuration_info={
                "arn": configuration.arn,
                "revision": configuration.latest_revision,
            },
            enhanced_monitoring="PER_TOPIC_PER_BROKER",
            tags=with_tags(tags, part="msk-cluster"),
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self, custom_timeouts=MSK_TIMEOUTS), args.data_opts
            ),
        )
        self.arn = cluster.arn
        self.bootstrap_servers = cluster.bootstrap_brokers_sasl_iam
        self.register_outputs(
            {
                "arn": cluster.arn,
                "bootstrapServers": cluster.bootstrap_brokers_sasl_iam,
                "kmsKeyArn": kms.arn,
            }
        )

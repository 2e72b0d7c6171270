"""PairedRegionKafka: primary + standby regions of one engine, the link between them,
replication, private links, evidence buckets and the fault switch.

`regions` (also the stack output `regions`) is what the drill engine and the cost model
read: per region role, the bootstrap servers, bucket names, endpoint service name,
cluster/instance ids, broker count and type, NACL ids and the FIS template id if any.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws import apache, msk
from components.aws.apache import ApacheKafkaCluster, ApacheKafkaClusterArgs, ArtifactSource
from components.aws.automq import AutoMQCluster, AutoMQClusterArgs
from components.aws.config import RegionRole, StackConfig
from components.aws.faults import (
    S3_REPLICATION_UNDER_LOSS,
    CrossRegionExperiment,
    CrossRegionExperimentArgs,
    plan_faults,
)
from components.aws.interregion import AttachedVpc, InterRegionLink, InterRegionLinkArgs, LinkEnd
from components.aws.msk import MskCluster, MskClusterArgs
from components.aws.network import PortRange, RegionNetwork, RegionNetworkArgs
from components.aws.privatelink import (
    MskPrivateConnectivity,
    MskPrivateConnectivityArgs,
    PrivateLink,
    PrivateLinkArgs,
)
from components.aws.replication import (
    AUTOMQ_LINKING_NOTE,
    MskReplicator,
    MskReplicatorArgs,
    ReplicatorEnd,
)
from components.aws.storage import ReplicationTarget, SecureBucket, SecureBucketArgs
from components.aws.tags import with_tags
from components.kubernetes.mirrormaker2 import MirrorMaker2, MirrorMaker2Args


def engine_ports(engine: str) -> tuple[tuple[PortRange, ...], tuple[PortRange, ...]]:
    """(client ports, VPC-internal ports) of an engine. The PrivateLink listener is reached
    from the NLB, which lives in the VPC."""
    if engine == "msk":
        return msk.CLIENT_PORTS, ()
    return (apache.CLIENT_PORT,), (apache.CONTROLLER_PORT, apache.PRIVATELINK)


def data_options(cfg: StackConfig) -> pulumi.ResourceOptions:
    """Options for resources holding data (log volumes, MSK clusters, AutoMQ data buckets):
    kept in the account when deleted from the stack outside ephemeral stacks, and protected
    from `pulumi destroy` in production."""
    if cfg.environment == "ephemeral":
        return pulumi.ResourceOptions()
    return pulumi.ResourceOptions(retain_on_delete=True, protect=cfg.environment == "production")


def artifact_source(cfg: StackConfig, region: str) -> ArtifactSource:
    a = cfg.artifacts
    return ArtifactSource(region, a.bucket_for(region), a.prefix, a.jdk)


def zone_for(cfg: StackConfig, role: RegionRole) -> str:
    return f"{role}.{cfg.private_link.zone}"


def other(role: RegionRole) -> RegionRole:
    return "standby" if role == "primary" else "primary"


@dataclass
class PairedRegionKafkaArgs:
    """config: the validated stack config. stack: the stack name (names, tags, FIS targets).
    providers: one AWS provider per region role (each with the cost tags as default tags).
    tags: the cost tags set explicitly on every taggable resource.
    """

    config: StackConfig
    stack: str
    providers: Mapping[RegionRole, aws.Provider]
    tags: Mapping[str, str]


class PairedRegionKafka(pulumi.ComponentResource):
    regions: dict[str, dict[str, Any]]

    def __init__(
        self, name: str, args: PairedRegionKafkaArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:PairedRegionKafka", name, None, opts)
        cfg = args.config
        self._args = args
        self.regions = {}
        self.networks: dict[str, RegionNetwork] = {}
        self.engines: dict[str, Any] = {}
        evidence: dict[str, SecureBucket] = {}
        automq_buckets: dict[str, dict[str, SecureBucket]] = {}

        # The standby first: the primary's buckets replicate into the standby's.
        for role in ("standby", "primary"):
            region = cfg.regions.by_role(role)
            ropts = pulumi.ResourceOptions(parent=self, providers={"aws": args.providers[role]})
            faults = plan_faults(cfg.faults, role)
            client_ports, internal_ports = engine_ports(cfg.engine)
            allowed = {"peer": cfg.regions.by_role(other(role)).cidr, **cfg.client_cidrs}
            allowed.update(
                {c.name: c.cidr for c in cfg.private_link.client_vpcs if c.region_role == role}
            )
            k8s = cfg.replication.kubernetes
            if cfg.replication.kind == "mirrormaker2" and k8s and k8s.network:
                allowed["mirrormaker2"] = k8s.network.cidr  # MM2 reads / writes both regions
            network = RegionNetwork(
                f"{name}-{role}",
                RegionNetworkArgs(
                    role=role,
                    region=region,
                    tags=args.tags,
                    client_ports=client_ports,
                    internal_ports=internal_ports,
                    allowed_cidrs=allowed,
                    isolated_azs=faults.isolated_azs,
                    ssm_endpoints=cfg.ssm_endpoints,
                ),
                opts=ropts,
            )
            self.networks[role] = network
            replicate_evidence = role == "primary" and "evidence" in cfg.buckets.replicate
            evidence[role] = SecureBucket(
                f"{name}-{role}-evidence",
                SecureBucketArgs(
                    bucket_name=f"{cfg.bucket_prefix(args.stack)}-{region.region}-evidence",
                    purpose="evidence",
                    tags=with_role(args.tags, role),
                    noncurrent_days=cfg.buckets.noncurrent_days,
                    expire_days=cfg.buckets.evidence_days,
                    replicate_to=ReplicationTarget(evidence["standby"])
                    if replicate_evidence
                    else None,
                    replication_required=replicate_evidence,
                    force_destroy=cfg.environment == "ephemeral",
                ),
                opts=ropts,
            )
            engine = self._engine(name, role, network, automq_buckets, ropts)
            self.engines[role] = engine
            out: dict[str, Any] = {
                "region": region.region,
                "vpcId": network.vpc_id,
                "subnetIds": network.subnet_ids,
                "networkAclIds": network.network_acl_ids,
                "brokerSecurityGroupId": network.broker_security_group_id,
                "evidenceBucket": evidence[role].bucket_name,
                "bootstrapServers": engine.bootstrap_servers,
                "brokerCount": cfg.brokers.by_role(role).count,
                "instanceType": cfg.brokers.by_role(role).instance_type,
                "faults": {
                    "isolatedAzs": list(faults.isolated_azs),
                    "endpointBlocked": faults.endpoint_blocked,
                    "regionLost": faults.region_lost,
                    "forcedStop": faults.forced_stop and cfg.engine != "msk",
                    "s3Replication": S3_REPLICATION_UNDER_LOSS if faults.region_lost else None,
                },
            }
            if isinstance(engine, MskCluster):
                out["clusterArn"] = engine.arn
                MskPrivateConnectivity(
                    f"{name}-{role}-msk-connectivity",
                    MskPrivateConnectivityArgs(
                        role=role,
                        cluster_arn=engine.arn,
                        tags=args.tags,
                        allowed_principals=cfg.private_link.allowed_principals,
                        client_vpcs=[
                            c for c in cfg.private_link.client_vpcs if c.region_role == role
                        ],
                        replicator_source=role == "primary"
                        and cfg.replication.kind == "msk-replicator",
                        blocked=faults.endpoint_blocked,
                    ),
                    opts=ropts,
                )
            else:
                out["instanceIds"] = engine.fleet.instance_ids
                out["clusterId"] = engine.cluster_id
                link = PrivateLink(
                    f"{name}-{role}-privatelink",
                    PrivateLinkArgs(
                        role=role,
                        region=region.region,
                        vpc_id=network.vpc_id,
                        subnet_ids=network.subnet_ids,
                        targets=list(
                            zip(
                                [s.node_id for s in engine.fleet.slots],
                                engine.fleet.instance_ids,
                                strict=True,
                            )
                        ),
                        broker_port=apache.PRIVATELINK.from_port,
                        zone=zone_for(cfg, role),
                        tags=args.tags,
                        allowed_principals=cfg.private_link.allowed_principals,
                        client_vpcs=[
                            c for c in cfg.private_link.client_vpcs if c.region_role == role
                        ],
                        blocked=faults.endpoint_blocked,
                    ),
                    opts=ropts,
                )
                out["endpointServiceName"] = link.service_name
                out["endpointServiceId"] = link.service_id
            if isinstance(engine, AutoMQCluster):
                out["dataBucket"] = engine.buckets["data"].bucket_name
                out["opsBucket"] = engine.buckets["ops"].bucket_name
            if faults.fis_duration is not None:
                experiment = CrossRegionExperiment(
                    f"{name}-{role}-fis",
                    CrossRegionExperimentArgs(
                        role=role,
                        stack=args.stack,
                        peer_region=cfg.regions.by_role(other(role)).region,
                        duration=faults.fis_duration,
                        link=cfg.inter_region,
                        tags=args.tags,
                    ),
                    opts=ropts,
                )
                out["faults"]["fisExperimentTemplateId"] = experiment.template_id
                out["faults"]["fisDisruptConnectivityTemplateId"] = (
                    experiment.disrupt_connectivity_template_id
                )
            self.regions[role] = out

        self.link = InterRegionLink(
            f"{name}-link",
            InterRegionLinkArgs(
                kind=cfg.inter_region,
                primary=self._link_end("primary"),
                standby=self._link_end("standby"),
                tags=args.tags,
                attached=self._attached_vpc(),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.replication = self._replication(name)
        self.register_outputs({"regions": self.regions, "replication": self.replication})

    def _link_end(self, role: RegionRole) -> LinkEnd:
        net = self.networks[role]
        return LinkEnd(
            provider=self._args.providers[role],
            region=self._args.config.regions.by_role(role).region,
            vpc_id=net.vpc_id,
            cidr=self._args.config.regions.by_role(role).cidr,
            route_table_id=net.route_table_id,
            subnet_ids=net.subnet_ids,
        )

    def _attached_vpc(self) -> AttachedVpc | None:
        """MirrorMaker 2's Kubernetes VPC, attached to its region's transit gateway so its
        traffic to the other region takes the stack's inter-region link."""
        cfg = self._args.config
        k8s = cfg.replication.kubernetes
        if cfg.replication.kind != "mirrormaker2" or k8s is None or k8s.network is None:
            return None
        n = k8s.network
        return AttachedVpc(
            name="mirrormaker2",
            region_role=n.region_role,
            vpc_id=n.vpc_id,
            cidr=n.cidr,
            subnet_ids=list(n.subnet_ids),
            route_table_ids=list(n.route_table_ids),
        )

    def _engine(
        self,
        name: str,
        role: RegionRole,
        network: RegionNetwork,
        automq_buckets: dict[str, dict[str, SecureBucket]],
        ropts: pulumi.ResourceOptions,
    ) -> Any:
        cfg, stack = self._args.config, self._args.stack
        region = cfg.regions.by_role(role)
        capacity = cfg.brokers.by_role(role)
        plan = plan_faults(cfg.faults, role)
        stopped = plan.stopped_azs
        tags = with_role(self._args.tags, role)
        source = artifact_source(cfg, region.region)
        zone = zone_for(cfg, role)
        if cfg.engine == "msk":
            return MskCluster(
                f"{name}-{role}-msk",
                MskClusterArgs(
                    role=role,
                    cluster_name=f"{stack}-{role}"[:64],
                    kafka_version=cfg.brokers.kafka_version,
                    capacity=capacity,
                    storage=cfg.storage,
                    subnet_ids=network.subnet_ids,
                    security_group_id=network.broker_security_group_id,
                    tags=tags,
                    multi_vpc_iam=role == "primary" and cfg.replication.kind == "msk-replicator",
                    data_opts=data_options(cfg),
                ),
                opts=ropts,
            )
        if cfg.engine == "apache":
            return ApacheKafkaCluster(
                f"{name}-{role}-kafka",
                ApacheKafkaClusterArgs(
                    role=role,
                    region=region,
                    cluster_seed=f"{stack}/{role}",
                    kafka_version=cfg.brokers.kafka_version,
                    capacity=capacity,
                    storage=cfg.storage,
                    image=cfg.brokers.image,
                    subnet_ids=network.subnet_ids,
                    subnet_cidrs=network.subnet_cidrs,
                    security_group_id=network.broker_security_group_id,
                    tags=tags,
                    artifacts=source,
                    zone=zone,
                    stopped_azs=stopped,
                    force_stop=plan.forced_stop,
                    data_opts=data_options(cfg),
                ),
                opts=ropts,
            )
        assert cfg.automq is not None
        prefix = f"{cfg.bucket_prefix(stack)}-{region.region}"
        replicate = (
            [p for p in ("data", "ops") if p in cfg.buckets.replicate] if role == "primary" else []
        )
        cluster = AutoMQCluster(
            f"{name}-{role}-automq",
            AutoMQClusterArgs(
                role=role,
                region=region,
                cluster_seed=f"{stack}/{role}",
                automq=cfg.automq,
                capacity=capacity,
                wal_volume=cfg.storage,
                image=cfg.brokers.image,
                subnet_ids=network.subnet_ids,
                subnet_cidrs=network.subnet_cidrs,
                security_group_id=network.broker_security_group_id,
                tags=tags,
                kafka_version=cfg.brokers.kafka_version,
                artifacts=source,
                zone=zone,
                force_stop=plan.forced_stop,
                data_opts=data_options(cfg),
                data_bucket_name=f"{prefix}-automq-data",
                ops_bucket_name=f"{prefix}-automq-ops",
                noncurrent_days=min(cfg.buckets.noncurrent_days, 7),
                replicate_to={p: automq_buckets["standby"][p] for p in replicate},
                replication_required=replicate,
                force_destroy=cfg.environment == "ephemeral",
                stopped_azs=stopped,
            ),
            opts=ropts,
        )
        automq_buckets[role] = cluster.buckets
        return cluster

    def _replication(self, name: str) -> dict[str, Any]:
        cfg = self._args.config
        rep = cfg.replication
        primary, standby = self.engines["primary"], self.engines["standby"]
        if rep.kind == "msk-replicator":
            replicator = MskReplicator(
                f"{name}-replicator",
                MskReplicatorArgs(
                    replicator_name=f"{self._args.stack}-p2s"[:64],
                    source=self._replicator_end("primary"),
                    target=self._replicator_end("standby"),
                    topics=rep.topics,
                    groups=rep.groups,
                    tags=self._args.tags,
                    starting_position=rep.starting_position or "earliest",
                    topic_names=rep.topic_names or "identical",
                    stopped=cfg.replication_stopped,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, providers={"aws": self._args.providers["standby"]}
                ),
            )
            return {
                "kind": rep.kind,
                "replicatorArn": replicator.arn,
                "sourceClusterAlias": replicator.source_alias,
            }
        if rep.kind == "mirrormaker2":
            assert rep.kubernetes is not None
            k = rep.kubernetes
            mm2 = MirrorMaker2(
                f"{name}-mm2",
                MirrorMaker2Args(
                    context=k.context,
                    namespace=k.namespace,
                    image=k.image,
                    replicas=0 if cfg.replication_stopped else k.replicas,
                    kubeconfig=k.kubeconfig,
                    primary_bootstrap=primary.bootstrap_servers,
                    standby_bootstrap=standby.bootstrap_servers,
                    topics=rep.topics,
                    groups=rep.groups,
                    labels=self._args.tags,
                    security=MSK_IAM_CLIENT if cfg.engine == "msk" else None,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            return {"kind": rep.kind, "namespace": mm2.namespace, "deployment": mm2.deployment_name}
        if rep.kind == "automq-linking":
            pulumi.log.warn(AUTOMQ_LINKING_NOTE, resource=self)
            return {"kind": rep.kind, "note": AUTOMQ_LINKING_NOTE}
        return {"kind": "none"}

    def _replicator_end(self, role: RegionRole) -> ReplicatorEnd:
        return ReplicatorEnd(
            cluster_arn=self.engines[role].arn,
            subnet_ids=self.networks[role].subnet_ids,
            security_group_id=self.networks[role].broker_security_group_id,
        )


MSK_IAM_CLIENT = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "AWS_MSK_IAM",
    "sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
}


def with_role(tags: Mapping[str, str], role: RegionRole) -> dict[str, str]:
    return with_tags(tags, region_role=role)

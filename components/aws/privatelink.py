"""PrivateLink: an endpoint service (internal NLB) in front of self-managed brokers, an
interface endpoint in each client VPC of the region, and a private hosted zone there that
names each broker.

Kafka clients reach every broker individually after bootstrap, at the address the broker
advertises, so each broker gets (AWS's pattern for Kafka behind PrivateLink, one NLB
listener per broker:
https://aws.amazon.com/blogs/big-data/secure-connectivity-patterns-to-access-amazon-msk-across-aws-regions/):

    advertised  PRIVATELINK://b<N>.<zone>:<BROKER_PORT_BASE + N>
    zone record b<N>.<zone> CNAME -> the client VPC's interface endpoint (private hosted zone)
    NLB         listener BROKER_PORT_BASE + N -> target group -> broker N, port PRIVATELINK_PORT

The `blackhole` fault (formerly `endpoint-blocked`) is a stateless network-ACL deny on the
client VPCs' endpoint subnets (`privateLink.clientVpcs[].networkAclId`): unlike removing
allowed principals or security-group rules, which leaves tracked flows alive, a NACL drops
the packets of connections already open. NACLs apply at subnet boundaries only, so the
endpoint subnets must not also hold the clients.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.config import ClientVpc, RegionRole
from components.aws.tags import with_tags

BROKER_PORT_BASE = 9100
PRIVATELINK_PORT = 9094  # the brokers' PRIVATELINK listener, reached from the NLB
MSK_VPC_CONNECTION_PORTS = (14001, 14100)  # MSK multi-VPC connectivity listener range
BLACKHOLE_RULE = 1  # evaluated before any allow rule of the client's NACL
ANYWHERE = "0.0.0.0/0"


def broker_endpoint(node_id: int, zone: str) -> tuple[str, int]:
    """The address broker `node_id` advertises for PrivateLink clients."""
    return f"b{node_id}.{zone}", BROKER_PORT_BASE + node_id


def blackhole_rules(
    parent: pulumi.Resource, name: str, client: ClientVpc, ports: tuple[int, int]
) -> None:
    """The `blackhole` fault on one client VPC: deny the endpoint ports inbound and all
    traffic back to the clients outbound, on the endpoint subnets' network ACL."""
    assert client.network_acl_id is not None  # config validation requires it with blackhole
    child = pulumi.ResourceOptions(parent=parent)
    for suffix, egress, proto, lo, hi in (
        ("in", False, "tcp", ports[0], ports[1]),
        ("out", True, "-1", 0, 0),
    ):
        aws.ec2.NetworkAclRule(
            f"{name}-blackhole-{suffix}",
            network_acl_id=client.network_acl_id,
            rule_number=BLACKHOLE_RULE,
            egress=egress,
            rule_action="deny",
            cidr_block=client.cidr,
            protocol=proto,
            from_port=lo,
            to_port=hi,
            opts=child,
        )


@dataclass
class PrivateLinkArgs:
    """targets: (node id, instance id) per broker; broker_port: the brokers' PRIVATELINK
    listener port. zone: the private hosted zone naming the brokers in client VPCs.
    allowed_principals: IAM principals allowed to create endpoints to the service.
    client_vpcs: client VPCs of this region that get an interface endpoint.
    blocked: the `blackhole` fault.
    """

    role: RegionRole
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    targets: Sequence[tuple[int, pulumi.Input[str]]]
    broker_port: int
    zone: str
    tags: Mapping[str, str]
    allowed_principals: Sequence[str] = ()
    client_vpcs: Sequence[ClientVpc] = ()
    blocked: bool = False


class PrivateLink(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    service_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: PrivateLinkArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:PrivateLink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = with_tags(args.tags, region_role=args.role, part="private-link")
        nlb = aws.lb.LoadBalancer(
            f"{name}-nlb",
            load_balancer_type="network",
            internal=True,
            subnets=list(args.subnet_ids),
            enable_cross_zone_load_balancing=True,
            tags=tags,
            opts=child,
        )
        for node_id, instance_id in args.targets:
            _, port = broker_endpoint(node_id, args.zone)
            tg = aws.lb.TargetGroup(
                f"{name}-b{node_id}-tg",
                port=args.broker_port,
                protocol="TCP",
                target_type="instance",
                vpc_id=args.vpc_id,
                health_check={"protocol": "TCP", "port": str(args.broker_port)},
                tags=tags,
                opts=child,
            )
            aws.lb.TargetGroupAttachment(
                f"{name}-b{node_id}-target",
                target_group_arn=tg.arn,
                target_id=instance_id,
                port=args.broker_port,
                opts=child,
            )
            aws.lb.Listener(
                f"{name}-b{node_id}-listener",
                load_balancer_arn=nlb.arn,
                port=port,
                protocol="TCP",
                default_actions=[{"type": "forward", "target_group_arn": tg.arn}],
                tags=tags,
                opts=child,
            )
        service = aws.ec2.VpcEndpointService(
            f"{name}-service",
            acceptance_required=False,
            network_load_balancer_arns=[nlb.arn],
            allowed_principals=list(args.allowed_principals),
            tags=tags,
            opts=child,
        )
        self.service_name = service.service_name
        self.service_id = service.id

        self.endpoint_ids: dict[str, pulumi.Output[str]] = {}
        ports = (BROKER_PORT_BASE, BROKER_PORT_BASE + max((n for n, _ in args.targets), default=0))
        for client in args.client_vpcs:
            cname = f"{name}-{client.name}"
            sg = client_security_group(self, f"{cname}-endpoint", client, ports, tags)
            endpoint = aws.ec2.VpcEndpoint(
                f"{cname}-endpoint",
                vpc_id=client.vpc_id,
                service_name=service.service_name,
                vpc_endpoint_type="Interface",
                subnet_ids=list(client.subnet_ids),
                security_group_ids=[sg.id],
                private_dns_enabled=False,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[service]),
            )
            self.endpoint_ids[client.name] = endpoint.id
            zone = aws.route53.Zone(
                f"{cname}-zone",
                name=args.zone,
                comment=f"kdrill brokers of {args.role} via PrivateLink",
                vpcs=[{"vpc_id": client.vpc_id, "vpc_region": args.region}],
                tags=tags,
                opts=child,
            )
            endpoint_dns = endpoint.dns_entries.apply(lambda e: e[0].dns_name)
            for node_id, _ in args.targets:
                host, _ = broker_endpoint(node_id, args.zone)
                aws.route53.Record(
                    f"{cname}-b{node_id}-record",
                    zone_id=zone.zone_id,
                    name=host,
                    type="CNAME",
                    ttl=60,
                    records=[endpoint_dns],
                    opts=child,
                )
            if args.blocked:
                blackhole_rules(self, cname, client, ports)

        self.register_outputs(
            {
                "serviceName": service.service_name,
                "serviceId": service.id,
                "nlbArn": nlb.arn,
                "endpointIds": self.endpoint_ids,
                "zone": args.zone,
            }
        )


def client_security_group(
    parent: pulumi.Resource,
    name: str,
    client: ClientVpc,
    ports: tuple[int, int],
    tags: Mapping[str, str],
) -> aws.ec2.SecurityGroup:
    """The security group of a client VPC's endpoint: the client's CIDR on `ports`."""
    child = pulumi.ResourceOptions(parent=parent)
    sg = aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=client.vpc_id,
        description=f"kdrill endpoint for {client.name}",
        tags=tags,
        opts=child,
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-ingress",
        security_group_id=sg.id,
        ip_protocol="tcp",
        from_port=ports[0],
        to_port=ports[1],
        cidr_ipv4=client.cidr,
        description=f"Kafka via PrivateLink from {client.name}",
        tags=tags,
        opts=child,
    )
    return sg


@dataclass
class MskPrivateConnectivityArgs:
    """MSK's own PrivateLink (multi-VPC private connectivity): a cluster policy naming the
    allowed principals (and the MSK service principal when this cluster is a cross-region
    replicator's source), and a managed VPC connection per client VPC (IAM auth)."""

    role: RegionRole
    cluster_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    allowed_principals: Sequence[str] = ()
    client_vpcs: Sequence[ClientVpc] = ()
    replicator_source: bool = False
    blocked: bool = False


# A cross-region MSK Replicator's source cluster must let the service principal call these:
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-replicator-network-reqs.html
REPLICATOR_SOURCE_ACTIONS = (
    "kafka:CreateVpcConnection",
    "kafka:GetBootstrapBrokers",
    "kafka:DescribeClusterV2",
)
# Cross-account clients (mvpc-cluster-owner-action-policy.html):
CLIENT_ACTIONS = (
    "kafka:CreateVpcConnection",
    "kafka:GetBootstrapBrokers",
    "kafka:DescribeCluster",
    "kafka:DescribeClusterV2",
)


def msk_cluster_statements(
    cluster_arn: str, principals: Sequence[str], replicator_source: bool
) -> list[dict]:
    statements = []
    if principals:
        statements.append(
            {
                "Sid": "ClientVpcConnections",
                "Effect": "Allow",
                "Principal": {"AWS": list(principals)},
                "Action": list(CLIENT_ACTIONS),
                "Resource": cluster_arn,
            }
        )
    if replicator_source:
        statements.append(
            {
                "Sid": "MskReplicatorSource",
                "Effect": "Allow",
                "Principal": {"Service": "kafka.amazonaws.com"},
                "Action": list(REPLICATOR_SOURCE_ACTIONS),
                "Resource": cluster_arn,
            }
        )
    return statements


def msk_cluster_policy(
    cluster_arn: pulumi.Input[str], principals: Sequence[str], replicator_source: bool = False
) -> pulumi.Output[str]:
    return pulumi.Output.from_input(cluster_arn).apply(
        lambda arn: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": msk_cluster_statements(arn, principals, replicator_source),
            }
        )
    )


class MskPrivateConnectivity(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        args: MskPrivateConnectivityArgs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kdrill:aws:MskPrivateConnectivity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = with_tags(args.tags, region_role=args.role, part="private-link")
        principals = list(args.allowed_principals)
        policy_id: pulumi.Output[str] | None = None
        depends: list[pulumi.Resource] = []
        # AWS rejects a cluster policy whose Statement is empty: no statements, no policy.
        if principals or args.replicator_source:
            policy = aws.msk.ClusterPolicy(
                f"{name}-cluster-policy",
                cluster_arn=args.cluster_arn,
                policy=msk_cluster_policy(args.cluster_arn, principals, args.replicator_source),
                opts=child,
            )
            policy_id, depends = policy.id, [policy]
        self.connection_arns: dict[str, pulumi.Output[str]] = {}
        for client in args.client_vpcs:
            sg = client_security_group(
                self, f"{name}-{client.name}-connection", client, MSK_VPC_CONNECTION_PORTS, tags
            )
            conn = aws.msk.VpcConnection(
                f"{name}-{client.name}-connection",
                authentication="SASL_IAM",
                client_subnets=list(client.subnet_ids),
                security_groups=[sg.id],
                target_cluster_arn=args.cluster_arn,
                vpc_id=client.vpc_id,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
            self.connection_arns[client.name] = conn.arn
            if args.blocked:
                blackhole_rules(self, f"{name}-{client.name}", client, MSK_VPC_CONNECTION_PORTS)
        self.register_outputs(
            {"clusterPolicyId": policy_id, "connectionArns": self.connection_arns}
        )

"""PrivateLink: an endpoint service (internal NLB) in front of self-managed brokers, and an
interface endpoint in each client VPC of the region.

Each broker gets its own NLB listener port (`BROKER_PORT_BASE + node id`) forwarding to
its Kafka port, because Kafka clients must reach each broker individually after
bootstrap. The `blackhole` fault (formerly `endpoint-blocked`) removes the service's
allowed principals and the client endpoints' ingress rule: existing endpoints stop
passing traffic, new ones cannot connect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.config import ClientVpc, RegionRole
from components.aws.tags import with_tags

BROKER_PORT_BASE = 9100
MSK_VPC_CONNECTION_PORTS = (14001, 14100)  # MSK multi-VPC connectivity listener range


@dataclass
class PrivateLinkArgs:
    """targets: (node id, instance id) per broker; broker_port: the Kafka listener port.
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
            port = BROKER_PORT_BASE + node_id
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
            allowed_principals=[] if args.blocked else list(args.allowed_principals),
            tags=tags,
            opts=child,
        )
        self.service_name = service.service_name
        self.service_id = service.id

        self.endpoint_ids: dict[str, pulumi.Output[str]] = {}
        ports = (BROKER_PORT_BASE, BROKER_PORT_BASE + max((n for n, _ in args.targets), default=0))
        for client in args.client_vpcs:
            sg = client_security_group(
                self, f"{name}-{client.name}-endpoint", client, ports, tags, args.blocked
            )
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-{client.name}-endpoint",
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

        self.register_outputs(
            {
                "serviceName": service.service_name,
                "serviceId": service.id,
                "nlbArn": nlb.arn,
                "endpointIds": self.endpoint_ids,
            }
        )


def client_security_group(
    parent: pulumi.Resource,
    name: str,
    client: ClientVpc,
    ports: tuple[int, int],
    tags: Mapping[str, str],
    blocked: bool,
) -> aws.ec2.SecurityGroup:
    """The security group of a client VPC's endpoint; its one ingress rule (the client's
    CIDR on `ports`) is what the `blackhole` fault removes."""
    child = pulumi.ResourceOptions(parent=parent)
    sg = aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=client.vpc_id,
        description=f"kdrill endpoint for {client.name}",
        tags=tags,
        opts=child,
    )
    if not blocked:
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
    allowed principals, and a managed VPC connection per client VPC (IAM auth)."""

    role: RegionRole
    cluster_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    allowed_principals: Sequence[str] = ()
    client_vpcs: Sequence[ClientVpc] = ()
    blocked: bool = False


def msk_cluster_policy(
    cluster_arn: pulumi.Input[str], principals: Sequence[str]
) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": list(principals)},
                    "Action": [
                        "kafka:CreateVpcConnection",
                        "kafka:GetBootstrapBrokers",
                        "kafka:DescribeCluster",
                        "kafka:DescribeClusterV2",
                    ],
                    "Resource": cluster_arn,
                }
            ]
            if principals
            else [],
        }
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
        principals = [] if args.blocked else list(args.allowed_principals)
        policy = aws.msk.ClusterPolicy(
            f"{name}-cluster-policy",
            cluster_arn=args.cluster_arn,
            policy=msk_cluster_policy(args.cluster_arn, principals),
            opts=child,
        )
        self.connection_arns: dict[str, pulumi.Output[str]] = {}
        for client in args.client_vpcs:
            sg = client_security_group(
                self,
                f"{name}-{client.name}-connection",
                client,
                MSK_VPC_CONNECTION_PORTS,
                tags,
                args.blocked,
            )
            conn = aws.msk.VpcConnection(
                f"{name}-{client.name}-connection",
                authentication="SASL_IAM",
                client_subnets=list(client.subnet_ids),
                security_groups=[sg.id],
                target_cluster_arn=args.cluster_arn,
                vpc_id=client.vpc_id,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
            )
            self.connection_arns[client.name] = conn.arn
        self.register_outputs(
            {"clusterPolicyId": policy.id, "connectionArns": self.connection_arns}
        )

"""RegionNetwork: one region's VPC, private subnets, network ACLs, broker security group
and S3 gateway endpoint.

Region loss is rendered here: security-group changes do not cut established Kafka
connections (SGs are stateful), so an isolated subnet gets stateless network-ACL deny
rules ahead of every allow rule, which drop live flows too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws.config import RegionConfig, RegionRole
from components.aws.tags import with_tags

SUBNET_PREFIX = 22
ALL_TRAFFIC = "-1"
ANYWHERE = "0.0.0.0/0"
# NACL rule numbers: deny rules of a fault come first; allows follow.
FAULT_DENY_RULE = 1
ALLOW_VPC_RULE = 100
ALLOW_NAMED_RULE = 110
ALLOW_EPHEMERAL_RULE = 200
SSM_SERVICES = ("ssm", "ssmmessages", "ec2messages")


def private_subnet_cidrs(vpc_cidr: str, count: int = 3) -> list[str]:
    """The first `count` /22 blocks of the VPC CIDR (one private subnet per AZ)."""
    subnets = ipaddress.ip_network(vpc_cidr).subnets(new_prefix=SUBNET_PREFIX)
    return [str(next(subnets)) for _ in range(count)]


def broker_ip(subnet_cidr: str, index_in_subnet: int) -> str:
    """A fixed private address for a broker (.10, .11, ... of its subnet).

    Fixed addresses let KRaft quorum voters and bootstrap servers be written into user
    data as plain strings, without creating anything inside an `.apply`.
    """
    return str(ipaddress.ip_network(subnet_cidr).network_address + 10 + index_in_subnet)


@dataclass
class PortRange:
    name: str
    from_port: int
    to_port: int


@dataclass
class RegionNetworkArgs:
    """Inputs of one region's network.

    role: primary or standby (tags and names). region: CIDR and three AZs.
    client_ports: Kafka listener ports opened to `allowed_cidrs` / `allowed_security_groups`.
    internal_ports: ports only the VPC itself may reach (KRaft controller quorum).
    allowed_cidrs: named CIDRs (peer region, client networks); never 0.0.0.0/0.
    allowed_security_groups: named security-group ids in this region (e.g. replicators).
    isolated_azs: AZ indexes whose subnets get deny-all NACL rules (the fault switch).
    """

    role: RegionRole
    region: RegionConfig
    tags: Mapping[str, str]
    client_ports: Sequence[PortRange]
    internal_ports: Sequence[PortRange] = ()
    allowed_cidrs: Mapping[str, str] = field(default_factory=dict)
    allowed_security_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    isolated_azs: Sequence[int] = ()
    ssm_endpoints: bool = False  # interface endpoints for Session Manager (no internet route)


class RegionNetwork(pulumi.ComponentResource):
    """VPC across three AZs with private subnets only; Kafka reachable only from named sources."""

    vpc_id: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    subnet_cidrs: list[str]
    route_table_id: pulumi.Output[str]
    broker_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: RegionNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:RegionNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = with_tags(args.tags, region_role=args.role)
        for cidr_name, cidr in args.allowed_cidrs.items():
            if ipaddress.ip_network(cidr).prefixlen == 0:
                raise ValueError(
                    f"{name}: allowed CIDR {cidr_name}={cidr} would open Kafka to anyone"
                )

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.region.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=with_tags(tags, Name=f"{name}-vpc"),
            opts=child,
        )
        self.vpc_id = vpc.id
        self.subnet_cidrs = private_subnet_cidrs(args.region.cidr)

        route_table = aws.ec2.RouteTable(
            f"{name}-private-rt",
            vpc_id=vpc.id,
            tags=with_tags(tags, Name=f"{name}-private"),
            opts=child,
        )
        self.route_table_id = route_table.id

        subnets = []
        self.network_acl_ids: list[pulumi.Output[str]] = []
        for i, (az, cidr) in enumerate(zip(args.region.azs, self.subnet_cidrs, strict=True)):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags=with_tags(tags, Name=f"{name}-private-{az}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=child,
            )
            acl = self._network_acl(
                f"{name}-private-{i}", vpc.id, subnet.id, args, tags, i in args.isolated_azs
            )
            subnets.append(subnet)
            self.network_acl_ids.append(acl.id)
        self.subnet_ids = [s.id for s in subnets]

        sg = aws.ec2.SecurityGroup(
            f"{name}-brokers-sg",
            vpc_id=vpc.id,
            description=f"Kafka brokers ({args.role}): listener ports from named sources only",
            tags=with_tags(tags, Name=f"{name}-brokers"),
            opts=child,
        )
        self.broker_security_group_id = sg.id
        sources = {"vpc": args.region.cidr, **args.allowed_cidrs}
        for port in args.client_ports:
            for src_name, cidr in sources.items():
                self._ingress(f"{name}-{port.name}-from-{src_name}", sg.id, port, tags, cidr=cidr)
            for src_name, sg_id in args.allowed_security_groups.items():
                self._ingress(f"{name}-{port.name}-from-{src_name}", sg.id, port, tags, sg=sg_id)
        for port in args.internal_ports:
            self._ingress(f"{name}-{port.name}-from-vpc", sg.id, port, tags, cidr=args.region.cidr)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-brokers-egress",
            security_group_id=sg.id,
            ip_protocol=ALL_TRAFFIC,
            cidr_ipv4=ANYWHERE,
            description="brokers reach S3 (gateway endpoint), the peer region and VPC endpoints",
            tags=tags,
            opts=child,
        )

        s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3-gateway",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[route_table.id],
            tags=with_tags(tags, Name=f"{name}-s3"),
            opts=child,
        )
        self.s3_endpoint_id = s3_endpoint.id
        if args.ssm_endpoints:
            self._ssm_endpoints(name, vpc.id, args, tags)

        self.register_outputs(
            {
                "vpcId": vpc.id,
                "subnetIds": self.subnet_ids,
                "routeTableId": route_table.id,
                "brokerSecurityGroupId": sg.id,
                "networkAclIds": self.network_acl_ids,
                "s3EndpointId": s3_endpoint.id,
            }
        )

    def _ssm_endpoints(
        self, name: str, vpc_id: pulumi.Input[str], args: RegionNetworkArgs, tags: Mapping[str, str]
    ) -> None:
        """Session Manager without internet access needs interface endpoints for ssm,
        ssmmessages and ec2messages, reachable on 443 from the instances
        (https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html)."""
        child = pulumi.ResourceOptions(parent=self)
        sg = aws.ec2.SecurityGroup(
            f"{name}-ssm-sg",
            vpc_id=vpc_id,
            description=f"SSM endpoints ({args.role}): HTTPS from the VPC",
            tags=with_tags(tags, Name=f"{name}-ssm"),
            opts=child,
        )
        self._ingress(
            f"{name}-ssm-https-from-vpc", sg.id, PortRange("https", 443, 443), tags,
            cidr=args.region.cidr,
        )  # fmt: skip
        for service in SSM_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=vpc_id,
                service_name=f"com.amazonaws.{args.region.region}.{service}",
                vpc_endpoint_type="Interface",
                subnet_ids=self.subnet_ids,
                security_group_ids=[sg.id],
                private_dns_enabled=True,
                tags=with_tags(tags, Name=f"{name}-{service}"),
                opts=child,
            )

    def _ingress(
        self,
        rule_name: str,
        sg_id: pulumi.Input[str],
        port: PortRange,
        tags: Mapping[str, str],
        cidr: str | None = None,
        sg: pulumi.Input[str] | None = None,
    ) -> aws.vpc.SecurityGroupIngressRule:
        return aws.vpc.SecurityGroupIngressRule(
            rule_name,
            security_group_id=sg_id,
            ip_protocol="tcp",
            from_port=port.from_port,
            to_port=port.to_port,
            cidr_ipv4=cidr,
            referenced_security_group_id=sg,
            description=rule_name,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _network_acl(
        self,
        acl_name: str,
        vpc_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        args: RegionNetworkArgs,
        tags: Mapping[str, str],
        isolated: bool,
    ) -> aws.ec2.NetworkAcl:
        child = pulumi.ResourceOptions(parent=self)
        acl = aws.ec2.NetworkAcl(
            f"{acl_name}-nacl",
            vpc_id=vpc_id,
            subnet_ids=[subnet_id],
            tags=with_tags(tags, Name=f"{acl_name}-nacl"),
            opts=child,
        )

        def rule(
            suffix: str, number: int, egress: bool, action: str, cidr: str, **ports: int
        ) -> None:
            aws.ec2.NetworkAclRule(
                f"{acl_name}-{suffix}",
                network_acl_id=acl.id,
                rule_number=number,
                egress=egress,
                rule_action=action,
                cidr_block=cidr,
                protocol="tcp" if ports else ALL_TRAFFIC,
                from_port=ports.get("from_port", 0),
                to_port=ports.get("to_port", 0),
                opts=child,
            )

        if isolated:  # fault switch: region loss / degraded AZ
            rule("fault-deny-in", FAULT_DENY_RULE, False, "deny", ANYWHERE)
            rule("fault-deny-out", FAULT_DENY_RULE, True, "deny", ANYWHERE)
        rule("allow-vpc-in", ALLOW_VPC_RULE, False, "allow", args.region.cidr)
        for n, (src_name, cidr) in enumerate(sorted(args.allowed_cidrs.items())):
            rule(f"allow-{src_name}-in", ALLOW_NAMED_RULE + n, False, "allow", cidr)
        # Return traffic of connections the brokers open (S3, package mirrors).
        rule(
            "allow-ephemeral-in",
            ALLOW_EPHEMERAL_RULE,
            False,
            "allow",
            ANYWHERE,
            from_port=32768,
            to_port=65535,
        )
        rule("allow-all-out", ALLOW_VPC_RULE, True, "allow", ANYWHERE)
        return acl

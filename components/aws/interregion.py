"""InterRegionLink: the path replication takes between the two VPCs.

`vpc-peering`: a peering connection requested from the primary and accepted in the
standby, with routes both ways. `transit-gateway`: a transit gateway per region, VPC
attachments, a TGW peering attachment accepted in the standby, and static routes.

`attached`: another VPC (MirrorMaker 2's Kubernetes nodes) attached to its region's
transit gateway, with routes to both broker VPCs through it: replication then crosses
regions over this link, so a cross-region fault (NACLs, FIS on the transit gateways) cuts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.aws.tags import with_tags


@dataclass
class LinkEnd:
    """One side of the link: its provider, region, VPC, CIDR, private route table, subnets."""

    provider: aws.Provider
    region: str
    vpc_id: pulumi.Input[str]
    cidr: str
    route_table_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]


@dataclass
class AttachedVpc:
    name: str
    region_role: Literal["primary", "standby"]
    vpc_id: str
    cidr: str
    subnet_ids: list[str]
    route_table_ids: list[str]


@dataclass
class InterRegionLinkArgs:
    kind: Literal["vpc-peering", "transit-gateway"]
    primary: LinkEnd
    standby: LinkEnd
    tags: Mapping[str, str]
    attached: AttachedVpc | None = None


class InterRegionLink(pulumi.ComponentResource):
    link_id: pulumi.Output[str]
    transit_gateway_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: InterRegionLinkArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:InterRegionLink", name, None, opts)
        self.transit_gateway_ids = {}
        if args.kind == "vpc-peering":
            self._peering(name, args)
        else:
            self._transit_gateway(name, args)
        self.register_outputs(
            {
                "kind": args.kind,
                "linkId": self.link_id,
                "transitGatewayIds": self.transit_gateway_ids,
            }
        )

    def _opts(self, end: LinkEnd, **kw) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=end.provider, **kw)

    def _peering(self, name: str, args: InterRegionLinkArgs) -> None:
        p, s = args.primary, args.standby
        tags = with_tags(args.tags, part="inter-region-link")
        peering = aws.ec2.VpcPeeringConnection(
            f"{name}-peering",
            vpc_id=p.vpc_id,
            peer_vpc_id=s.vpc_id,
            peer_region=s.region,
            auto_accept=False,
            tags=with_tags(tags, Name=f"{name}-peering"),
            opts=self._opts(p),
        )
        accepter = aws.ec2.VpcPeeringConnectionAccepter(
            f"{name}-peering-accepter",
            vpc_peering_connection_id=peering.id,
            auto_accept=True,
            tags=with_tags(tags, Name=f"{name}-peering"),
            opts=self._opts(s),
        )
        for end, other, role in ((p, s, "primary"), (s, p, "standby")):
            aws.ec2.Route(
                f"{name}-{role}-to-peer",
                route_table_id=end.route_table_id,
                destination_cidr_block=other.cidr,
                vpc_peering_connection_id=peering.id,
                opts=self._opts(end, depends_on=[accepter]),
            )
        self.link_id = peering.id
        if args.attached is not None:
            raise ValueError(
                "an attached VPC needs kind transit-gateway (peering is not transitive)"
            )

    def _transit_gateway(self, name: str, args: InterRegionLinkArgs) -> None:
        tags = with_tags(args.tags, part="inter-region-link")
        tgws: dict[str, aws.ec2transitgateway.TransitGateway] = {}
        attachments = {}
        for role, end in (("primary", args.primary), ("standby", args.standby)):
            tgw = aws.ec2transitgateway.TransitGateway(
                f"{name}-{role}-tgw",
                description=f"kdrill {role} ({end.region})",
                default_route_table_association="enable",
                default_route_table_propagation="enable",
                tags=with_tags(tags, region_role=role, Name=f"{name}-{role}-tgw"),
                opts=self._opts(end),
            )
            attachments[role] = aws.ec2transitgateway.VpcAttachment(
                f"{name}-{role}-vpc-attachment",
                transit_gateway_id=tgw.id,
                vpc_id=end.vpc_id,
                subnet_ids=end.subnet_ids,
                tags=with_tags(tags, region_role=role),
                opts=self._opts(end),
            )
            tgws[role] = tgw
            self.transit_gateway_ids[role] = tgw.id
        peering = aws.ec2transitgateway.PeeringAttachment(
            f"{name}-tgw-peering",
            transit_gateway_id=tgws["primary"].id,
            peer_transit_gateway_id=tgws["standby"].id,
            peer_region=args.standby.region,
            tags=tags,
            opts=self._opts(args.primary),
        )
        accepter = aws.ec2transitgateway.PeeringAttachmentAccepter(
            f"{name}-tgw-peering-accepter",
            transit_gateway_attachment_id=peering.id,
            tags=tags,
            opts=self._opts(args.standby),
        )
        for role, end, other in (
            ("primary", args.primary, args.standby),
            ("standby", args.standby, args.primary),
        ):
            aws.ec2transitgateway.Route(
                f"{name}-{role}-tgw-route",
                destination_cidr_block=other.cidr,
                transit_gateway_attachment_id=peering.id,
                transit_gateway_route_table_id=tgws[role].association_default_route_table_id,
                opts=self._opts(end, depends_on=[accepter]),
            )
            aws.ec2.Route(
                f"{name}-{role}-to-peer",
                route_table_id=end.route_table_id,
                destination_cidr_block=other.cidr,
                transit_gateway_id=tgws[role].id,
                opts=self._opts(end, depends_on=[attachments[role]]),
            )
        self.link_id = peering.id
        extra = args.attached
        if extra is None:
            return
        home = args.primary if extra.region_role == "primary" else args.standby
        away_role = "standby" if extra.region_role == "primary" else "primary"
        away = args.primary if away_role == "primary" else args.standby
        tgw = tgws[extra.region_role]
        attachment = aws.ec2transitgateway.VpcAttachment(
            f"{name}-{extra.name}-vpc-attachment",
            transit_gateway_id=tgw.id,
            vpc_id=extra.vpc_id,
            subnet_ids=extra.subnet_ids,
            tags=with_tags(tags, region_role=extra.region_role),
            opts=self._opts(home),
        )
        # The other region's transit gateway sends the attached VPC's replies back over
        # the peering attachment (the home TGW learns the VPC by propagation).
        aws.ec2transitgateway.Route(
            f"{name}-{away_role}-to-{extra.name}",
            destination_cidr_block=extra.cidr,
            transit_gateway_attachment_id=peering.id,
            transit_gateway_route_table_id=tgws[away_role].association_default_route_table_id,
            opts=self._opts(away, depends_on=[accepter]),
        )
        # Both broker VPCs answer the attached VPC through their own transit gateway.
        for role, end in (("primary", args.primary), ("standby", args.standby)):
            aws.ec2.Route(
                f"{name}-{role}-vpc-to-{extra.name}",
                route_table_id=end.route_table_id,
                destination_cidr_block=extra.cidr,
                transit_gateway_id=tgws[role].id,
                opts=self._opts(end, depends_on=[attachments[role]]),
            )
        for i, rt in enumerate(extra.route_table_ids):
            for dest_role, dest in (("primary", args.primary), ("standby", args.standby)):
                aws.ec2.Route(
                    f"{name}-{extra.name}-{i}-to-{dest_role}",
                    route_table_id=rt,
                    destination_cidr_block=dest.cidr,
                    transit_gateway_id=tgw.id,
                    opts=self._opts(home, depends_on=[attachment]),
                )

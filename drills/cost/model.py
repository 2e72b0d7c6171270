"""The cost model: what a stack is made of + what a drill used -> priced cost lines.

An `Inventory` lists what costs while it exists (brokers, volumes, endpoints), each in
the AWS region it runs in; `Usage` is what the drill measured (its window, bytes that
crossed regions per direction, object-storage requests, bytes through endpoints).
`price()` turns both into `CostLine`s named by the usage types of AWS's Cost and Usage
Report, so an export lines up with a real bill.

Conventions (stated once, used everywhere):
- resource-hours = units x the drill window in hours (per-second, as EC2/MSK bill);
- monthly SKUs (GB-Mo, IOPS-Mo, MiBps-Mo) are prorated: quantity x hours / 730;
- GB = the catalog's `gb_definition` (2^30 bytes);
- inter-region transfer is charged to the source region (SRC-DST-AWS-Out-Bytes);
  the matching -In-Bytes line is free and not listed.

The local stack has no AWS resources: `inventory_local` prices what the same drill would
have cost in the AWS regions the local regions stand for (`awsRegion`), with each local
broker as `LOCAL_EQUIVALENT`, and says so in every line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from drills.cost.catalog import Catalog

# How a local broker / MirrorMaker 2 worker is priced (an Apache Kafka broker on EC2, as the
# apache-* stacks build it, sized down to the local region's one core).
LOCAL_EQUIVALENT = {
    "broker_instance": "m7g.large",
    "broker_volume_gib": 100,  # gp3 at its included 3,000 IOPS / 125 MiB/s
    "mm2_instance": "m7g.large",
}

# Cost Explorer's SERVICE dimension for each price-list service code (reconciliation).
CE_SERVICE = {
    "AmazonEC2": "Amazon Elastic Compute Cloud - Compute",
    "AmazonEC2/EBS": "EC2 - Other",
    "AmazonEC2/NAT": "EC2 - Other",
    "AmazonS3": "Amazon Simple Storage Service",
    "AWSDataTransfer": "AWS Data Transfer",
    "AmazonVPC": "Amazon Virtual Private Cloud",
    "AmazonMSK": "Amazon Managed Streaming for Apache Kafka",
}

# FOCUS ServiceName, ServiceCategory, ServiceSubcategory (an allowed 1.2 pair) per SKU family.
SERVICE = {
    "ec2.instance": ("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "AmazonEC2"),
    "ebs": ("Amazon Elastic Block Store", "Storage", "Block Storage", "AmazonEC2/EBS"),
    "s3": ("Amazon Simple Storage Service", "Storage", "Object Storage", "AmazonS3"),
    "transfer": ("AWS Data Transfer", "Networking", "Network Connectivity", "AWSDataTransfer"),
    "privatelink": ("AWS PrivateLink", "Networking", "Network Connectivity", "AmazonVPC"),
    "nat": ("Amazon VPC NAT Gateway", "Networking", "Network Infrastructure", "AmazonEC2/NAT"),
    "msk": ("Amazon Managed Streaming for Apache Kafka", "Analytics", "Streaming Analytics",
            "AmazonMSK"),
}  # fmt: skip


def family(sku: str) -> str:
    head = sku.split(":", 1)[0]
    return head if head in SERVICE else head.split(".", 1)[0]


@dataclass(frozen=True)
class Resource:
    """`quantity` units of `sku` in an AWS region for the whole drill window."""

    sku: str
    region: str
    quantity: float  # instances / endpoint-AZs (hourly SKUs), GB / IOPS / MiB/s (monthly SKUs)
    resource_id: str
    resource_type: str
    name: str


@dataclass
class Inventory:
    stack: str
    mode: str  # "local" (priced as the AWS regions it stands for) or "aws"
    primary: str  # AWS regions
    standby: str
    resources: list[Resource] = field(default_factory=list)
    cross_az_factor: float = 0.0  # bytes crossing AZs (in one direction) per produced byte
    local_regions: dict[str, str] = field(default_factory=dict)  # local name -> AWS region
    not_priced: list[str] = field(default_factory=list)  # parts the catalog does not price
    note: str = ""


@dataclass
class Usage:
    start: datetime
    end: datetime
    transfer_bytes: dict[tuple[str, str], int] = field(default_factory=dict)  # (src, dst) AWS
    produced_bytes: int = 0
    s3_tier1: dict[str, int] = field(default_factory=dict)  # region -> PUT/COPY/POST/LIST
    s3_tier2: dict[str, int] = field(default_factory=dict)  # region -> GET and others
    privatelink_bytes: dict[str, int] = field(default_factory=dict)
    nat_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds()) / 3600


@dataclass
class CostLine:
    sku: str
    price_id: str
    region: str
    usage_type: str
    service_code: str
    service_name: str
    service_category: str
    service_subcategory: str
    description: str
    quantity: float  # in `unit`
    unit: str
    unit_price: float
    cost: float
    resource_id: str | None
    resource_type: str | None
    resource_name: str | None
    price_source: str
    price_taken: str
    aws_sku: str | None = None


@dataclass
class CostReport:
    mode: str
    stack: str
    note: str
    start: datetime
    end: datetime
    lines: list[CostLine]
    not_priced: list[str]
    currency: str = "USD"
    basis: str = "measured"  # measured | projected
    assumptions: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(x.cost for x in self.lines)

    def by_service(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for x in self.lines:
            out[x.service_name] = out.get(x.service_name, 0.0) + x.cost
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "mode": self.mode,
            "stack": self.stack,
            "note": self.note,
            "currency": self.currency,
            "window": {"start": iso(self.start), "end": iso(self.end)},
            "total_usd": round(self.total, 6),
            "lines": [asdict(x) | {"cost": round(x.cost, 8)} for x in self.lines],
            "not_priced": self.not_priced,
            "assumptions": self.assumptions,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CostReport:
        def t(s: str) -> datetime:
            return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

        return cls(d["mode"], d["stack"], d["note"], t(d["window"]["start"]), t(d["window"]["end"]),
                   [CostLine(**x) for x in d["lines"]], list(d.get("not_priced", [])),
                   d.get("currency", "USD"), d.get("basis", "measured"), d.get("assumptions", {}))  # fmt: skip


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(
    cat: Catalog, sku: str, region: str, qty: float, res: Resource | None, desc: str
) -> CostLine:
    p = cat.price(sku, region)
    name, category, sub, ce = SERVICE[family(sku)]
    return CostLine(
        sku=sku, price_id=p.price_id, region=region, usage_type=p.usage_type,
        service_code=ce, service_name=name, service_category=category, service_subcategory=sub,
        description=desc, quantity=qty, unit=p.unit, unit_price=p.usd, cost=qty * p.usd,
        resource_id=res.resource_id if res else None, resource_type=res.resource_type if res else None,
        resource_name=res.name if res else None, price_source=p.source, price_taken=p.taken,
        aws_sku=p.aws_sku,
    )  # fmt: skip


def price(inv: Inventory, usage: Usage, cat: Catalog, basis: str = "measured") -> CostReport:
    """Cost lines for `usage` on `inv`. Unknown regions or SKUs raise CatalogError."""
    lines: list[CostLine] = []
    hours = usage.hours
    suffix = f" (local stack: priced as {inv.primary}/{inv.standby})" if inv.mode == "local" else ""
    for r in inv.resources:
        p = cat.price(r.sku, r.region)
        if p.unit == "Hrs":
            qty = r.quantity * hours
            what = f"{r.name}: {r.quantity:g} x {hours:.4f} h"
        elif p.unit.endswith("-Mo"):
            qty = r.quantity * hours / cat.hours_per_month
            what = f"{r.name}: {r.quantity:g} {p.unit[:-3]} x {hours:.4f} h / {cat.hours_per_month:g} h"
        else:
            raise ValueError(f"{r.sku}: unit {p.unit} is not time-based; it cannot be a resource")
        if qty > 0:
            lines.append(_line(cat, r.sku, r.region, qty, r, what + suffix))
    gb = cat.gb_bytes
    for (src, dst), n in sorted(usage.transfer_bytes.items()):
        if n > 0:
            lines.append(_line(cat, f"transfer.inter-region:{dst}", src, n / gb, None,
                               f"{n} bytes {src} -> {dst}{suffix}"))  # fmt: skip
    cross = usage.produced_bytes * inv.cross_az_factor
    if cross > 0:
        for region in (inv.primary,):  # produce-side replication happens where clients write
            for direction in ("out", "in"):
                lines.append(_line(cat, "transfer.cross-az", region, cross / gb, None,
                                   f"in-cluster replication across AZs ({direction}): "
                                   f"{usage.produced_bytes} produced bytes x {inv.cross_az_factor:g}{suffix}"))  # fmt: skip
    for sku, counts in (
        ("s3.requests.tier1", usage.s3_tier1),
        ("s3.requests.tier2", usage.s3_tier2),
    ):
        for region, n in sorted(counts.items()):
            if n > 0:
                lines.append(_line(cat, sku, region, float(n), None, f"{n} requests{suffix}"))
    for sku, per in (
        ("privatelink.bytes", usage.privatelink_bytes),
        ("nat.bytes", usage.nat_bytes),
    ):
        for region, n in sorted(per.items()):
            if n > 0:
                lines.append(_line(cat, sku, region, n / gb, None, f"{n} bytes{suffix}"))
    return CostReport(inv.mode, inv.stack, inv.note, usage.start, usage.end, lines,
                      list(inv.not_priced), basis=basis)  # fmt: skip


# --- inventories -------------------------------------------------------------------------


def inventory_local(cfg) -> Inventory:
    """The local pair (components.local.config.LocalConfig) as the AWS regions it stands for."""
    eq = LOCAL_EQUIVALENT
    inv = Inventory(
        stack=cfg.stack, mode="local", primary=cfg.primary.aws_region,
        standby=cfg.standby.aws_region,
        local_regions={r.name: r.aws_region for r in cfg.regions},
        note=(f"local stack {cfg.stack}: no AWS resources ran; these lines price what the same drill "
              f"would have cost in " + ", ".join(f"{r.aws_region} (for local region {r.name})" for r in cfg.regions)
              + f", each local broker as an EC2 {eq['broker_instance']} with a {eq['broker_volume_gib']} GiB gp3 "
              f"volume, MirrorMaker 2 as one {eq['mm2_instance']} in the standby"),
    )  # fmt: skip
    rf = min(3, min(r.brokers for r in cfg.regions))
    inv.cross_az_factor = float(rf - 1)  # a multi-broker region spreads replicas over AZs
    for r in cfg.regions:
        for i in range(r.brokers):
            rid = f"kdrill-local/{cfg.stack}/{r.name}/broker-{i}"
            inv.resources.append(Resource(f"ec2.instance:{eq['broker_instance']}", r.aws_region, 1,
                                          rid, "Kafka broker (EC2 instance)", f"{r.name} broker {i}"))  # fmt: skip
            inv.resources.append(Resource("ebs.gp3.storage", r.aws_region, eq["broker_volume_gib"],
                                          rid + "/log-volume", "EBS gp3 volume", f"{r.name} broker {i} log volume"))  # fmt: skip
    inv.resources.append(Resource(f"ec2.instance:{eq['mm2_instance']}", cfg.standby.aws_region, 1,
                                  f"kdrill-local/{cfg.stack}/{cfg.standby.name}/mirrormaker2",
                                  "MirrorMaker 2 worker (EC2 instance)", f"{cfg.standby.name} MirrorMaker 2"))  # fmt: skip
    return inv


def inventory_aws(stack: str, cfg) -> Inventory:
    """An AWS stack (components.aws.config.StackConfig): brokers, volumes, endpoints per region."""
    regions = {role: cfg.regions.by_role(role).region for role in ("primary", "standby")}
    inv = Inventory(stack=stack, mode="aws", primary=regions["primary"], standby=regions["standby"],
                    note=f"stack {stack} ({cfg.engine}): estimate at on-demand list prices")  # fmt: skip
    vol = cfg.storage
    for role, region in regions.items():
        cap = cfg.brokers.by_role(role)
        for i in range(cap.count):
            rid = f"{stack}/{role}/broker-{i}"
            if cfg.engine == "msk":
                inv.resources.append(Resource(f"msk.broker:{cap.instance_type}", region, 1, rid,
                                              "MSK broker", f"{role} broker {i}"))  # fmt: skip
                inv.resources.append(Resource("msk.storage", region, vol.size_gib, rid + "/storage",
                                              "MSK broker storage", f"{role} broker {i} storage"))  # fmt: skip
                continue
            inv.resources.append(Resource(f"ec2.instance:{cap.instance_type}", region, 1, rid,
                                          "Kafka broker (EC2 instance)", f"{role} broker {i}"))  # fmt: skip
            part = "wal-volume" if cfg.engine == "automq" else "log-volume"
            v = f"{rid}/{part}"
            inv.resources.append(Resource(f"ebs.{vol.type}.storage", region, vol.size_gib, v,
                                          f"EBS {vol.type} volume", f"{role} broker {i} {part}"))  # fmt: skip
            iops = vol.iops - 3000 if vol.type == "gp3" else vol.iops
            if iops > 0:
                inv.resources.append(Resource(f"ebs.{vol.type}.iops", region, iops, v,
                                              f"EBS {vol.type} volume", f"{role} broker {i} {part} IOPS"))  # fmt: skip
            if vol.type == "gp3" and (vol.throughput_mibps or 125) > 125:
                inv.resources.append(Resource("ebs.gp3.throughput", region, vol.throughput_mibps - 125, v,
                                              "EBS gp3 volume", f"{role} broker {i} {part} throughput"))  # fmt: skip
    if cfg.engine == "msk":
        inv.cross_az_factor = 0.0  # MSK does not charge for replication traffic between its brokers
    elif cfg.engine == "automq":
        inv.cross_az_factor = 0.0  # AutoMQ replicates through S3, not between brokers
    else:
        rf = min(3, cfg.brokers.primary.count)
        inv.cross_az_factor = float(rf - 1)
    if cfg.replication.kind == "msk-replicator":
        inv.resources.append(Resource("msk.replicator-hours", regions["standby"], 1,
                                      f"{stack}/replicator", "MSK Replicator", "MSK Replicator"))  # fmt: skip
    elif cfg.replication.kind == "mirrormaker2":
        inv.not_priced.append(
            "MirrorMaker 2 pods (run in an existing Kubernetes cluster, billed there)"
        )
    for vpc in cfg.private_link.client_vpcs:
        region = regions[vpc.region_role]
        inv.resources.append(Resource("privatelink.endpoint-hours", region, len(vpc.subnet_ids),
                                      f"{stack}/{vpc.region_role}/endpoint-{vpc.name}",
                                      "Interface VPC endpoint", f"endpoint for {vpc.name} ({len(vpc.subnet_ids)} AZ)"))  # fmt: skip
    inv.not_priced += [
        "Network Load Balancers behind the endpoint services (Elastic Load Balancing)",
        "KMS keys and requests",
    ]
    if cfg.inter_region == "transit-gateway":
        inv.not_priced.append("Transit gateway attachment hours and data processing")
    return inv

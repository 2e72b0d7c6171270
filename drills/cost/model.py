"""The cost model: what a stack is made of + what a drill used -> priced cost lines.

An `Inventory` lists what costs while it exists (brokers, volumes, endpoints), each in
the AWS region it runs in; `Usage` is what the drill measured (its window, bytes that
crossed regions per direction, object-storage requests, bytes through endpoints).
`price()` turns both into `CostLine`s named by the usage types of AWS's Cost and Usage
Report, so an export lines up with a real bill.

Conventions (stated once, used everywhere; the rules are the catalog's `billing_rules`,
each with the page and sentence it relies on):
- resource-hours = units x the window in hours, per second (EC2, MSK), except SKUs billed
  per started hour (PrivateLink endpoint-hours, NAT gateway-hours: a 30 s drill pays one
  hour per unit and per clock hour it touched);
- EC2 instances and EBS volumes the drill itself launches (`Resource.launched`) pay at
  least 60 s each;
- monthly SKUs (GB-Mo, IOPS-Mo, MiBps-Mo) are prorated by the hours of the calendar month
  the usage falls in (672-744), not an average 730-hour month;
- the window is whole seconds (start floored, end ceiled): the FOCUS ChargePeriod has the
  precision the quantities were computed with;
- a window crossing a calendar month is split at the boundary: one line per month;
- GB = the catalog's `gb_definition` (2^30 bytes);
- inter-region transfer is charged to the source region (SRC-DST-AWS-Out-Bytes);
  the matching -In-Bytes line is free and not listed;
- every line is `incremental` (caused by the drill: transfer, requests, env creation and
  destruction, instances launched for it) or `allocated` (the drill window's share of
  standing resources that cost the same whether or not the drill ran).

The local stack has no AWS resources: `inventory_local` prices what the same drill would
have cost in the AWS regions the local regions stand for (`awsRegion`), with each local
broker as `LOCAL_EQUIVALENT`, and says so in every line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from drills.cost.catalog import Catalog

# How a local broker / MirrorMaker 2 worker is priced (an Apache Kafka broker on EC2, as the
# apache-* stacks build it, sized down to the local region's one core).
LOCAL_EQUIVALENT = {
    "broker_instance": "m7g.large",
    "broker_volume_gib": 100,  # gp3 at its included 3,000 IOPS / 125 MiB/s
    "mm2_instance": "m7g.large",
}

# Cost Explorer's SERVICE dimension per SKU family (reconciliation). Inter-region transfer,
# EBS and NAT gateways are all "EC2 - Other" there.
CE_SERVICE = {
    "ec2.instance": "Amazon Elastic Compute Cloud - Compute",
    "ebs": "EC2 - Other",
    "nat": "EC2 - Other",
    "transfer": "EC2 - Other",
    "s3": "Amazon Simple Storage Service",
    "privatelink": "Amazon Virtual Private Cloud",
    "msk": "Amazon Managed Streaming for Apache Kafka",
}

# FOCUS ServiceName (as AWS bills it: EBS volumes and NAT gateways are Amazon EC2 lines,
# interface endpoints Amazon VPC's), ServiceCategory, ServiceSubcategory (an allowed 1.2
# pair) and the bill's product code, per SKU family. FOCUS gives a ServiceName one and only
# one ServiceCategory (ServiceName-C-005-C) and subcategory, so EBS and NAT lines carry
# Amazon EC2's: Compute / Virtual Machines.
SERVICE = {
    "ec2.instance": ("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "AmazonEC2"),
    "ebs": ("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "AmazonEC2"),
    "s3": ("Amazon Simple Storage Service", "Storage", "Object Storage", "AmazonS3"),
    "transfer": ("AWS Data Transfer", "Networking", "Network Connectivity", "AWSDataTransfer"),
    "privatelink": ("Amazon Virtual Private Cloud", "Networking", "Network Connectivity",
                    "AmazonVPC"),
    "nat": ("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "AmazonEC2"),
    "msk": ("Amazon Managed Streaming for Apache Kafka", "Analytics", "Streaming Analytics",
            "AmazonMSK"),
}  # fmt: skip


# SKUs billed per started hour (each partial hour is a full one), per the catalog's billing_rules.
PER_STARTED_HOUR = ("privatelink.endpoint-hours", "nat.hours")
# Families with a 60-second minimum when launched (EC2 Linux instances, EBS volumes).
MIN_60S = ("ec2.instance", "ebs")
INCREMENTAL, ALLOCATED = "incremental", "allocated"


def family(sku: str) -> str:
    head = sku.split(":", 1)[0]
    return head if head in SERVICE else head.split(".", 1)[0]


def month_bounds(t: datetime) -> tuple[datetime, datetime]:
    t = t.astimezone(UTC)
    start = datetime(t.year, t.month, 1, tzinfo=UTC)
    end = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def month_hours(t: datetime) -> float:
    a, b = month_bounds(t)
    return (b - a).total_seconds() / 3600


def whole_seconds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window on whole seconds: start floored, end ceiled (never shorter than measured)."""
    s = start.replace(microsecond=0)
    e = end.replace(microsecond=0) + (timedelta(seconds=1) if end.microsecond else timedelta())
    return s, max(s, e)


def month_segments(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at calendar-month (billing-period) boundaries."""
    out, t = [], start
    while True:
        _, m_end = month_bounds(t)
        if end <= m_end:
            out.append((t, end))
            return out
        out.append((t, m_end))
        t = m_end


def started_hours(start: datetime, end: datetime) -> int:
    """Clock hours [start, end) touches: a 30 s window pays one, 10:59-11:01 pays two."""
    if end <= start:
        return 0
    first = start.replace(minute=0, second=0, microsecond=0)
    return max(1, math.ceil((end - first).total_seconds() / 3600))


@dataclass(frozen=True)
class Resource:
    """`quantity` units of `sku` in an AWS region for the whole drill window."""

    sku: str
    region: str
    quantity: float  # instances / endpoint-AZs (hourly SKUs), GB / IOPS / MiB/s (monthly SKUs)
    resource_id: str
    resource_type: str
    name: str
    launched: bool = False  # created for this drill (env creation): incremental, 60 s minimum


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
    buckets: dict[str, str] = field(default_factory=dict)  # AWS region -> evidence bucket name
    # which cost allocation tag finds this stack's resources in Cost Explorer: an ephemeral
    # env's id (kdrill:drill-id) or, for persistent stacks, kdrill:stack
    tag_key: str = "kdrill:stack"
    tag_value: str = ""
    ephemeral: bool = False


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
    allocation: str = INCREMENTAL  # incremental (caused by the drill) | allocated (standing)
    start: str | None = None  # the line's charge period when it is not the whole window
    end: str | None = None


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
    tag: dict[str, Any] = field(default_factory=dict)  # key, value, ephemeral (reconcile)

    @property
    def total(self) -> float:
        return sum(x.cost for x in self.lines)

    def split(self) -> dict[str, float]:
        """What the drill caused vs its share of standing resources."""
        out = {INCREMENTAL: 0.0, ALLOCATED: 0.0}
        for x in self.lines:
            out[x.allocation] += x.cost
        return out

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
            "split_usd": {k: round(v, 6) for k, v in self.split().items()},
            "lines": [asdict(x) | {"cost": round(x.cost, 8)} for x in self.lines],
            "not_priced": self.not_priced,
            "assumptions": self.assumptions,
            "tag": self.tag,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CostReport:
        def t(s: str) -> datetime:
            return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

        return cls(d["mode"], d["stack"], d["note"], t(d["window"]["start"]), t(d["window"]["end"]),
                   [CostLine(**x) for x in d["lines"]], list(d.get("not_priced", [])),
                   d.get("currency", "USD"), d.get("basis", "measured"), d.get("assumptions", {}),
                   d.get("tag", {}))  # fmt: skip


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(
    cat: Catalog,
    sku: str,
    region: str,
    qty: float,
    res: Resource | None,
    desc: str,
    allocation: str = INCREMENTAL,
    seg: tuple[datetime, datetime] | None = None,
) -> CostLine:
    p = cat.price(sku, region)
    name, category, sub, ce = SERVICE[family(sku)]
    return CostLine(
        sku=sku, price_id=p.price_id, region=region, usage_type=p.usage_type,
        service_code=ce, service_name=name, service_category=category, service_subcategory=sub,
        description=desc, quantity=qty, unit=p.unit, unit_price=p.usd, cost=qty * p.usd,
        resource_id=res.resource_id if res else None, resource_type=res.resource_type if res else None,
        resource_name=res.name if res else None, price_source=p.source, price_taken=p.taken,
        aws_sku=p.aws_sku, allocation=allocation,
        start=iso(seg[0]) if seg else None, end=iso(seg[1]) if seg else None,
    )  # fmt: skip


def resource_quantity(
    cat: Catalog, r: Resource, start: datetime, end: datetime
) -> tuple[float, str]:
    """(quantity in the price's unit, how it was computed) for `r` over [start, end), which
    lies within one calendar month."""
    p = cat.price(r.sku, r.region)
    secs = max(0.0, (end - start).total_seconds())
    if r.launched and family(r.sku) in MIN_60S:
        secs = max(secs, 60.0)  # EC2 / EBS: billed per second with a 60 s minimum
    hours = secs / 3600
    if p.unit == "Hrs":
        if r.sku in PER_STARTED_HOUR:
            n = started_hours(start, end)
            return r.quantity * n, f"{r.quantity:g} x {n} started hour(s)"
        return r.quantity * hours, f"{r.quantity:g} x {hours:.6f} h"
    if p.unit.endswith("-Mo"):
        mh = month_hours(start)
        return (r.quantity * hours / mh,
                f"{r.quantity:g} {p.unit[:-3]} x {hours:.6f} h / {mh:g} h in {start:%Y-%m}")  # fmt: skip
    raise ValueError(f"{r.sku}: unit {p.unit} is not time-based; it cannot be a resource")


def price(inv: Inventory, usage: Usage, cat: Catalog, basis: str = "measured") -> CostReport:
    """Cost lines for `usage` on `inv`. Unknown regions or SKUs raise CatalogError."""
    lines: list[CostLine] = []
    start, end = whole_seconds(usage.start, usage.end)
    segments = month_segments(start, end) if end > start else [(start, end)]
    split = len(segments) > 1
    total_s = max(1e-9, (end - start).total_seconds())
    suffix = f" (local stack: priced as {inv.primary}/{inv.standby})" if inv.mode == "local" else ""
    for r in inv.resources:
        alloc = INCREMENTAL if r.launched else ALLOCATED
        for seg in segments:
            qty, what = resource_quantity(cat, r, *seg)
            if qty > 0:
                lines.append(_line(cat, r.sku, r.region, qty, r, f"{r.name}: {what}{suffix}",
                                   alloc, seg if split else None))  # fmt: skip

    def add(sku: str, region: str, amount: float, desc: str, res: Resource | None = None) -> None:
        # usage measured over the window: a window crossing months is split by time
        for seg in segments:
            share = (seg[1] - seg[0]).total_seconds() / total_s if split else 1.0
            if amount * share > 0:
                lines.append(_line(cat, sku, region, amount * share, res, desc, INCREMENTAL,
                                   seg if split else None))  # fmt: skip

    gb = cat.gb_bytes
    for (src, dst), n in sorted(usage.transfer_bytes.items()):
        add(f"transfer.inter-region:{dst}", src, n / gb, f"{n} bytes {src} -> {dst}{suffix}")
    cross = usage.produced_bytes * inv.cross_az_factor
    if cross > 0:
        for region in (inv.primary,):  # produce-side replication happens where clients write
            for direction in ("out", "in"):
                add("transfer.cross-az", region, cross / gb,
                    f"in-cluster replication across AZs ({direction}): "
                    f"{usage.produced_bytes} produced bytes x {inv.cross_az_factor:g}{suffix}")  # fmt: skip
    for sku, counts in (
        ("s3.requests.tier1", usage.s3_tier1),
        ("s3.requests.tier2", usage.s3_tier2),
    ):
        for region, n in sorted(counts.items()):
            bucket = inv.buckets.get(region)
            res = Resource(sku, region, 0, bucket, "S3 bucket", bucket) if bucket else None
            add(sku, region, float(n), f"{n} requests{suffix}", res)
    for sku, per in (
        ("privatelink.bytes", usage.privatelink_bytes),
        ("nat.bytes", usage.nat_bytes),
    ):
        for region, n in sorted(per.items()):
            add(sku, region, n / gb, f"{n} bytes{suffix}")
    tag = {"key": inv.tag_key, "value": inv.tag_value or inv.stack, "ephemeral": inv.ephemeral}
    return CostReport(inv.mode, inv.stack, inv.note, start, end, lines,
                      list(inv.not_priced), basis=basis, tag=tag)  # fmt: skip


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
    for b in cfg.standby.buckets:  # the evidence upload's PUTs land in the standby's bucket
        if "evidence" in b:
            inv.buckets[cfg.standby.aws_region] = b
            break
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


def _out(outputs: dict | None, role: str, key: str, i: int | None = None) -> str | None:
    """A value of the stack's `regions` output (pulumi stack output --json regions)."""
    v = ((outputs or {}).get("regions") or {}).get(role, {}).get(key)
    if i is not None:
        v = v[i] if isinstance(v, list) and i < len(v) else None
    return v if isinstance(v, str) and v else None


def inventory_aws(stack: str, cfg, outputs: dict | None = None) -> Inventory:
    """An AWS stack (components.aws.config.StackConfig): brokers, volumes, endpoints per region.

    `outputs` (the stack's outputs, `pulumi stack output --json`) gives resources their real
    ids: EC2 instance ids (`regions.<role>.instanceIds`), the MSK cluster ARN, the evidence
    bucket names (on the S3 request lines); without them the ids are kdrill's own names.
    Resources of an ephemeral stack were launched for the drill (incremental, 60 s minimum)."""
    regions = {role: cfg.regions.by_role(role).region for role in ("primary", "standby")}
    ephemeral = cfg.environment == "ephemeral"
    inv = Inventory(stack=stack, mode="aws", primary=regions["primary"], standby=regions["standby"],
                    note=f"stack {stack} ({cfg.engine}): estimate at on-demand list prices",
                    ephemeral=ephemeral, tag_key="kdrill:drill-id" if ephemeral else "kdrill:stack",
                    tag_value=cfg.drill_id if ephemeral else stack)  # fmt: skip
    for role, region in regions.items():
        bucket = _out(outputs, role, "evidenceBucket")
        if bucket and role == "standby":
            inv.buckets[region] = bucket
    vol = cfg.storage
    for role, region in regions.items():
        cap = cfg.brokers.by_role(role)
        cluster = _out(outputs, role, "clusterArn")
        for i in range(cap.count):
            rid = f"{stack}/{role}/broker-{i}"
            if cfg.engine == "msk":
                inv.resources.append(Resource(f"msk.broker:{cap.instance_type}", region, 1,
                                              cluster or rid, "MSK broker", f"{role} broker {i}",
                                              ephemeral))  # fmt: skip
                inv.resources.append(Resource("msk.storage", region, vol.size_gib,
                                              cluster or rid + "/storage", "MSK broker storage",
                                              f"{role} broker {i} storage", ephemeral))  # fmt: skip
                continue
            rid = _out(outputs, role, "instanceIds", i) or rid
            inv.resources.append(Resource(f"ec2.instance:{cap.instance_type}", region, 1, rid,
                                          "Kafka broker (EC2 instance)", f"{role} broker {i}",
                                          ephemeral))  # fmt: skip
            part = "wal-volume" if cfg.engine == "automq" else "log-volume"
            v = f"{rid}/{part}"
            inv.resources.append(Resource(f"ebs.{vol.type}.storage", region, vol.size_gib, v,
                                          f"EBS {vol.type} volume", f"{role} broker {i} {part}", ephemeral))  # fmt: skip
            iops = vol.iops - 3000 if vol.type == "gp3" else vol.iops
            if iops > 0:
                inv.resources.append(Resource(f"ebs.{vol.type}.iops", region, iops, v,
                                              f"EBS {vol.type} volume", f"{role} broker {i} {part} IOPS", ephemeral))  # fmt: skip
            if vol.type == "gp3" and (vol.throughput_mibps or 125) > 125:
                inv.resources.append(Resource("ebs.gp3.throughput", region, vol.throughput_mibps - 125, v,
                                              "EBS gp3 volume", f"{role} broker {i} {part} throughput", ephemeral))  # fmt: skip
    if cfg.engine == "msk":
        inv.cross_az_factor = 0.0  # MSK does not charge for replication traffic between its brokers
    elif cfg.engine == "automq":
        inv.cross_az_factor = 0.0  # AutoMQ replicates through S3, not between brokers
    else:
        rf = min(3, cfg.brokers.primary.count)
        inv.cross_az_factor = float(rf - 1)
    if cfg.replication.kind == "msk-replicator":
        arn = ((outputs or {}).get("replication") or {}).get("replicatorArn")
        inv.resources.append(Resource("msk.replicator-hours", regions["standby"], 1,
                                      arn or f"{stack}/replicator", "MSK Replicator",
                                      "MSK Replicator", ephemeral))  # fmt: skip
    elif cfg.replication.kind == "mirrormaker2":
        inv.not_priced.append(
            "MirrorMaker 2 pods (run in an existing Kubernetes cluster, billed there)"
        )
    for vpc in cfg.private_link.client_vpcs:
        region = regions[vpc.region_role]
        inv.resources.append(Resource("privatelink.endpoint-hours", region, len(vpc.subnet_ids),
                                      f"{stack}/{vpc.region_role}/endpoint-{vpc.name}",
                                      "Interface VPC endpoint", f"endpoint for {vpc.name} ({len(vpc.subnet_ids)} AZ)",
                                      ephemeral))  # fmt: skip
    inv.not_priced += [
        "Network Load Balancers behind the endpoint services (Elastic Load Balancing)",
        "KMS keys and requests",
    ]
    if cfg.inter_region == "transit-gateway":
        inv.not_priced.append("Transit gateway attachment hours and data processing")
    return inv

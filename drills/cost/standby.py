"""`kdrill cost standby --stack STACK`: the monthly cost of keeping the standby ready.

What a stack pays every month, drill or not, so that the standby region can take over:
the standby's brokers (EC2 or MSK) and their volumes or storage, the interface endpoints
clients reach it through, NAT gateways, replication into it (inter-region transfer at a
measured or configured rate, MSK Replicator hours and per GB, S3 cross-region replication
of the buckets that replicate: transfer plus the replica PUTs), and for AutoMQ its S3 data
bucket in the standby (storage, PUTs of the objects the brokers upload, GETs). Priced for
one calendar month (the month's own hours) from the same catalog as the drills, as a table
and in FOCUS (`--out DIR` writes standby-focus.csv).

`--price-as STACK` prices the local pair as one of the AWS stacks. These are on-demand list
prices: Savings Plans, reserved instances or MSK/EC2 reserved capacity lower the effective
cost, and this estimate says nothing about them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from drills.cost.catalog import Catalog
from drills.cost.model import (
    ALLOCATED,
    CostReport,
    Inventory,
    Resource,
    Usage,
    inventory_aws,
    inventory_local,
    month_bounds,
    price,
)

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
DEFAULT_RATE_MIBPS = 1.0  # replication rate when neither measured nor configured
AUTOMQ_OBJECT_MIB = 8.0  # AutoMQ uploads stream-set objects of about this size
AUTOMQ_WAL_UPLOADS_PER_S = 4.0  # per broker: S3 WAL flushes (one PUT each)
AUTOMQ_RETAINED_GIB = 500.0  # data the standby's AutoMQ bucket holds (retention x rate)
EVIDENCE_GIB = 1.0  # replicated evidence / ops objects


class StandbyError(ValueError):
    pass


@dataclass
class StandbyAssumptions:
    rate_bytes_per_s: float = DEFAULT_RATE_MIBPS * MiB
    rate_source: str = f"configured default {DEFAULT_RATE_MIBPS:g} MiB/s"
    automq_retained_gib: float = AUTOMQ_RETAINED_GIB
    nat_gateways: int = 0
    month: datetime | None = None
    notes: list[str] = field(default_factory=list)


def load_stack(name: str, root: Path = ROOT):
    """The AWS stack config of stacks/Pulumi.<name>.yaml (components.aws.config.StackConfig)."""
    from components.aws.config import parse_stack_config

    path = root / "stacks" / f"Pulumi.{name}.yaml"
    if not path.exists():
        have = sorted(p.name[7:-5] for p in (root / "stacks").glob("Pulumi.*.yaml"))
        raise StandbyError(f"no stack {name!r} (stacks: {', '.join(have)})")
    raw = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return parse_stack_config({k.split(":", 1)[1]: v for k, v in raw.items() if ":" in k})


def measured_rate(run_dir: Path) -> tuple[float, str]:
    """Bytes/s that crossed primary -> standby in a drill run (its cost lines and window)."""
    ev = json.loads((Path(run_dir) / "evidence.json").read_text())
    final = (ev.get("cost") or {}).get("final")
    if not final:
        raise StandbyError(f"{run_dir}: the evidence has no measured cost lines")
    start = datetime.strptime(final["window"]["start"], "%Y-%m-%dT%H:%M:%SZ")
    end = datetime.strptime(final["window"]["end"], "%Y-%m-%dT%H:%M:%SZ")
    secs = max(1.0, (end - start).total_seconds())
    gib = sum(x["quantity"] for x in final["lines"] if x["usage_type"].endswith("-AWS-Out-Bytes"))
    rate = gib * 2**30 / secs
    return rate, f"measured in {Path(run_dir).name}: {rate / MiB:.4f} MiB/s over {secs:.0f} s"


def standby_report(inv: Inventory, cat: Catalog, a: StandbyAssumptions, cfg=None) -> CostReport:
    """One month of the standby's standing cost. `cfg` is the AWS stack config (replication
    kind, engine, buckets); None for the local pair priced as itself."""
    start, end = month_bounds(a.month or datetime.now(UTC))
    secs = (end - start).total_seconds()
    sb, pr = inv.standby, inv.primary
    standing = Inventory(inv.stack, inv.mode, pr, sb, note=inv.note, buckets=dict(inv.buckets),
                         tag_key=inv.tag_key, tag_value=inv.tag_value, ephemeral=inv.ephemeral)  # fmt: skip
    standing.resources = [r for r in inv.resources if r.region == sb]
    standing.not_priced = list(inv.not_priced)
    replicated = a.rate_bytes_per_s * secs
    usage = Usage(start, end, transfer_bytes={(pr, sb): int(replicated)})
    notes = [f"replication {a.rate_source}: {replicated / 2**30:,.1f} GiB in {start:%Y-%m}"]
    engine = getattr(cfg, "engine", None)
    kind = getattr(getattr(cfg, "replication", None), "kind", "mirrormaker2")
    if kind == "msk-replicator":
        notes.append("MSK Replicator: hours in the standby plus its per-GB charge")
    for i in range(a.nat_gateways):
        standing.resources.append(Resource("nat.hours", sb, 1, f"{inv.stack}/standby/nat-{i}",
                                           "NAT gateway", f"standby NAT gateway {i}"))  # fmt: skip
    if a.nat_gateways == 0:
        notes.append("no NAT gateway in this stack (brokers reach S3 through gateway endpoints)")
    replicate = list(getattr(getattr(cfg, "buckets", None), "replicate", []) or [])
    crr_gib = EVIDENCE_GIB * len([b for b in replicate if b in ("evidence", "ops")])
    if engine == "automq":
        data_gib = a.automq_retained_gib
        puts = (a.rate_bytes_per_s / (AUTOMQ_OBJECT_MIB * MiB)
                + AUTOMQ_WAL_UPLOADS_PER_S * cfg.brokers.standby.count) * secs  # fmt: skip
        usage.s3_tier1[sb] = int(puts)
        usage.s3_tier2[sb] = int(puts)  # compaction reads each object about once
        standing.resources.append(Resource("s3.standard.storage", sb, data_gib,
                                           inv.buckets.get(sb, f"{inv.stack}/standby/data"),
                                           "S3 bucket", "standby AutoMQ data bucket"))  # fmt: skip
        notes.append(f"AutoMQ data bucket: {data_gib:g} GiB retained, {puts:,.0f} PUTs "
                     f"({AUTOMQ_OBJECT_MIB:g} MiB objects + {AUTOMQ_WAL_UPLOADS_PER_S:g} WAL "
                     f"uploads/s per broker), as many GETs")  # fmt: skip
        if "data" in replicate:
            crr_gib += replicated / 2**30
    if crr_gib:
        # S3 cross-region replication: the replicas' storage, their PUTs, and the transfer
        standing.resources.append(Resource("s3.standard.storage", sb, crr_gib,
                                           f"{inv.stack}/standby/replicas", "S3 bucket",
                                           "replica objects (" + ", ".join(replicate) + ")"))  # fmt: skip
        objects = int(crr_gib * 2**30 / (4 * MiB))
        usage.s3_tier1[sb] = usage.s3_tier1.get(sb, 0) + objects
        usage.transfer_bytes[(pr, sb)] += int(crr_gib * 2**30)
        notes.append(f"S3 replication of {', '.join(replicate)}: {crr_gib:g} GiB, {objects} PUTs")
    report = price(standing, usage, cat, basis="projected")
    if kind == "msk-replicator":
        from drills.cost.model import _line

        report.lines.append(_line(cat, "msk.replicator-bytes", sb, replicated / cat.gb_bytes, None,
                                  f"{replicated:.0f} bytes replicated by MSK Replicator",
                                  ALLOCATED))  # fmt: skip
    for x in report.lines:
        x.allocation = ALLOCATED  # standing cost: the standby costs this with or without drills
    notes.append("list prices: Savings Plans, reserved instances or reserved capacity lower the "
                 "effective cost; this does not model them")  # fmt: skip
    report.assumptions = {"notes": a.notes + notes, "month": f"{start:%Y-%m}",
                          "rate_bytes_per_s": a.rate_bytes_per_s, "rate_source": a.rate_source}  # fmt: skip
    return report


def standby_for(stack: str, cat: Catalog, a: StandbyAssumptions, price_as: str | None = None,
                root: Path = ROOT) -> CostReport:  # fmt: skip
    if stack == "local" and not price_as:
        from components.local import config as local_config

        return standby_report(inventory_local(local_config.load("local")), cat, a)
    name = price_as or stack
    cfg = load_stack(name, root)
    inv = inventory_aws(name, cfg)
    if price_as:
        a.notes.append(f"the local pair {stack} priced as the AWS stack {price_as}")
        inv.stack = f"{stack} (as {price_as})"
    return standby_report(inv, cat, a, cfg)


def table(report: CostReport) -> list[str]:
    out = [f"standby cost of {report.stack} for {report.assumptions.get('month')} "
           f"(on-demand list prices, {report.currency}/month)"]  # fmt: skip
    out.append(
        f"  {'usage type':<30} {'quantity':>14} {'unit':<9} {'unit price':>11} {'monthly':>11}"
    )
    groups: dict[tuple[str, str, float], list[float]] = {}
    for x in report.lines:  # one row per usage type and price: brokers add up
        g = groups.setdefault((x.usage_type, x.unit, x.unit_price), [0.0, 0.0])
        g[0] += x.quantity
        g[1] += x.cost
    for (ut, unit, up), (qty, cost) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        out.append(f"  {ut:<30} {qty:>14,.4f} {unit:<9} {up:>11g} {cost:>11,.2f}")
    out.append(f"  {'total':<30} {'':>14} {'':<9} {'':>11} {report.total:>11,.2f}")
    for n in report.assumptions.get("notes", []):
        out.append(f"  - {n}")
    for n in report.not_priced:
        out.append(f"  - not priced: {n}")
    return out


def meta(report: CostReport) -> dict[str, Any]:
    month = report.assumptions.get("month", "")
    return {"drill_id": f"standby-{month}", "drill": "standby", "phase": "standby",
            "run_dir": None}  # fmt: skip

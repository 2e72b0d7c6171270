"""FOCUS 1.2 export of a drill's cost lines (CSV, Parquet or JSON).

One row per cost line. Every column the FOCUS 1.2 Cost and Usage dataset makes mandatory
is present, plus the conditional ones a drill has values for (region, resource, SKU,
consumed quantity, tags), plus kdrill's own columns prefixed `x_` as FOCUS requires for
custom columns. ChargeCategory is Usage; ChargePeriodStart/End are the drill's window on
whole seconds (the quantities are computed on the same window), or the part of it in one
calendar month when the window crosses one (the model splits such lines);
BillingPeriodStart/End the calendar month holding the row; costs are list prices (an
estimate: BilledCost = EffectiveCost = ContractedCost = ListCost, PricingCategory
Standard), and the billing account says "estimate" so a row cannot pass for an invoice
line. ServiceName is the service AWS bills the line under (EBS and NAT under Amazon EC2),
ResourceId the real id or ARN where the stack's outputs give one, SkuId the Price List's
SKU once `kdrill cost refresh` has taken it. Units are FOCUS units: GiB where the catalog's
GB is 2^30 bytes. Tags is a JSON object holding the drill id under the stack's cost tag key.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drills.cost.model import CostReport, iso, month_bounds

FOCUS_VERSION = "1.2"
# Provider, publisher and invoice issuer are the same legal entity: FOCUS reads a provider that
# differs from the invoice issuer as a third-party (marketplace) charge whose BilledCost is 0.
PROVIDER = "Amazon Web Services, Inc."
PUBLISHER = "Amazon Web Services, Inc."
INVOICE_ISSUER = "Amazon Web Services, Inc."
DRILL_ID_TAG = (
    "kdrill:drill-id"  # = components.aws.tags.DRILL_ID_TAG (what Cost Explorer filters on)
)

# FOCUS units (UnitFormat: GiB for 2^30 bytes, GB for 10^9) for the catalog's price-list units.
UNITS_BINARY = {"Hrs": "Hours", "GB-Mo": "GiB-Months", "IOPS-Mo": "IOPS-Months",
                "MiBps-Mo": "MiBps-Months", "GB": "GiB", "Requests": "Requests"}  # fmt: skip
UNITS_DECIMAL = UNITS_BINARY | {"GB-Mo": "GB-Months", "GB": "GB"}
UNITS = UNITS_BINARY
ALLOWED_UNITS = set(UNITS_BINARY.values()) | set(UNITS_DECIMAL.values())

COLUMNS = [
    # mandatory in FOCUS 1.2
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName",
    # recommended / conditional ones a drill has values for
    "ServiceSubcategory", "ChargeFrequency", "InvoiceId", "ConsumedQuantity", "ConsumedUnit",
    "ContractedUnitPrice", "ListUnitPrice", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "RegionId", "RegionName",
    "ResourceId", "ResourceName", "ResourceType", "SkuId", "SkuMeter", "SkuPriceId",
    "SubAccountId", "SubAccountName", "Tags",
    # kdrill's own
    "x_DrillId", "x_DrillName", "x_DrillPhase", "x_DrillRunDir", "x_EstimateBasis", "x_StackMode",
    "x_UsageType", "x_PriceSource", "x_PriceTaken", "x_PriceListSku", "x_CostAllocation",
]  # fmt: skip
NUMERIC = {"BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity",
           "ConsumedQuantity", "ContractedUnitPrice", "ListUnitPrice",
           "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
           "PricingCurrencyListUnitPrice"}  # fmt: skip
FORMATS = {
    "focus-csv": "cost-focus.csv",
    "focus-parquet": "cost-focus.parquet",
    "json": "cost.json",
}


def _month(t: datetime) -> tuple[datetime, datetime]:
    return month_bounds(t)


def _t(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _num(x: float) -> float:
    return float(f"{x:.10g}")


def rows(
    report: CostReport, meta: dict[str, Any], region_name=lambda r: r, gb_bytes: int = 2**30
) -> list[dict[str, Any]]:
    """FOCUS rows. `meta`: drill_id, drill, run_dir, stack, account_id, account_name, tags."""
    units = UNITS_BINARY if gb_bytes == 2**30 else UNITS_DECIMAL
    tags = {**meta.get("tags", {}), DRILL_ID_TAG: meta["drill_id"], "kdrill:drill": meta["drill"],
            "kdrill:stack": report.stack}  # fmt: skip
    account = meta.get("account_id") or f"kdrill-{report.mode}-estimate"
    out = []
    for x in report.lines:
        start = _t(x.start) if x.start else report.start
        end = _t(x.end) if x.end else report.end
        end = max(start, end)
        bp_start, bp_end = _month(start)
        unit = units.get(x.unit, x.unit)
        cost = _num(x.cost)
        out.append({
            "BilledCost": cost, "BillingAccountId": account,
            "BillingAccountName": meta.get("account_name") or f"kdrill {report.mode} estimate",
            "BillingCurrency": report.currency, "BillingPeriodEnd": iso(bp_end),
            "BillingPeriodStart": iso(bp_start), "ChargeCategory": "Usage", "ChargeClass": None,
            "ChargeDescription": f"{x.usage_type}: {x.description}",
            "ChargePeriodEnd": iso(end), "ChargePeriodStart": iso(start),
            "ContractedCost": cost, "EffectiveCost": cost, "InvoiceIssuerName": INVOICE_ISSUER,
            "ListCost": cost, "PricingCategory": "Standard", "PricingQuantity": _num(x.quantity),
            "PricingUnit": unit, "ProviderName": PROVIDER, "PublisherName": PUBLISHER,
            "ServiceCategory": x.service_category, "ServiceName": x.service_name,
            "ServiceSubcategory": x.service_subcategory, "ChargeFrequency": "Usage-Based",
            "InvoiceId": None,  # an estimate is on no invoice
            "ConsumedQuantity": _num(x.quantity), "ConsumedUnit": unit,
            "ContractedUnitPrice": x.unit_price, "ListUnitPrice": x.unit_price,
            "PricingCurrency": report.currency, "PricingCurrencyContractedUnitPrice": x.unit_price,
            "PricingCurrencyEffectiveCost": cost, "PricingCurrencyListUnitPrice": x.unit_price,
            "RegionId": x.region, "RegionName": region_name(x.region),
            "ResourceId": x.resource_id, "ResourceName": x.resource_name,
            "ResourceType": x.resource_type, "SkuId": x.aws_sku or x.sku, "SkuMeter": x.usage_type,
            "SkuPriceId": f"{x.aws_sku}.OnDemand" if x.aws_sku else x.price_id, "SubAccountId": account,
            "SubAccountName": meta.get("account_name") or f"kdrill {report.mode} estimate",
            "Tags": json.dumps(tags, sort_keys=True),
            "x_DrillId": meta["drill_id"], "x_DrillName": meta["drill"],
            "x_DrillPhase": meta.get("phase", "drill"), "x_DrillRunDir": meta.get("run_dir"),
            "x_EstimateBasis": f"{report.basis} usage at on-demand list prices",
            "x_StackMode": report.mode, "x_UsageType": x.usage_type,
            "x_PriceSource": x.price_source, "x_PriceTaken": x.price_taken,
            "x_PriceListSku": x.aws_sku, "x_CostAllocation": x.allocation,
        })  # fmt: skip
    return out


def write(
    report: CostReport,
    meta: dict[str, Any],
    out_dir: Path,
    fmt: str,
    region_name=lambda r: r,
    gb_bytes: int = 2**30,
) -> Path:
    """Write the export in `fmt` (focus-csv | focus-parquet | json) into out_dir; return its path."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    path = Path(out_dir) / FORMATS[fmt]
    data = rows(report, meta, region_name, gb_bytes)
    if fmt == "json":
        doc = {"focus_version": FOCUS_VERSION, "report": report.to_dict(), "rows": data}
        path.write_text(json.dumps(doc, indent=2, default=str))
    elif fmt == "focus-csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for r in data:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        fields = []
        for c in COLUMNS:
            if c in NUMERIC:
                fields.append(pa.field(c, pa.float64()))
            elif c.endswith(("PeriodStart", "PeriodEnd")):
                fields.append(pa.field(c, pa.timestamp("s", tz="UTC")))
            else:
                fields.append(pa.field(c, pa.string()))
        cols = {}
        for c in COLUMNS:
            vals = [r[c] for r in data]
            if c.endswith(("PeriodStart", "PeriodEnd")):
                vals = [
                    datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for v in vals
                ]
            cols[c] = vals
        pq.write_table(pa.table(cols, schema=pa.schema(fields)), path)
    return path

"""`kdrill cost refresh`: rebuild the catalog's prices from the AWS Price List Query API.

For every catalog entry it asks `pricing.get_products` (ServiceCode + TERM_MATCH filters on
the entry's usage type and region; EC2 instance-hours also on Linux / shared tenancy / no
pre-installed software / capacity status Used) and takes the on-demand price dimension
that starts at 0. Each refreshed price records the API as its source, the Price List's own
SKU, and the date taken. An entry the API does not answer for keeps its old price and is
reported; nothing is ever set to zero for want of an answer.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from drills.cost.catalog import Catalog, Price

PRICING_REGION = "us-east-1"  # the Price List Query API's endpoint region
SERVICE_CODES = {"AmazonEC2/EBS": "AmazonEC2", "AmazonEC2/NAT": "AmazonEC2"}
EC2_INSTANCE_FILTERS = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
                        "capacitystatus": "Used"}  # fmt: skip


class RefreshError(RuntimeError):
    pass


def filters_for(p: Price) -> list[dict[str, str]]:
    f = {"usagetype": p.usage_type}
    if p.service_code != "AWSDataTransfer":  # transfer items carry from/toRegionCode instead
        f["regionCode"] = p.region
    if p.sku.startswith("ec2.instance:"):
        f |= EC2_INSTANCE_FILTERS
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in f.items()]


def on_demand_price(item: dict[str, Any]) -> tuple[float, str, str]:
    """(USD, unit, Price List SKU) of a get_products PriceList item's first on-demand tier."""
    sku = item["product"]["sku"]
    for term in item.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            if str(dim.get("beginRange", "0")) in ("0", "0.0"):
                return float(dim["pricePerUnit"]["USD"]), dim.get("unit", ""), sku
    raise RefreshError(f"price list item {sku} has no on-demand price starting at 0")


def refresh(cat: Catalog, client, today: str | None = None) -> tuple[Catalog, list[str], list[str]]:
    """Ask the Price List API for every entry. Returns (new catalog, updated, not found)."""
    today = today or datetime.now(UTC).strftime("%Y-%m-%d")
    updated, missing = [], []
    prices = dict(cat.prices)
    for key, p in sorted(cat.prices.items()):
        service = SERVICE_CODES.get(p.service_code, p.service_code)
        resp = client.get_products(ServiceCode=service, Filters=filters_for(p), MaxResults=10)
        items = [json.loads(x) if isinstance(x, str) else x for x in resp.get("PriceList", [])]
        if not items:
            missing.append(f"{p.price_id} ({service} {p.usage_type})")
            continue
        usd, unit, aws_sku = on_demand_price(items[0])
        source = (f"AWS Price List Query API: pricing.get_products ServiceCode={service} "
                  f"usagetype={p.usage_type} regionCode={p.region} (sku {aws_sku}, unit {unit})")  # fmt: skip
        prices[key] = replace(p, usd=usd, source=source, taken=today, aws_sku=aws_sku)
        updated.append(p.price_id)
    return (
        Catalog(prices, cat.gb_bytes, cat.hours_per_month, cat.region_names, cat.raw, cat.path),
        updated,
        missing,
    )


def pricing_client():
    import boto3

    return boto3.client("pricing", region_name=PRICING_REGION)

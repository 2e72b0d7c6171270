"""`kdrill cost refresh`: rebuild the catalog's prices from the AWS Price List Query API.

For every catalog entry it asks `pricing.get_products` (ServiceCode + TERM_MATCH filters on
the entry's usage type and region; EC2 instance-hours also on Linux / shared tenancy / no
pre-installed software / capacity status Used), reads every page (NextToken), and takes
the on-demand price dimension that starts at 0 of the one product that matches: more
than one matching product is an error (the filters are not specific enough), never
`items[0]`. The Price List's unit is checked and converted to the catalog's: gp3
throughput is published per GiBps-month and stored per MiB/s-month (1/1024 of it); a unit
the catalog does not know how to convert is an error. Each refreshed price records the API
as its source, the Price List's own SKU, and the date taken. An entry the API does not
answer for, or answers ambiguously or in a foreign unit, keeps its old price and is
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


# catalog unit -> {Price List unit: factor that turns its price into the catalog unit's}
UNIT_CONVERSIONS: dict[str, dict[str, float]] = {
    "Hrs": {"Hrs": 1.0, "Hours": 1.0},
    "GB-Mo": {"GB-Mo": 1.0, "GB-month": 1.0},
    "IOPS-Mo": {"IOPS-Mo": 1.0},
    "MiBps-Mo": {"MiBps-Mo": 1.0, "GiBps-mo": 1 / 1024, "GiBps-Mo": 1 / 1024},
    "GB": {"GB": 1.0},
    "Requests": {"Requests": 1.0},
}


class RefreshError(RuntimeError):
    pass


def convert(usd: float, unit: str, to: str, what: str) -> float:
    """The Price List's `usd` per `unit` as USD per the catalog's unit `to`."""
    factor = UNIT_CONVERSIONS.get(to, {}).get(unit)
    if factor is None:
        raise RefreshError(f"{what}: the Price List prices it per {unit!r}, the catalog per "
                           f"{to!r}, and kdrill knows no conversion")  # fmt: skip
    return usd * factor


def products(client, service: str, filters: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every PriceList item of every page."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        kw = {"NextToken": token} if token else {}
        resp = client.get_products(ServiceCode=service, Filters=filters, MaxResults=100, **kw)
        items += [json.loads(x) if isinstance(x, str) else x for x in resp.get("PriceList", [])]
        token = resp.get("NextToken")
        if not token:
            return items


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
        items = products(client, service, filters_for(p))
        if not items:
            missing.append(f"{p.price_id} ({service} {p.usage_type})")
            continue
        skus = sorted({i["product"]["sku"] for i in items})
        if len(skus) > 1:
            missing.append(f"{p.price_id} ({service} {p.usage_type}): {len(skus)} products match "
                           f"({', '.join(skus[:5])}); the filters must name exactly one")  # fmt: skip
            continue
        usd, unit, aws_sku = on_demand_price(items[0])
        try:
            usd_cat = convert(usd, unit, p.unit, p.price_id)
        except RefreshError as e:
            missing.append(str(e))
            continue
        conv = "" if unit == p.unit else f", {usd:g} USD per {unit} = {usd_cat:g} per {p.unit}"
        source = (f"AWS Price List Query API: pricing.get_products ServiceCode={service} "
                  f"usagetype={p.usage_type} regionCode={p.region} (sku {aws_sku}, unit {unit}{conv})")  # fmt: skip
        prices[key] = replace(p, usd=usd_cat, source=source, taken=today, aws_sku=aws_sku)
        updated.append(p.price_id)
    return (
        Catalog(prices, cat.gb_bytes, cat.hours_per_month, cat.region_names, cat.raw, cat.path),
        updated,
        missing,
    )


def pricing_client():
    import boto3

    return boto3.client("pricing", region_name=PRICING_REGION)

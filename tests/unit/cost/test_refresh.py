"""`kdrill cost refresh` against recorded Price List Query API answers (botocore Stubber)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from drills.cost.catalog import DEFAULT_PATH, Catalog
from drills.cost.refresh import EC2_INSTANCE_FILTERS, RefreshError, on_demand_price, refresh


def item(sku: str, usd: str, unit: str, usagetype: str, tiers=None) -> str:
    """A PriceList entry as get_products returns it (a JSON string)."""
    dims = tiers or {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
        "unit": unit, "beginRange": "0", "endRange": "Inf", "description": "on demand",
        "pricePerUnit": {"USD": usd}}}  # fmt: skip
    return json.dumps({
        "product": {"sku": sku, "productFamily": "x", "attributes": {"usagetype": usagetype}},
        "serviceCode": "x",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {"priceDimensions": dims,
                                                    "effectiveDate": "2026-11-01T00:00:00Z"}}},
        "version": "20261101000000", "publicationDate": "2026-11-20T00:00:00Z",
    })  # fmt: skip


def small_catalog() -> Catalog:
    doc = json.loads(DEFAULT_PATH.read_text())
    keep = {("ec2.instance:m7g.xlarge", "us-west-2"), ("transfer.inter-region:us-west-2", "us-east-1"),
            ("nat.hours", "eu-west-1")}  # fmt: skip
    doc["prices"] = [p for p in doc["prices"] if (p["sku"], p["region"]) in keep]
    return Catalog.from_dict(doc)


def filters(**kw):
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in kw.items()]


def test_refresh_updates_prices_sources_and_dates():
    cat = small_catalog()
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    with Stubber(client) as stub:
        # sorted by (sku, region): ec2.instance, nat.hours, transfer
        stub.add_response(
            "get_products",
            {"PriceList": [item("ABC123EC2", "0.1700000000", "Hrs", "USW2-BoxUsage:m7g.xlarge")],
             "FormatVersion": "aws_v1"},
            {"ServiceCode": "AmazonEC2", "MaxResults": 100,
             "Filters": filters(usagetype="USW2-BoxUsage:m7g.xlarge", regionCode="us-west-2",
                                **EC2_INSTANCE_FILTERS)},
        )  # fmt: skip
        stub.add_response("get_products", {"PriceList": [], "FormatVersion": "aws_v1"},
                          {"ServiceCode": "AmazonEC2", "MaxResults": 100,
                           "Filters": filters(usagetype="EU-NatGateway-Hours", regionCode="eu-west-1")})  # fmt: skip
        stub.add_response(
            "get_products",
            {"PriceList": [item("XFER01", "0.0200000000", "GB", "USE1-USW2-AWS-Out-Bytes")]},
            {"ServiceCode": "AWSDataTransfer", "MaxResults": 100,
             "Filters": filters(usagetype="USE1-USW2-AWS-Out-Bytes")},
        )  # fmt: skip
        new, updated, missing = refresh(cat, client, today="2026-11-27")
        stub.assert_no_pending_responses()
    p = new.price("ec2.instance:m7g.xlarge", "us-west-2")
    assert p.usd == 0.17 and p.aws_sku == "ABC123EC2" and p.taken == "2026-11-27"
    assert p.source.startswith(
        "AWS Price List Query API: pricing.get_products ServiceCode=AmazonEC2"
    )
    assert sorted(updated) == [
        "ec2.instance:m7g.xlarge@us-west-2",
        "transfer.inter-region:us-west-2@us-east-1",
    ]
    assert missing == ["nat.hours@eu-west-1 (AmazonEC2 EU-NatGateway-Hours)"]
    kept = new.price("nat.hours", "eu-west-1")
    assert kept == cat.price("nat.hours", "eu-west-1")  # not zeroed, not re-dated
    assert new.price("transfer.inter-region:us-west-2", "us-east-1").aws_sku == "XFER01"


def test_tiered_price_takes_the_tier_starting_at_zero():
    tiers = {
        "S.T.2": {
            "unit": "GB",
            "beginRange": "10240",
            "endRange": "Inf",
            "pricePerUnit": {"USD": "0.05"},
        },
        "S.T.1": {
            "unit": "GB",
            "beginRange": "0",
            "endRange": "10240",
            "pricePerUnit": {"USD": "0.09"},
        },
    }
    assert on_demand_price(json.loads(item("S", "", "GB", "x", tiers))) == (0.09, "GB", "S")


def test_item_without_on_demand_terms_is_an_error():
    doc = json.loads(item("S", "1", "Hrs", "x"))
    doc["terms"] = {"Reserved": {}}
    with pytest.raises(RefreshError, match="S has no on-demand price"):
        on_demand_price(doc)

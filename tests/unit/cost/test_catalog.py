"""The price catalog: complete for the regions and SKUs drills touch, dated and sourced,
and loud about anything it does not hold."""

from __future__ import annotations

import json
import re

import pytest

from drills.cost.catalog import DEFAULT_PATH, Catalog, CatalogError

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"]
FAMILIES = [
    "ec2.instance:m7g.large", "ec2.instance:m7g.xlarge", "ec2.instance:r7g.large",
    "ebs.gp3.storage", "ebs.gp3.iops", "ebs.gp3.throughput", "ebs.io2.storage", "ebs.io2.iops",
    "s3.standard.storage", "s3.requests.tier1", "s3.requests.tier2", "transfer.cross-az",
    "privatelink.endpoint-hours", "privatelink.bytes", "nat.hours", "nat.bytes",
    "msk.broker:kafka.m7g.large", "msk.storage",
]  # fmt: skip


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.load()


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("sku", FAMILIES)
def test_every_sku_priced_in_every_region(cat, sku, region):
    p = cat.price(sku, region)
    assert p.usd > 0 and p.region == region and p.sku == sku


@pytest.mark.parametrize("src", REGIONS)
def test_inter_region_transfer_priced_for_every_pair(cat, src):
    for dst in REGIONS:
        if dst != src:
            p = cat.price(f"transfer.inter-region:{dst}", src)
            assert p.unit == "GB" and p.usage_type.endswith("-AWS-Out-Bytes")


def test_every_price_has_source_and_date(cat):
    for p in cat.prices.values():
        assert p.source.strip(), p.price_id
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.taken), p.price_id


def test_usage_types_follow_the_cost_and_usage_report(cat):
    assert (
        cat.price("transfer.inter-region:us-west-2", "us-east-1").usage_type
        == "USE1-USW2-AWS-Out-Bytes"
    )
    assert (
        cat.price("transfer.inter-region:us-east-1", "us-west-2").usage_type
        == "USW2-USE1-AWS-Out-Bytes"
    )
    assert (
        cat.price("ec2.instance:m7g.xlarge", "us-west-2").usage_type == "USW2-BoxUsage:m7g.xlarge"
    )
    # us-east-1 has no prefix on EC2/EBS/S3 usage types in the CUR
    assert cat.price("ec2.instance:m7g.xlarge", "us-east-1").usage_type == "BoxUsage:m7g.xlarge"
    assert (
        cat.price("transfer.cross-az", "eu-central-1").usage_type
        == "EUC1-DataTransfer-Regional-Bytes"
    )
    assert cat.price("s3.requests.tier1", "us-west-2").usage_type == "USW2-Requests-Tier1"


def test_gb_is_binary_and_stated(cat):
    assert cat.gb_bytes == 2**30 == 1073741824
    doc = json.loads(DEFAULT_PATH.read_text())["gb_definition"]
    assert "2^30" in doc["statement"] and doc["cite"]


def test_unknown_region_is_a_clear_error(cat):
    with pytest.raises(CatalogError, match=r"region 'ap-south-2' is not in the price catalog"):
        cat.price("ec2.instance:m7g.large", "ap-south-2")


def test_unknown_sku_is_a_clear_error(cat):
    with pytest.raises(
        CatalogError, match=r"SKU 'ec2.instance:x9.huge' is not in the price catalog"
    ):
        cat.price("ec2.instance:x9.huge", "us-east-1")


def test_sku_missing_in_one_region_names_where_it_is_priced():
    doc = json.loads(DEFAULT_PATH.read_text())
    doc["prices"] = [
        p for p in doc["prices"] if not (p["sku"] == "nat.hours" and p["region"] == "eu-west-1")
    ]
    cat = Catalog.from_dict(doc)
    with pytest.raises(CatalogError, match=r"'nat.hours' has no price for eu-west-1.*us-east-1"):
        cat.price("nat.hours", "eu-west-1")


def test_entry_without_source_or_date_is_rejected():
    doc = json.loads(DEFAULT_PATH.read_text())
    doc["prices"][0] = {k: v for k, v in doc["prices"][0].items() if k != "taken"}
    with pytest.raises(CatalogError, match="lacks taken"):
        Catalog.from_dict(doc)


def test_round_trip(tmp_path, cat):
    path = cat.save(tmp_path / "c.json")
    again = Catalog.load(path)
    assert again.prices == cat.prices and again.gb_bytes == cat.gb_bytes

"""Issue 21 items 1-4: billing rules, units and lookups, joining real bills, and the
incremental vs allocated split (each of these failed on the code before)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from components.aws.config import BrokerCapacity, parse_stack_config
from drills.cost.catalog import DEFAULT_PATH, Catalog
from drills.cost.focus import ALLOWED_UNITS, rows, write
from drills.cost.model import (
    ALLOCATED,
    INCREMENTAL,
    Inventory,
    Resource,
    Usage,
    inventory_aws,
    price,
)
from drills.cost.refresh import refresh

GiB = 2**30
STACKS = Path(__file__).resolve().parents[3] / "stacks"
META = {"drill_id": "d1", "drill": "region-loss"}


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.load()


def inv(*resources) -> Inventory:
    return Inventory("t", "aws", "us-east-1", "us-west-2", list(resources))


def window(start: datetime, seconds: float) -> Usage:
    return Usage(start, start + timedelta(seconds=seconds))


T = datetime(2026, 2, 10, 10, 15, tzinfo=UTC)


# --- 1. billing rules ---------------------------------------------------------------------


@pytest.mark.parametrize("sku,usage_type,usd", [
    ("privatelink.endpoint-hours", "USE1-VpcEndpoint-Hours", 0.01),
    ("nat.hours", "NatGateway-Hours", 0.045),
])  # fmt: skip
def test_endpoint_and_nat_hours_are_billed_per_started_hour(cat, sku, usage_type, usd):
    r = Resource(sku, "us-east-1", 2, "x", "x", "x")
    line = price(inv(r), window(T, 30), cat).lines[0]  # a 30 s drill pays one hour per unit
    assert (
        line.usage_type == usage_type and line.quantity == 2 and line.cost == pytest.approx(2 * usd)
    )
    # 10:59:30 - 11:00:30 touches two clock hours
    line = price(inv(r), window(T.replace(minute=59, second=30), 60), cat).lines[0]
    assert line.quantity == 4


def test_launched_ec2_and_ebs_pay_at_least_60_seconds_standing_ones_per_second(cat):
    launched = [Resource("ec2.instance:m7g.large", "us-east-1", 1, "i", "EC2", "b", launched=True),
                Resource("ebs.gp3.storage", "us-east-1", 100, "v", "EBS", "v", launched=True)]  # fmt: skip
    rep = price(inv(*launched), window(T, 20), cat)
    by = {x.usage_type: x for x in rep.lines}
    assert by["BoxUsage:m7g.large"].quantity == pytest.approx(60 / 3600)
    assert by["EBS:VolumeUsage.gp3"].quantity == pytest.approx(
        100 * (60 / 3600) / 672
    )  # Feb: 672 h
    standing = Resource("ec2.instance:m7g.large", "us-east-1", 1, "i", "EC2", "b")
    assert price(inv(standing), window(T, 20), cat).lines[0].quantity == pytest.approx(20 / 3600)


@pytest.mark.parametrize("month,hours", [((2026, 2), 672), ((2026, 4), 720), ((2026, 7), 744)])
def test_gb_month_prorated_by_the_actual_months_hours(cat, month, hours):
    r = Resource("ebs.gp3.storage", "us-east-1", 1000, "v", "EBS", "v")
    start = datetime(*month, 3, tzinfo=UTC)
    line = price(inv(r), window(start, 3600), cat).lines[0]
    assert line.quantity == pytest.approx(1000 / hours)


def test_charge_period_has_the_precision_of_the_quantity(cat):
    r = Resource("ec2.instance:m7g.large", "us-east-1", 1, "i", "EC2", "b")
    start = T + timedelta(microseconds=400_000)
    rep = price(inv(r), Usage(start, start + timedelta(seconds=90.3)), cat)
    (row,) = rows(rep, META)
    a = datetime.strptime(row["ChargePeriodStart"], "%Y-%m-%dT%H:%M:%SZ")
    b = datetime.strptime(row["ChargePeriodEnd"], "%Y-%m-%dT%H:%M:%SZ")
    # the quantity is exactly the exported ChargePeriod's duration, in hours
    assert row["PricingQuantity"] == pytest.approx((b - a).total_seconds() / 3600, rel=1e-9)
    assert (b - a).total_seconds() == 91  # 10:15:00.4 .. 10:16:30.7 on whole seconds


def test_rows_crossing_a_billing_period_are_split(cat):
    r = Resource("ebs.gp3.storage", "us-east-1", 744, "v", "EBS", "v")
    start = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    rep = price(inv(r), window(start, 2 * 3600), cat)
    jan, feb = rep.lines
    assert (jan.start, jan.end, feb.start, feb.end) == (
        "2026-01-31T23:00:00Z", "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-01T01:00:00Z")  # fmt: skip
    assert jan.quantity == pytest.approx(744 / 744) and feb.quantity == pytest.approx(744 / 672)
    out = rows(rep, META)
    assert [x["BillingPeriodStart"] for x in out] == [
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
    ]


# --- 2. units and lookups ---------------------------------------------------------------


def item(sku, usd, unit, usagetype="x"):
    dims = {f"{sku}.A.B": {"unit": unit, "beginRange": "0", "endRange": "Inf",
                           "pricePerUnit": {"USD": usd}, "description": "d"}}  # fmt: skip
    return json.dumps({"product": {"sku": sku, "attributes": {"usagetype": usagetype}},
                       "terms": {"OnDemand": {f"{sku}.A": {"priceDimensions": dims}}}})  # fmt: skip


def one_price_catalog(sku, region, *also) -> Catalog:
    doc = json.loads(DEFAULT_PATH.read_text())
    keep = {(sku, region), *((s, region) for s in also)}
    doc["prices"] = [p for p in doc["prices"] if (p["sku"], p["region"]) in keep]
    return Catalog.from_dict(doc)


def pricing():
    return boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x")  # fmt: skip


def test_refresh_converts_gp3_throughput_from_gibps_month(cat):
    c = one_price_catalog("ebs.gp3.throughput", "us-east-1")
    client = pricing()
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": [item("TPUT", "40.96", "GiBps-mo")],
                                           "FormatVersion": "aws_v1"})  # fmt: skip
        new, updated, problems = refresh(c, client, today="2026-12-01")
    p = new.price("ebs.gp3.throughput", "us-east-1")
    assert p.usd == pytest.approx(0.04) and p.unit == "MiBps-Mo"  # 40.96 / 1024, not 40.96
    assert "GiBps-mo" in p.source and updated and not problems


def test_refresh_refuses_a_unit_it_cannot_convert(cat):
    c = one_price_catalog("ebs.gp3.storage", "us-east-1")
    client = pricing()
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": [item("S", "0.08", "GB-Hrs")]})
        new, updated, problems = refresh(c, client)
    assert not updated and "GB-Hrs" in problems[0]
    assert new.price("ebs.gp3.storage", "us-east-1").usd == 0.08  # old price kept


def test_refresh_pages_and_refuses_more_than_one_match(cat):
    c = one_price_catalog("nat.hours", "us-east-1")
    client = pricing()
    with Stubber(client) as stub:
        stub.add_response(
            "get_products", {"PriceList": [item("A", "0.045", "Hrs")], "NextToken": "t"}
        )
        stub.add_response("get_products", {"PriceList": [item("B", "0.05", "Hrs")]},
                          {"ServiceCode": "AmazonEC2", "Filters": stub_any(), "MaxResults": 100,
                           "NextToken": "t"})  # fmt: skip
        new, updated, problems = refresh(c, client)
        stub.assert_no_pending_responses()
    assert not updated and "2 products match" in problems[0]


def stub_any():
    from botocore.stub import ANY

    return ANY


REGION_PREFIX = {"us-east-1": "", "us-west-2": "USW2-", "eu-west-1": "EU-", "eu-central-1": "EUC1-"}
USE1_PREFIXED = {"AmazonVPC", "AmazonMSK"}  # these services' us-east-1 usage types carry USE1-


def test_usage_types_carry_each_regions_prefix(cat):
    for p in cat.prices.values():
        if p.service_code == "AWSDataTransfer" and "AWS-Out-Bytes" in p.usage_type:
            continue
        want = (
            "USE1-"
            if (p.region == "us-east-1" and p.service_code in USE1_PREFIXED)
            else REGION_PREFIX[p.region]
        )
        rest = p.usage_type[len(want) :]
        assert p.usage_type.startswith(want) and not rest.startswith(
            ("USE1-", "USW2-", "EU-", "EUC1-")
        ), p.price_id


# --- 3. joining real bills --------------------------------------------------------------


def stack_cfg(name):
    raw = yaml.safe_load((STACKS / f"Pulumi.{name}.yaml").read_text())["config"]
    return parse_stack_config({k.split(":", 1)[1]: v for k, v in raw.items()})


def test_service_names_as_aws_bills_them(cat):
    rs = [Resource("ebs.gp3.storage", "us-east-1", 10, "v", "EBS", "v"),
          Resource("nat.hours", "us-east-1", 1, "n", "NAT", "n"),
          Resource("privatelink.endpoint-hours", "us-east-1", 1, "e", "VPCE", "e")]  # fmt: skip
    by = {x.usage_type: x for x in price(inv(*rs), window(T, 60), cat).lines}
    assert by["EBS:VolumeUsage.gp3"].service_name == "Amazon Elastic Compute Cloud"
    assert by["EBS:VolumeUsage.gp3"].service_code == "AmazonEC2"
    assert by["NatGateway-Hours"].service_name == "Amazon Elastic Compute Cloud"
    assert by["NatGateway-Hours"].service_code == "AmazonEC2"
    assert by["USE1-VpcEndpoint-Hours"].service_name == "Amazon Virtual Private Cloud"


def ec2_cfg():
    """The msk stack's regions and volumes with EC2 brokers (an apache-shaped config)."""
    msk = stack_cfg("msk-use1-usw2")
    cap = BrokerCapacity(count=3, instance_type="m7g.xlarge")
    brokers = msk.brokers.model_copy(update={"primary": cap, "standby": cap})
    return msk.model_copy(update={"engine": "apache", "brokers": brokers})


def test_resource_ids_from_stack_outputs_and_bucket_names_on_s3_lines(cat):
    outputs = {"regions": {
        "primary": {"instanceIds": ["i-0aaa", "i-0bbb", "i-0ccc"], "evidenceBucket": "ev-use1"},
        "standby": {"instanceIds": ["i-1aaa", "i-1bbb", "i-1ccc"], "evidenceBucket": "ev-usw2"}}}  # fmt: skip
    i = inventory_aws("apache-like", ec2_cfg(), outputs)
    rep = price(i, Usage(T, T + timedelta(minutes=1), s3_tier1={"us-west-2": 3}), cat)
    ids = {x.resource_id for x in rep.lines if x.usage_type.endswith("BoxUsage:m7g.xlarge")}
    assert ids == {"i-0aaa", "i-0bbb", "i-0ccc", "i-1aaa", "i-1bbb", "i-1ccc"}
    s3 = next(x for x in rep.lines if x.usage_type == "USW2-Requests-Tier1")
    assert s3.resource_id == "ev-usw2" and s3.resource_type == "S3 bucket"
    arn = "arn:aws:kafka:us-east-1:111122223333:cluster/kd/abc"
    msk = inventory_aws("msk-use1-usw2", stack_cfg("msk-use1-usw2"),
                        {"regions": {"primary": {"clusterArn": arn}}})  # fmt: skip
    assert {r.resource_id for r in msk.resources if r.region == "us-east-1"} == {arn}


def test_sku_id_from_the_price_list_units_and_estimate_marking(cat, tmp_path):
    c = one_price_catalog("nat.hours", "us-east-1", "nat.bytes")
    client = pricing()
    with Stubber(client) as stub:  # catalog order: nat.bytes, then nat.hours
        stub.add_response("get_products", {"PriceList": [item("NATGB01", "0.045", "GB")]})
        stub.add_response("get_products", {"PriceList": [item("QZ9ABCD", "0.045", "Hrs")]})
        c, _, _ = refresh(c, client)
    r = Resource("nat.hours", "us-east-1", 1, "nat-0abc", "NAT gateway", "nat")
    u = Usage(T, T + timedelta(seconds=5), nat_bytes={"us-east-1": GiB})
    out = rows(price(inv(r), u, c), META)
    assert {x["SkuId"] for x in out} == {"QZ9ABCD", "NATGB01"}
    assert {x["PricingUnit"] for x in out} == {"Hours", "GiB"} and {
        x["PricingUnit"] for x in out
    } <= ALLOWED_UNITS
    for x in out:  # an estimate, on no invoice: cannot pass for an invoice line
        assert "estimate" in x["BillingAccountId"] and "estimate" in x["BillingAccountName"]
        assert x["InvoiceId"] is None


# --- 4. incremental vs allocated ---------------------------------------------------------


def test_split_incremental_vs_allocated(cat, tmp_path):
    standing = Resource("ec2.instance:m7g.large", "us-east-1", 1, "i", "EC2", "broker")
    extra = Resource("ec2.instance:m7g.large", "us-west-2", 1, "j", "EC2", "extra", launched=True)
    u = Usage(T, T + timedelta(hours=1), transfer_bytes={("us-east-1", "us-west-2"): GiB},
              s3_tier1={"us-west-2": 1000})  # fmt: skip
    rep = price(inv(standing, extra), u, cat)
    split = rep.split()
    assert split[ALLOCATED] == pytest.approx(0.0816)  # the standing broker's hour
    assert split[INCREMENTAL] == pytest.approx(0.0816 + 0.02 + 0.005)  # extra + transfer + PUTs
    assert rep.to_dict()["split_usd"] == {k: round(v, 6) for k, v in split.items()}
    with write(rep, META, tmp_path, "focus-csv").open() as f:
        alloc = {r["x_UsageType"]: r["x_CostAllocation"] for r in csv.DictReader(f)}
    assert (
        alloc["BoxUsage:m7g.large"] == ALLOCATED and alloc["USE1-USW2-AWS-Out-Bytes"] == INCREMENTAL
    )


def test_ephemeral_stack_resources_are_launched_for_the_drill(cat):
    cfg = stack_cfg("msk-use1-usw2").model_copy(update={"environment": "ephemeral",
                                                        "drill_id": "env-42"})  # fmt: skip
    i = inventory_aws("msk-use1-usw2", cfg)
    assert all(r.launched for r in i.resources)
    assert (i.tag_key, i.tag_value, i.ephemeral) == ("kdrill:drill-id", "env-42", True)
    rep = price(i, window(T, 600), cat)
    assert rep.split()[ALLOCATED] == 0 and rep.tag["ephemeral"]


def test_every_price_and_billing_rule_cites_a_page_and_a_sentence(cat):
    from drills.cost.model import MIN_60S, PER_STARTED_HOUR

    rules = cat.raw["billing_rules"]
    assert set(rules["per_started_hour"]["applies_to"]) == set(PER_STARTED_HOUR)
    assert set(rules["per_second_60s_minimum"]["applies_to"]) == set(MIN_60S)
    for rule in rules.values():
        for c in rule["cite"]:
            assert c["page"].startswith("https://") and c["sentence"].endswith(".")
    for p in cat.prices.values():
        if p.aws_sku:  # refreshed: the Price List Query API request is the source
            assert p.source.startswith("AWS Price List Query API"), p.price_id
            continue
        assert p.source.startswith("https://aws.amazon.com/") and " -- " in p.source, p.price_id
        assert '"$' in p.source, p.price_id  # the quoted price sentence

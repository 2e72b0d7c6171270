"""Hand-computed examples for every usage type the model prices.

Catalog prices used (us-east-1 unless said): inter-region $0.02/GB, m7g.xlarge $0.1632/h
(us-west-2), gp3 $0.08/GB-Mo, $0.005/IOPS-Mo, $0.04/MiBps-Mo, io2 $0.125/GB-Mo and
$0.065/IOPS-Mo, S3 $0.005/1000 PUT and $0.0004/1000 GET, cross-AZ $0.01/GB, PrivateLink
$0.012/AZ-h (eu-central-1) and $0.01/GB, NAT $0.045/h and $0.045/GB, MSK kafka.m7g.large
$0.204/h and $0.10/GB-Mo. GB = 2^30 bytes; a month is the calendar month's hours
(T0 is in March: 744 h).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from components.aws.config import parse_stack_config
from components.local import config as local_config
from drills.cost.catalog import Catalog, CatalogError
from drills.cost.model import Inventory, Resource, Usage, inventory_aws, inventory_local, price

GiB = 2**30
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
M = 744  # hours in March 2026, the month T0 is in
STACKS = Path(__file__).resolve().parents[3] / "stacks"


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.load()


def inv(*resources, cross_az=0.0) -> Inventory:
    return Inventory("t", "aws", "us-east-1", "us-west-2", list(resources), cross_az)


def usage(hours: float = 1.0, **kw) -> Usage:
    return Usage(T0, T0 + timedelta(hours=hours), **kw)


def only(report):
    assert len(report.lines) == 1, [x.usage_type for x in report.lines]
    return report.lines[0]


def test_ten_gb_us_east_1_to_us_west_2(cat):
    line = only(price(inv(), usage(transfer_bytes={("us-east-1", "us-west-2"): 10 * GiB}), cat))
    assert line.usage_type == "USE1-USW2-AWS-Out-Bytes"
    assert line.region == "us-east-1"  # charged to the source region
    assert line.quantity == pytest.approx(10.0) and line.unit == "GB"
    assert line.cost == pytest.approx(0.20)


def test_ten_gb_is_binary_not_decimal(cat):
    line = only(price(inv(), usage(transfer_bytes={("us-east-1", "us-west-2"): 10 * 10**9}), cat))
    assert line.cost == pytest.approx(10 * 10**9 / 2**30 * 0.02)  # 9.3132 GB -> $0.186265
    assert line.cost == pytest.approx(0.186264515, rel=1e-6)


def test_ec2_instance_hours(cat):
    r = Resource("ec2.instance:m7g.xlarge", "us-west-2", 3, "i-1", "EC2", "brokers")
    line = only(price(inv(r), usage(hours=2), cat))
    assert line.usage_type == "USW2-BoxUsage:m7g.xlarge"
    assert line.quantity == pytest.approx(6.0) and line.unit == "Hrs"
    assert line.cost == pytest.approx(0.9792)


def test_gp3_storage_iops_throughput_prorated_by_month(cat):
    rs = [Resource("ebs.gp3.storage", "us-east-1", 1000, "v", "EBS", "log"),
          Resource("ebs.gp3.iops", "us-east-1", 3000, "v", "EBS", "iops"),
          Resource("ebs.gp3.throughput", "us-east-1", 375, "v", "EBS", "tp")]  # fmt: skip
    lines = {x.usage_type: x for x in price(inv(*rs), usage(hours=73), cat).lines}
    # 73 h of March's 744 h
    assert lines["EBS:VolumeUsage.gp3"].cost == pytest.approx(1000 * 73 / M * 0.08)  # $7.85
    assert lines["EBS:VolumeP-IOPS.gp3"].cost == pytest.approx(3000 * 73 / M * 0.005)
    assert lines["EBS:VolumeP-Throughput.gp3"].cost == pytest.approx(375 * 73 / M * 0.04)
    assert lines["EBS:VolumeUsage.gp3"].unit == "GB-Mo"


def test_io2_storage_and_iops(cat):
    rs = [Resource("ebs.io2.storage", "us-east-1", 500, "v", "EBS", "wal"),
          Resource("ebs.io2.iops", "us-east-1", 10000, "v", "EBS", "wal iops")]  # fmt: skip
    lines = {x.usage_type: x for x in price(inv(*rs), usage(hours=730), cat).lines}
    assert lines["EBS:VolumeUsage.io2"].cost == pytest.approx(500 * 0.125 * 730 / M)
    assert lines["EBS:VolumeP-IOPS.io2"].cost == pytest.approx(10000 * 0.065 * 730 / M)


def test_s3_request_tiers(cat):
    rep = price(inv(), usage(s3_tier1={"us-east-1": 1000}, s3_tier2={"us-east-1": 10000}), cat)
    lines = {x.usage_type: x for x in rep.lines}
    assert lines["Requests-Tier1"].cost == pytest.approx(0.005)
    assert lines["Requests-Tier2"].cost == pytest.approx(0.004)


def test_s3_standard_storage(cat):
    r = Resource("s3.standard.storage", "us-west-2", 100, "b", "S3 bucket", "evidence")
    assert only(price(inv(r), usage(hours=730), cat)).cost == pytest.approx(100 * 0.023 * 730 / M)


def test_cross_az_charged_in_both_directions(cat):
    rep = price(inv(cross_az=2.0), usage(produced_bytes=GiB), cat)
    assert [x.usage_type for x in rep.lines] == ["DataTransfer-Regional-Bytes"] * 2
    assert all(x.quantity == pytest.approx(2.0) for x in rep.lines)
    assert rep.total == pytest.approx(0.04)  # 2 GB out + 2 GB in at $0.01


def test_privatelink_endpoint_hours_and_bytes(cat):
    r = Resource("privatelink.endpoint-hours", "eu-central-1", 3, "vpce", "endpoint", "apps")
    rep = price(inv(r), usage(hours=10, privatelink_bytes={"eu-central-1": 5 * GiB}), cat)
    lines = {x.usage_type: x for x in rep.lines}
    assert lines["EUC1-VpcEndpoint-Hours"].cost == pytest.approx(30 * 0.012)
    assert lines["EUC1-VpcEndpoint-Bytes"].cost == pytest.approx(0.05)


def test_nat_gateway_hours_and_bytes(cat):
    r = Resource("nat.hours", "us-east-1", 1, "nat-1", "NAT gateway", "nat")
    rep = price(inv(r), usage(hours=2, nat_bytes={"us-east-1": 4 * GiB}), cat)
    lines = {x.usage_type: x for x in rep.lines}
    assert lines["NatGateway-Hours"].cost == pytest.approx(0.09)
    assert lines["NatGateway-Bytes"].cost == pytest.approx(0.18)


def test_msk_broker_hours_and_storage(cat):
    rs = [Resource("msk.broker:kafka.m7g.large", "us-east-1", 3, "b", "MSK broker", "brokers"),
          Resource("msk.storage", "us-east-1", 3000, "s", "MSK storage", "storage")]  # fmt: skip
    lines = {x.usage_type: x for x in price(inv(*rs), usage(hours=1), cat).lines}
    assert lines["USE1-Kafka.m7g.large"].cost == pytest.approx(0.612)
    assert lines["USE1-Kafka.Storage.GP2"].cost == pytest.approx(3000 / M * 0.10)


def test_unknown_region_in_the_inventory_fails_loudly(cat):
    r = Resource("ec2.instance:m7g.large", "sa-east-1", 1, "i", "EC2", "x")
    with pytest.raises(CatalogError, match="sa-east-1"):
        price(inv(r), usage(), cat)
    with pytest.raises(CatalogError, match="ap-east-1"):
        price(inv(), usage(transfer_bytes={("ap-east-1", "us-east-1"): GiB}), cat)


def test_local_stack_is_priced_as_the_aws_regions_it_stands_for(cat):
    i = inventory_local(local_config.load("local"))
    assert (i.mode, i.primary, i.standby) == ("local", "us-east-1", "us-west-2")
    assert "no AWS resources ran" in i.note and "us-east-1 (for local region east)" in i.note
    rep = price(i, usage(hours=1, transfer_bytes={("us-east-1", "us-west-2"): GiB}), cat)
    assert {x.region for x in rep.lines} == {"us-east-1", "us-west-2"}
    assert all("local stack: priced as us-east-1/us-west-2" in x.description for x in rep.lines)
    # 1 broker per region + MM2 in the standby, m7g.large at $0.0816/h; 100 GiB gp3 each
    hours = [x for x in rep.lines if x.unit == "Hrs"]
    assert sum(x.cost for x in hours) == pytest.approx(3 * 0.0816)
    assert rep.total == pytest.approx(3 * 0.0816 + 2 * 100 / M * 0.08 + 0.02)


@pytest.mark.parametrize("stack", ["msk-use1-usw2", "apache-use1-usw2", "automq-use1-usw2"])
def test_every_aws_stack_prices_without_gaps(cat, stack):
    raw = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]
    cfg = parse_stack_config({k.split(":", 1)[1]: v for k, v in raw.items()})
    i = inventory_aws(stack, cfg)
    rep = price(i, usage(hours=1), cat)
    assert rep.total > 0 and len(rep.lines) == len(i.resources)
    assert {x.region for x in rep.lines} == {"us-east-1", "us-west-2"}


def test_apache_stack_hand_computed(cat):
    raw = yaml.safe_load((STACKS / "Pulumi.apache-use1-usw2.yaml").read_text())["config"]
    cfg = parse_stack_config({k.split(":", 1)[1]: v for k, v in raw.items()})
    rep = price(inventory_aws("apache-use1-usw2", cfg), usage(hours=1), cat)
    by = {}
    for x in rep.lines:
        by[x.usage_type] = by.get(x.usage_type, 0) + x.cost
    # 3 x m7g.xlarge per region, 1000 GiB gp3 with 6000 IOPS and 500 MiB/s each
    assert by["BoxUsage:m7g.xlarge"] == pytest.approx(3 * 0.1632)
    assert by["EBS:VolumeUsage.gp3"] == pytest.approx(3 * 1000 / M * 0.08)
    assert by["EBS:VolumeP-IOPS.gp3"] == pytest.approx(3 * 3000 / M * 0.005)
    assert by["EBS:VolumeP-Throughput.gp3"] == pytest.approx(3 * 375 / M * 0.04)
    assert by["USE1-VpcEndpoint-Hours"] == pytest.approx(0.01)  # one client VPC, one subnet
    assert "Transit gateway attachment hours and data processing" in rep.not_priced

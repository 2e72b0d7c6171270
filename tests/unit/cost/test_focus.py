"""The FOCUS 1.2 export: mandatory columns, allowed category pairs, the drill's window and tags."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from components.local import config as local_config
from drills.cost.catalog import Catalog
from drills.cost.focus import COLUMNS, write
from drills.cost.model import Usage, inventory_local, price

MANDATORY_1_2 = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName",
]  # fmt: skip
NOT_NULL = set(MANDATORY_1_2) - {"ChargeClass"}  # ChargeClass is null unless a correction
ALLOWED_PAIRS = {
    ("Compute", "Virtual Machines"), ("Storage", "Block Storage"), ("Storage", "Object Storage"),
    ("Networking", "Network Connectivity"), ("Networking", "Network Infrastructure"),
    ("Analytics", "Streaming Analytics"),
}  # fmt: skip
T0 = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
META = {"drill_id": "a1b2c3", "drill": "region-loss", "run_dir": "20261231-235930-region-loss"}


@pytest.fixture(scope="module")
def report():
    cat = Catalog.load()
    inv = inventory_local(local_config.load("local"))
    u = Usage(T0, T0 + timedelta(seconds=75), transfer_bytes={("us-east-1", "us-west-2"): 3 * 2**20},
              s3_tier1={"us-west-2": 14})  # fmt: skip
    return price(inv, u, cat)


def read_csv(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_csv_has_every_mandatory_column_filled(report, tmp_path):
    rows = read_csv(write(report, META, tmp_path, "focus-csv"))
    assert len(rows) == len(report.lines) == 14  # 7 lines, each split at the month boundary
    for col in MANDATORY_1_2:
        assert col in rows[0], col
    for r in rows:
        for col in NOT_NULL:
            assert r[col] != "", (col, r["x_UsageType"])
        assert r["ChargeCategory"] == "Usage" and r["ChargeClass"] == ""
        assert (r["ServiceCategory"], r["ServiceSubcategory"]) in ALLOWED_PAIRS


def test_rows_crossing_a_billing_period_are_split_at_the_boundary(report, tmp_path):
    rows = read_csv(write(report, META, tmp_path, "focus-csv", Catalog.load().region_name))
    dec, jan = [x for x in rows if x["x_UsageType"] == "USE1-USW2-AWS-Out-Bytes"]
    assert (dec["ChargePeriodStart"], dec["ChargePeriodEnd"]) == (
        "2026-12-31T23:59:30Z", "2027-01-01T00:00:00Z")  # fmt: skip
    assert (dec["BillingPeriodStart"], dec["BillingPeriodEnd"]) == (
        "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")  # fmt: skip
    assert (jan["ChargePeriodStart"], jan["ChargePeriodEnd"]) == (
        "2027-01-01T00:00:00Z", "2027-01-01T00:00:45Z")  # fmt: skip
    assert (jan["BillingPeriodStart"], jan["BillingPeriodEnd"]) == (
        "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z")  # fmt: skip
    for r in rows:  # no row leaves its billing period
        assert (
            r["BillingPeriodStart"]
            <= r["ChargePeriodStart"]
            < r["ChargePeriodEnd"]
            <= r["BillingPeriodEnd"]
        )
    # 3 MiB over 75 s, split by time: 30 s in December, 45 s in January
    assert float(dec["PricingQuantity"]) == pytest.approx(3 / 1024 * 30 / 75)
    assert float(jan["PricingQuantity"]) == pytest.approx(3 / 1024 * 45 / 75)
    assert dec["PricingUnit"] == "GiB"  # the catalog's GB is 2^30 bytes
    assert float(dec["BilledCost"]) + float(jan["BilledCost"]) == pytest.approx(3 / 1024 * 0.02)
    assert dec["BilledCost"] == dec["EffectiveCost"] == dec["ListCost"] == dec["ContractedCost"]
    assert dec["RegionId"] == "us-east-1" and dec["RegionName"] == "US East (N. Virginia)"
    total = sum(float(x["BilledCost"]) for x in rows)
    assert total == pytest.approx(report.total)


def test_tags_and_custom_columns(report, tmp_path):
    rows = read_csv(write(report, META, tmp_path, "focus-csv"))
    for r in rows:
        tags = json.loads(r["Tags"])
        assert tags["kdrill:drill-id"] == "a1b2c3" and tags["kdrill:drill"] == "region-loss"
        assert r["x_DrillId"] == "a1b2c3" and r["x_DrillPhase"] == "drill"
        assert r["x_StackMode"] == "local" and r["x_PriceTaken"]
    custom = [c for c in COLUMNS if c[0].islower()]
    assert custom and all(c.startswith("x_") for c in custom)


def test_parquet_types(report, tmp_path):
    t = pq.read_table(write(report, META, tmp_path, "focus-parquet"))
    assert t.num_rows == 14 and t.column_names == COLUMNS
    assert str(t.schema.field("BilledCost").type) == "double"
    assert str(t.schema.field("ChargePeriodStart").type).endswith("tz=UTC]")


def test_json_carries_the_report(report, tmp_path):
    doc = json.loads(write(report, META, tmp_path, "json").read_text())
    assert doc["focus_version"] == "1.2" and len(doc["rows"]) == 14
    assert doc["report"]["total_usd"] == pytest.approx(report.total, abs=1e-6)


def test_unknown_format(report, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'xlsx'"):
        write(report, META, tmp_path, "xlsx")

"""`kdrill cost reconcile` against recorded Cost Explorer answers (botocore Stubber)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from components.local import config as local_config
from drills.cost.catalog import Catalog
from drills.cost.focus import write
from drills.cost.model import Usage, inventory_local, price
from drills.cost.reconcile import ReconcileError, reconcile

T0 = datetime(2026, 11, 26, 23, 59, tzinfo=UTC)


@pytest.fixture
def run_dir(tmp_path):
    rep = price(inventory_local(local_config.load("local")),
                Usage(T0, T0 + timedelta(minutes=2), transfer_bytes={("us-east-1", "us-west-2"): 2**30},
                      s3_tier1={"us-west-2": 10}), Catalog.load())  # fmt: skip
    write(rep, {"drill_id": "d00d42", "drill": "region-loss"}, tmp_path, "json")
    return tmp_path


def ce():
    return boto3.client(
        "ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def expected_request():
    return {
        "TimePeriod": {"Start": "2026-11-26", "End": "2026-11-28"},  # the window crosses midnight
        "Granularity": "DAILY",
        "Filter": {
            "Tags": {"Key": "kdrill:drill-id", "Values": ["d00d42"], "MatchOptions": ["EQUALS"]}
        },
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }


def group(service, amount):
    return {"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}


def test_estimate_against_actuals_per_service(run_dir):
    client = ce()
    resp = {"ResultsByTime": [
        {"TimePeriod": {"Start": "2026-11-26", "End": "2026-11-27"}, "Total": {},
         "Groups": [group("Amazon Elastic Compute Cloud - Compute", "0.0020")], "Estimated": True},
        {"TimePeriod": {"Start": "2026-11-27", "End": "2026-11-28"}, "Total": {},
         "Groups": [group("Amazon Elastic Compute Cloud - Compute", "0.0030"),
                    group("AWS Data Transfer", "0.0200")], "Estimated": True},
    ], "DimensionValueAttributes": []}  # fmt: skip
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", resp, expected_request())
        rec = reconcile(run_dir, client)
    rows = {r["service"]: r for r in rec.rows}
    ec2 = rows["Amazon Elastic Compute Cloud - Compute"]
    est = 3 * 0.0816 * 2 / 60  # two brokers + MM2 for two minutes
    assert ec2["estimate_usd"] == pytest.approx(est, abs=1e-6)
    assert ec2["actual_usd"] == pytest.approx(0.005) and ec2["delta_usd"] == pytest.approx(
        0.005 - est, abs=1e-6
    )
    assert rows["AWS Data Transfer"]["estimate_usd"] == pytest.approx(0.02)
    assert rows["AWS Data Transfer"]["delta_usd"] == pytest.approx(0.0)
    s3 = rows["Amazon Simple Storage Service"]  # absent from Cost Explorer's answer: no cost
    assert s3["actual_usd"] == 0.0 and s3["delta_usd"] == pytest.approx(-10 * 0.000005)
    assert rec.actuals_available and "estimated" in rec.message
    assert any("AWS Data Transfer" in x for x in rec.lines())


def test_no_actuals_yet_says_why(run_dir):
    client = ce()
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": [
            {"TimePeriod": {"Start": "2026-11-26", "End": "2026-11-27"}, "Total": {}, "Groups": [],
             "Estimated": True}]}, expected_request())  # fmt: skip
        rec = reconcile(run_dir, client)
    assert not rec.actuals_available
    assert all(r["actual_usd"] is None for r in rec.rows)  # unknown, not zero
    assert "no actuals yet" in rec.message and "lags up to 24 hours" in rec.message
    assert "activated as a cost allocation tag" in rec.message and "local stack" in rec.message


def test_data_unavailable_is_no_actuals(run_dir):
    client = ce()
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", "DataUnavailableException", "not yet")
        rec = reconcile(run_dir, client)
    assert not rec.actuals_available and "no actuals yet" in rec.message


def test_access_denied_is_a_clear_error(run_dir):
    client = ce()
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_cost_and_usage", "AccessDeniedException", "not authorized to ce:GetCostAndUsage"
        )
        with pytest.raises(ReconcileError, match="Cost Explorer refused: AccessDeniedException"):
            reconcile(run_dir, client)


def test_missing_credentials(run_dir, monkeypatch, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client("ce", region_name="us-east-1")
    with pytest.raises(ReconcileError, match="no AWS credentials"):
        reconcile(run_dir, client)


def test_no_cost_export(tmp_path):
    with pytest.raises(ReconcileError, match="no cost.json"):
        reconcile(tmp_path, ce())


def test_secrets_never_in_the_export(run_dir):
    text = (run_dir / "cost.json").read_text()
    assert "aws_secret" not in text.lower() and "AKIA" not in text
    json.loads(text)

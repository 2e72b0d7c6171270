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


def expected_request(granularity="HOURLY", key="kdrill:stack", value="local", token=None):
    period = ({"Start": "2026-11-26T23:00:00Z", "End": "2026-11-27T01:00:00Z"}  # touched hours
              if granularity == "HOURLY" else {"Start": "2026-11-26", "End": "2026-11-28"})  # fmt: skip
    req = {
        "TimePeriod": period,
        "Granularity": granularity,
        "Filter": {"And": [
            {"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}},
            {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Usage"]}},
        ]},
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"},
                    {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
    }  # fmt: skip
    if token:
        req["NextPageToken"] = token
    return req


def group(service, usage_type, amount):
    return {"Keys": [service, usage_type],
            "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}  # fmt: skip


def hour(start, end, *groups, estimated=True):
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": list(groups),
            "Estimated": estimated}  # fmt: skip


EC2 = "Amazon Elastic Compute Cloud - Compute"


def test_estimate_against_actuals_per_service_and_usage_type_every_page(run_dir):
    client = ce()
    page1 = {"ResultsByTime": [hour("2026-11-26T23:00:00Z", "2026-11-27T00:00:00Z",
                                    group(EC2, "BoxUsage:m7g.large", "0.0010"))],
             "NextPageToken": "p2", "DimensionValueAttributes": []}  # fmt: skip
    page2 = {"ResultsByTime": [hour("2026-11-27T00:00:00Z", "2026-11-27T01:00:00Z",
                                    group(EC2, "BoxUsage:m7g.large", "0.0010"),
                                    group("EC2 - Other", "USE1-USW2-AWS-Out-Bytes", "0.0200"))],
             "DimensionValueAttributes": []}  # fmt: skip
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", page1, expected_request())
        stub.add_response("get_cost_and_usage", page2, expected_request(token="p2"))
        rec = reconcile(run_dir, client)
        stub.assert_no_pending_responses()
    rows = {(r["service"], r["usage_type"]): r for r in rec.rows}
    box = rows[(EC2, "BoxUsage:m7g.large")]  # us-east-1 broker, both pages added up
    assert box["estimate_usd"] == pytest.approx(0.0816 * 2 / 60, abs=1e-6)
    assert box["actual_usd"] == pytest.approx(0.002)
    # inter-region transfer is "EC2 - Other" in Cost Explorer, not "AWS Data Transfer"
    xfer = rows[("EC2 - Other", "USE1-USW2-AWS-Out-Bytes")]
    assert xfer["estimate_usd"] == pytest.approx(0.02) and xfer["delta_usd"] == pytest.approx(0)
    s3 = rows[("Amazon Simple Storage Service", "USW2-Requests-Tier1")]  # absent: no cost
    assert s3["actual_usd"] == 0.0 and s3["delta_usd"] == pytest.approx(-10 * 0.000005)
    assert rec.actuals_available and rec.granularity == "HOURLY" and "estimated" in rec.message
    text = "\n".join(rec.lines())
    assert "RECORD_TYPE Usage" in text and "persistent stack" in text
    assert "allocation of the stack's cost to the drill window" in text


def test_hourly_not_enabled_falls_back_to_daily_and_says_so(run_dir):
    client = ce()
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", "ValidationException",
                              "Hourly granularity is not enabled for this account",
                              expected_params=expected_request())  # fmt: skip
        stub.add_response("get_cost_and_usage", {"ResultsByTime": [
            hour("2026-11-26", "2026-11-27", group(EC2, "BoxUsage:m7g.large", "0.5"))]},
            expected_request("DAILY"))  # fmt: skip
        rec = reconcile(run_dir, client)
    assert rec.granularity == "DAILY" and rec.actuals_available
    assert any("hourly granularity is not enabled" in n for n in rec.notes)


def test_ephemeral_env_filters_on_its_env_id(run_dir):
    doc = json.loads((run_dir / "cost.json").read_text())
    doc["report"]["tag"] = {"key": "kdrill:drill-id", "value": "env-7f3a", "ephemeral": True}
    (run_dir / "cost.json").write_text(json.dumps(doc))
    client = ce()
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": []},
                          expected_request(key="kdrill:drill-id", value="env-7f3a"))  # fmt: skip
        rec = reconcile(run_dir, client)
    assert rec.tag == ("kdrill:drill-id", "env-7f3a")
    assert any("ephemeral environment" in n for n in rec.notes)


def test_no_actuals_yet_says_why(run_dir):
    client = ce()
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": [
            hour("2026-11-26T23:00:00Z", "2026-11-27T00:00:00Z")]}, expected_request())  # fmt: skip
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

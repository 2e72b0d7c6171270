"""kdrill's own FOCUS checks and the validator's acceptance rule (issue 21 item 7)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from components.local import config as local_config
from drills.cost import checks
from drills.cost.catalog import Catalog
from drills.cost.focus import rows
from drills.cost.model import Usage, inventory_local, price

T = datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def report():
    u = Usage(T, T + timedelta(seconds=95), transfer_bytes={("us-east-1", "us-west-2"): 2**28},
              s3_tier1={"us-west-2": 12})  # fmt: skip
    return price(inventory_local(local_config.load("local")), u, Catalog.load())


@pytest.fixture
def good(report):
    return rows(report, {"drill_id": "d", "drill": "x"})


def test_a_real_export_passes(good, report):
    assert checks.check_rows(good, report.total) == []


def test_list_cost_must_be_unit_price_times_quantity(good, report):
    bad = copy.deepcopy(good)
    bad[0]["ListCost"] = bad[0]["ListCost"] * 2
    assert any("ListCost" in p for p in checks.check_rows(bad, None))


def test_billed_cost_must_add_up_to_the_runs_total(good, report):
    assert any("sum of BilledCost" in p for p in checks.check_rows(good, report.total + 0.01))


def test_charge_period_within_billing_period(good):
    bad = copy.deepcopy(good)
    bad[0]["ChargePeriodEnd"] = "2027-01-01T00:00:05Z"  # past December's billing period
    assert any("not within BillingPeriod" in p for p in checks.check_rows(bad))


def test_units_from_the_allowed_set(good):
    bad = copy.deepcopy(good)
    bad[0]["PricingUnit"] = "GB-Mo"  # a price-list unit, not a FOCUS one
    assert any("PricingUnit 'GB-Mo'" in p for p in checks.check_rows(bad))


def rule_file(tmp_path, cond4, cond5):
    rules = {"ModelRules": {
        "InvoiceId-C-004-C": {"ValidationCriteria": {"Condition": cond4}},
        "InvoiceId-C-005-C": {"ValidationCriteria": {"Condition": cond5}},
    }}  # fmt: skip
    p = tmp_path / "model-1.2.0.1.json"
    p.write_text(json.dumps(rules))
    return p


def test_allowance_only_while_the_rule_file_has_the_empty_conditions(tmp_path):
    fixed = {"CheckFunction": "CheckValue", "ColumnName": "x", "Value": None}
    assert checks.allowed_failures(rule_file(tmp_path, {}, {})) == {"InvoiceId-C-005-C"}
    assert checks.allowed_failures(rule_file(tmp_path, fixed, {})) == set()
    assert checks.allowed_failures(rule_file(tmp_path, fixed, fixed)) == set()
    assert checks.allowed_failures(None) == set()


def test_acceptance_rule():
    allow = {"InvoiceId-C-005-C"}
    assert checks.accepted("Pass: 130 | Fail: 0 | Skipped: 441", set(), set())
    assert checks.accepted("Pass: 130 | Fail: 1 | Skipped: 441", allow, allow)
    assert not checks.accepted("Pass: 130 | Fail: 1 | Skipped: 441", allow, set())  # fixed upstream
    assert not checks.accepted("Pass: 130 | Fail: 2", allow | {"Tags-C-001-M"}, allow)
    assert not checks.accepted("Pass: 130 | Fail: 1", {"BilledCost-C-001-M"}, allow)
    assert not checks.accepted("", set(), allow)


def test_validate_runs_the_checks_and_refuses_without_a_validator(
    tmp_path, report, monkeypatch, capsys
):
    from drills.cost.focus import write

    write(report, {"drill_id": "d", "drill": "x"}, tmp_path, "focus-csv")
    write(report, {"drill_id": "d", "drill": "x"}, tmp_path, "json")
    monkeypatch.setenv("KDRILL_CACHE", str(tmp_path / "empty-cache"))
    assert checks.validate_path(tmp_path, setup=False, say=print) == 2
    out = capsys.readouterr().out
    assert "cost-focus.csv: kdrill checks: pass" in out and "not set up" in out


def test_setup_script_pins_the_version_and_the_rule_files_checksum():
    text = (checks.ROOT / "tools" / "setup-focus-validator.sh").read_text()
    assert f"FV_VERSION={checks.VALIDATOR_VERSION}" in text
    assert checks.RULES_SHA256 in text


def test_one_category_per_service_name(good):
    bad = copy.deepcopy(good)
    bad[0]["ServiceCategory"] = "Storage"  # EC2 lines split over two categories
    assert any("more than one ServiceCategory" in p for p in checks.check_rows(bad))

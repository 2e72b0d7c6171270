"""`kdrill cost standby` (issue 21 item 5): the monthly cost of keeping the standby ready."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest

from drills.cli import main
from drills.cost.catalog import Catalog
from drills.cost.model import ALLOCATED, inventory_aws
from drills.cost.standby import StandbyAssumptions, load_stack, standby_for, standby_report

DEC = datetime(2026, 12, 5, tzinfo=UTC)  # 744 h
MiB = 2**20


@pytest.fixture(scope="module")
def cat():
    return Catalog.load()


def by_type(rep):
    out: dict[str, float] = {}
    for x in rep.lines:
        out[x.usage_type] = out.get(x.usage_type, 0.0) + x.cost
    return out


def test_msk_standby_hand_computed(cat):
    a = StandbyAssumptions(rate_bytes_per_s=2 * MiB, rate_source="configured 2 MiB/s", month=DEC)
    rep = standby_report(inventory_aws("msk-use1-usw2", load_stack("msk-use1-usw2")), cat, a,
                         load_stack("msk-use1-usw2"))  # fmt: skip
    t = by_type(rep)
    gib = 2 * MiB * 744 * 3600 / 2**30  # 5231.25 GiB replicated in December
    assert t["USW2-Kafka.m7g.large"] == pytest.approx(3 * 744 * 0.204)  # standby brokers only
    assert "USE1-Kafka.m7g.large" not in t
    assert t["USW2-Kafka.Storage.GP2"] == pytest.approx(3 * 1000 * 0.10)  # one whole month
    assert t["USW2-Kafka.Replicator.Hours"] == pytest.approx(744 * 0.3)
    assert t["USW2-Kafka.Replicator.Bytes"] == pytest.approx(gib * 0.08)
    assert t["USE1-USW2-AWS-Out-Bytes"] == pytest.approx((gib + 1) * 0.02)  # + evidence CRR
    assert all(x.allocation == ALLOCATED for x in rep.lines)
    assert any("Savings Plans" in n for n in rep.assumptions["notes"])


def test_automq_prices_its_s3_storage_requests_and_replication(cat):
    cfg = load_stack("automq-use1-usw2")
    a = StandbyAssumptions(rate_bytes_per_s=8 * MiB, rate_source="configured", month=DEC,
                           automq_retained_gib=1000)  # fmt: skip
    t = by_type(standby_report(inventory_aws("automq-use1-usw2", cfg), cat, a, cfg))
    secs = 744 * 3600
    puts = (1 + 4 * cfg.brokers.standby.count) * secs  # one 8 MiB object/s + WAL uploads
    replicas = 2 * 2**30 // (4 * MiB)  # evidence + ops replicas, 4 MiB objects
    assert t["USW2-Requests-Tier1"] == pytest.approx((puts + replicas) * 0.005 / 1000, rel=1e-6)
    assert t["USW2-Requests-Tier2"] == pytest.approx(puts * 0.0004 / 1000, rel=1e-6)
    assert t["USW2-TimedStorage-ByteHrs"] == pytest.approx((1000 + 2) * 0.023)


def test_nat_gateways_per_started_hour(cat):
    a = StandbyAssumptions(month=DEC, nat_gateways=2)
    t = by_type(standby_for("local", cat, a))
    assert t["USW2-NatGateway-Hours"] == pytest.approx(2 * 744 * 0.045)


def test_local_priced_as_an_aws_stack(cat):
    a = StandbyAssumptions(month=DEC)
    rep = standby_for("local", cat, a, price_as="apache-use1-usw2")
    assert "as apache-use1-usw2" in rep.stack
    assert "USW2-BoxUsage:m7g.xlarge" in by_type(rep)


@pytest.mark.parametrize(
    "stack", ["local", "msk-use1-usw2", "apache-use1-usw2", "automq-use1-usw2"]
)
def test_cli_prints_a_monthly_table_and_writes_focus(stack, tmp_path, capsys):
    assert main(["cost", "standby", "--stack", stack, "--month", "2026-12", "--rate-mibps", "1",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"standby cost of {stack} for 2026-12" in out and "total" in out
    with (tmp_path / "standby-focus.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["x_DrillPhase"] for r in rows} == {"standby"}
    assert {r["ChargePeriodStart"] for r in rows} == {"2026-12-01T00:00:00Z"}


def test_cli_unknown_stack_is_one_line(capsys):
    assert main(["cost", "standby", "--stack", "nope"]) == 2
    assert "no stack 'nope'" in capsys.readouterr().out


def test_export_out_directory_is_created(tmp_path, capsys):
    """`kdrill cost export RUN --out NEW_DIR` writes into a directory it creates."""
    import json
    from datetime import timedelta

    from components.local import config as local_config
    from drills.cost.model import Usage, inventory_local, price

    rep = price(
        inventory_local(local_config.load("local")),
        Usage(DEC, DEC + timedelta(seconds=40)),
        Catalog.load(),
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "evidence.json").write_text(
        json.dumps({"run_id": "r1", "drill": "x", "cost": {"final": rep.to_dict()}})
    )
    assert main(["cost", "export", str(run), "--out", str(tmp_path / "new" / "dir")]) == 0
    assert (tmp_path / "new" / "dir" / "cost-focus.csv").exists()

"""`kdrill cost reconcile RUN_DIR`: the drill's estimate against AWS Cost Explorer's actuals.

Asks `ce.get_cost_and_usage` for the UnblendedCost of resources tagged with the drill's id
(the `kdrill:drill-id` cost allocation tag) over the days the drill window touches, grouped
by SERVICE, and compares each service with the estimate's lines. Cost Explorer lags up to a
day and attributes only tagged resources whose tag is activated for cost allocation, so
"no actuals" is reported as that, never as a zero actual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drills.cost.focus import DRILL_ID_TAG
from drills.cost.model import CE_SERVICE


class ReconcileError(RuntimeError):
    """A message for the user: no credentials, no access, no evidence to reconcile."""


@dataclass
class Reconciliation:
    drill_id: str
    window: tuple[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # service, estimate, actual, delta
    actuals_available: bool = False
    estimated_by_ce: bool = False
    message: str = ""

    def lines(self) -> list[str]:
        out = [f"drill {self.drill_id}: {self.window[0]} .. {self.window[1]}"]
        out.append(
            f"  {'service (Cost Explorer)':<46} {'estimate':>12} {'actual':>12} {'delta':>12}"
        )
        for r in self.rows:
            act = "n/a" if r["actual_usd"] is None else f"{r['actual_usd']:.6f}"
            delta = "n/a" if r["delta_usd"] is None else f"{r['delta_usd']:+.6f}"
            out.append(f"  {r['service']:<46} {r['estimate_usd']:>12.6f} {act:>12} {delta:>12}")
        if self.message:
            out.append(self.message)
        return out


def load_estimate(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "cost.json"
    if not path.exists():
        ev = Path(run_dir) / "evidence.json"
        if ev.exists():
            cost = json.loads(ev.read_text()).get("cost") or {}
            if cost.get("final"):
                return {"report": cost["final"], "rows": [],
                        "drill_id": json.loads(ev.read_text())["run_id"]}  # fmt: skip
        raise ReconcileError(
            f"{run_dir}: no cost.json (run `kdrill cost export {run_dir} --format json` first)"
        )
    doc = json.loads(path.read_text())
    drill_id = doc["rows"][0]["x_DrillId"] if doc.get("rows") else None
    if drill_id is None:
        ev = json.loads((Path(run_dir) / "evidence.json").read_text())
        drill_id = ev["run_id"]
    return doc | {"drill_id": drill_id}


def query(ce, drill_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The Cost Explorer request for the drill's tag over whole days covering [start, end)."""
    day0 = start.astimezone(UTC).date()
    day1 = end.astimezone(UTC).date() + timedelta(days=1)  # End is exclusive
    return ce.get_cost_and_usage(
        TimePeriod={"Start": day0.isoformat(), "End": day1.isoformat()},
        Granularity="DAILY",
        Filter={"Tags": {"Key": DRILL_ID_TAG, "Values": [drill_id], "MatchOptions": ["EQUALS"]}},
        Metrics=["UnblendedCost"],
        GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}],
    )


def reconcile(run_dir: Path, ce) -> Reconciliation:
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    est = load_estimate(run_dir)
    report = est["report"]
    start = datetime.strptime(report["window"]["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    end = datetime.strptime(report["window"]["end"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    rec = Reconciliation(est["drill_id"], (report["window"]["start"], report["window"]["end"]))
    estimate: dict[str, float] = {}
    for x in report["lines"]:
        svc = CE_SERVICE.get(x["service_code"], x["service_name"])
        estimate[svc] = estimate.get(svc, 0.0) + x["cost"]
    try:
        resp = query(ce, rec.drill_id, start, end)
    except (NoCredentialsError, PartialCredentialsError):
        raise ReconcileError(
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(Cost Explorer needs ce:GetCostAndUsage)"
        ) from None
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "DataUnavailableException":
            resp = {"ResultsByTime": []}
        else:
            msg = e.response.get("Error", {}).get("Message", "")
            raise ReconcileError(f"Cost Explorer refused: {code}: {msg}") from None
    actual: dict[str, float] = {}
    for period in resp.get("ResultsByTime", []):
        rec.estimated_by_ce |= bool(period.get("Estimated"))
        for g in period.get("Groups", []):
            amount = float(g["Metrics"]["UnblendedCost"]["Amount"])
            actual[g["Keys"][0]] = actual.get(g["Keys"][0], 0.0) + amount
    rec.actuals_available = bool(actual)
    for svc in sorted(set(estimate) | set(actual)):
        # Cost Explorer lists only services with a cost: once it answers, absent means 0
        a = actual.get(svc, 0.0) if rec.actuals_available else None
        e_ = estimate.get(svc, 0.0)
        rec.rows.append({"service": svc, "estimate_usd": round(e_, 6),
                         "actual_usd": None if a is None else round(a, 6),
                         "delta_usd": None if a is None else round(a - e_, 6)})  # fmt: skip
    if not rec.actuals_available:
        local = report.get("mode") == "local"
        rec.message = (
            "no actuals yet: Cost Explorer shows no cost tagged "
            f"{DRILL_ID_TAG}={rec.drill_id} for these days. It lags up to 24 hours, and attributes "
            f"only resources carrying the tag once {DRILL_ID_TAG} is activated as a cost allocation tag"
            + (
                "; this drill ran on the local stack, so no AWS resource carries it"
                if local
                else ""
            )
        )
    elif rec.estimated_by_ce:
        rec.message = "Cost Explorer marks these actuals as estimated: the month is not closed yet"
    return rec


def ce_client():
    import boto3

    return boto3.client("ce", region_name="us-east-1")

"""`kdrill cost reconcile RUN_DIR`: the drill's estimate against AWS Cost Explorer's actuals.

Asks `ce.get_cost_and_usage` (UnblendedCost, RECORD_TYPE Usage only: no credits, refunds or
taxes) for the cost allocation tag the stack's resources carry, grouped by SERVICE and
USAGE_TYPE (inter-region transfer, EBS and NAT appear under "EC2 - Other"), every page
(NextPageToken), and compares it with the estimate per service and usage type.

Which tag: an ephemeral environment stamps its env id on every resource as
`kdrill:drill-id`, so its actuals are the drill's own. A persistent stack carries
`kdrill:stack`: its actuals are everything tagged with the stack during the drill's hours
-- the standing cost of those hours plus whatever else ran on the stack -- so the
comparison is an allocation of the stack's cost to the drill window, not the drill's cost.

Granularity: HOURLY over the clock hours the window touches, where the account has hourly
granularity enabled (Cost Explorer settings); otherwise DAILY over whole days, said so.
Cost Explorer lags up to a day and attributes only resources whose tag is activated for
cost allocation, so "no actuals" is reported as that, never as a zero actual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drills.cost.focus import DRILL_ID_TAG
from drills.cost.model import CE_SERVICE, family

STACK_TAG = "kdrill:stack"  # = components.aws.tags.STACK_TAG


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
    granularity: str = "HOURLY"
    tag: tuple[str, str] = ("", "")
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"drill {self.drill_id}: {self.window[0]} .. {self.window[1]} "
               f"({self.granularity}, tag {self.tag[0]}={self.tag[1]}, RECORD_TYPE Usage)"]  # fmt: skip
        out.append(
            f"  {'service / usage type (Cost Explorer)':<62} {'estimate':>12} {'actual':>12} {'delta':>12}"
        )
        for r in self.rows:
            act = "n/a" if r["actual_usd"] is None else f"{r['actual_usd']:.6f}"
            delta = "n/a" if r["delta_usd"] is None else f"{r['delta_usd']:+.6f}"
            name = f"{r['service']} / {r['usage_type']}"
            out.append(f"  {name:<62} {r['estimate_usd']:>12.6f} {act:>12} {delta:>12}")
        out += self.notes
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


def _hour_floor(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def time_period(start: datetime, end: datetime, granularity: str) -> dict[str, str]:
    """Cost Explorer's TimePeriod (End exclusive) covering [start, end)."""
    if granularity == "HOURLY":
        a = _hour_floor(start)
        b = _hour_floor(end) + (timedelta(hours=1) if end > _hour_floor(end) else timedelta())
        b = max(b, a + timedelta(hours=1))
        f = "%Y-%m-%dT%H:%M:%SZ"
        return {"Start": a.strftime(f), "End": b.strftime(f)}
    day0 = start.astimezone(UTC).date()
    day1 = end.astimezone(UTC).date() + timedelta(days=1)
    return {"Start": day0.isoformat(), "End": day1.isoformat()}


def request(tag_key: str, tag_value: str, start: datetime, end: datetime,
            granularity: str) -> dict[str, Any]:  # fmt: skip
    return {
        "TimePeriod": time_period(start, end, granularity),
        "Granularity": granularity,
        "Filter": {"And": [
            {"Tags": {"Key": tag_key, "Values": [tag_value], "MatchOptions": ["EQUALS"]}},
            {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Usage"]}},
        ]},
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"},
                    {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
    }  # fmt: skip


def query(ce, req: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of the answer: ResultsByTime of all pages, in order."""
    out: list[dict[str, Any]] = []
    token = None
    while True:
        resp = ce.get_cost_and_usage(**req, **({"NextPageToken": token} if token else {}))
        out += resp.get("ResultsByTime", [])
        token = resp.get("NextPageToken")
        if not token:
            return out


def _hourly_not_enabled(e) -> bool:
    err = e.response.get("Error", {})
    msg = (err.get("Message") or "").lower()
    return err.get("Code") in ("ValidationException", "DataUnavailableException") and (
        "hourly" in msg or "granularity" in msg
    )


def reconcile(run_dir: Path, ce) -> Reconciliation:
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    est = load_estimate(run_dir)
    report = est["report"]
    start = datetime.strptime(report["window"]["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    end = datetime.strptime(report["window"]["end"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    rec = Reconciliation(est["drill_id"], (report["window"]["start"], report["window"]["end"]))
    tag = report.get("tag") or {}
    local = report.get("mode") == "local"
    if tag.get("ephemeral"):
        rec.tag = (DRILL_ID_TAG, tag.get("value") or rec.drill_id)
        rec.notes.append(f"  ephemeral environment: every resource carries {DRILL_ID_TAG}="
                         f"{rec.tag[1]}, so the actuals are this environment's own")  # fmt: skip
    else:
        rec.tag = (tag.get("key") or STACK_TAG, tag.get("value") or report.get("stack", ""))
        rec.notes.append(
            f"  persistent stack: the actuals are everything tagged {rec.tag[0]}={rec.tag[1]} in "
            "the drill's hours -- the standing cost of those hours plus anything else running on "
            "the stack -- an allocation of the stack's cost to the drill window, not what the "
            "drill alone caused (see the estimate's incremental/allocated split)"
        )
    estimate: dict[tuple[str, str], float] = {}
    for x in report["lines"]:
        key = (CE_SERVICE.get(family(x["sku"]), x["service_name"]), x["usage_type"])
        estimate[key] = estimate.get(key, 0.0) + x["cost"]
    try:
        try:
            results = query(ce, request(*rec.tag, start, end, "HOURLY"))
        except ClientError as e:
            if not _hourly_not_enabled(e):
                raise
            rec.granularity = "DAILY"
            rec.notes.append(
                "  hourly granularity is not enabled for this account (Cost Explorer -> "
                "Preferences -> Hourly granularity): compared over whole days, so the actuals "
                "include everything tagged in those days"
            )
            results = query(ce, request(*rec.tag, start, end, "DAILY"))
    except (NoCredentialsError, PartialCredentialsError):
        raise ReconcileError(
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(Cost Explorer needs ce:GetCostAndUsage)"
        ) from None
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "DataUnavailableException":
            results = []
        else:
            msg = e.response.get("Error", {}).get("Message", "")
            raise ReconcileError(f"Cost Explorer refused: {code}: {msg}") from None
    actual: dict[tuple[str, str], float] = {}
    for period in results:
        rec.estimated_by_ce |= bool(period.get("Estimated"))
        for g in period.get("Groups", []):
            amount = float(g["Metrics"]["UnblendedCost"]["Amount"])
            keys = list(g["Keys"]) + [""]
            key = (keys[0], keys[1])
            actual[key] = actual.get(key, 0.0) + amount
    rec.actuals_available = bool(actual)
    for svc, ut in sorted(set(estimate) | set(actual)):
        # Cost Explorer lists only what has a cost: once it answers, absent means 0
        a = actual.get((svc, ut), 0.0) if rec.actuals_available else None
        e_ = estimate.get((svc, ut), 0.0)
        rec.rows.append({"service": svc, "usage_type": ut, "estimate_usd": round(e_, 6),
                         "actual_usd": None if a is None else round(a, 6),
                         "delta_usd": None if a is None else round(a - e_, 6)})  # fmt: skip
    if not rec.actuals_available:
        rec.message = (
            f"no actuals yet: Cost Explorer shows no cost tagged {rec.tag[0]}={rec.tag[1]} "
            f"for this window. It lags up to 24 hours, and attributes only resources carrying "
            f"the tag once {rec.tag[0]} is activated as a cost allocation tag"
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

"""`kdrill cost validate PATH`: kdrill's own FOCUS checks, then the FinOps Foundation's validator.

The validator (focus-validator 2.2.1, model 1.2.0.1) skips most of its rules on an export
like ours (441 of 578), so kdrill checks what matters for a drill export itself:
ListCost = ListUnitPrice x PricingQuantity on every row, the rows' BilledCost adds up to
the run's total, every ChargePeriod lies within its BillingPeriod, units come from the
allowed set (FOCUS units, GiB for 2^30 bytes), and each ServiceName has one category.

Acceptance of the validator's verdict: "Fail: 0", or exactly InvoiceId-C-005-C failing while
the validator's rule file still has an empty Condition on both InvoiceId-C-004-C and
InvoiceId-C-005-C (then one of the two fails whatever InvoiceId holds; an estimate is on no
invoice, so C-005-C). The allowance is read from the rule file each time, so it disappears
when upstream gives those rules their conditions. The validator is built on first use
(tools/setup-focus-validator.sh: CPython 3.13 from source, ~7 minutes once).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.cost.focus import ALLOWED_UNITS

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR_VERSION = "2.2.1"
MODEL_VERSION = "1.2.0.1"
RULES_SHA256 = (
    "639b302ace9edd05922e3d15fcedf62723c92e7cf25e0a7a6684dd4fd4076fec"  # model-1.2.0.1.json
)
KNOWN_DEFECT = "InvoiceId-C-005-C"
EMPTY_CONDITION_RULES = ("InvoiceId-C-004-C", "InvoiceId-C-005-C")


def _f(x: Any) -> float:
    return float(x) if x not in (None, "") else 0.0


def _t(s: str) -> datetime:
    return datetime.strptime(
        str(s)[:19], "%Y-%m-%dT%H:%M:%S" if "T" in str(s) else "%Y-%m-%d %H:%M:%S"
    )


def check_rows(rows: list[dict[str, Any]], total: float | None = None) -> list[str]:
    """kdrill's checks the validator skips; one message per problem (empty: all pass)."""
    problems = []
    for i, r in enumerate(rows):
        what = f"row {i + 1} ({r.get('x_UsageType') or r.get('SkuMeter')})"
        lc, up, q = _f(r["ListCost"]), _f(r["ListUnitPrice"]), _f(r["PricingQuantity"])
        if abs(lc - up * q) > max(1e-9, 1e-6 * abs(lc)):
            problems.append(f"{what}: ListCost {lc} != ListUnitPrice {up} x PricingQuantity {q}")
        cs, ce = _t(r["ChargePeriodStart"]), _t(r["ChargePeriodEnd"])
        bs, be = _t(r["BillingPeriodStart"]), _t(r["BillingPeriodEnd"])
        if not (bs <= cs <= ce <= be):
            problems.append(
                f"{what}: ChargePeriod {cs}..{ce} is not within BillingPeriod {bs}..{be}"
            )
        for col in ("PricingUnit", "ConsumedUnit"):
            if r.get(col) not in ALLOWED_UNITS:
                problems.append(f"{what}: {col} {r.get(col)!r} is not an allowed unit "
                                f"({', '.join(sorted(ALLOWED_UNITS))})")  # fmt: skip
    cats: dict[str, set[tuple[str, str]]] = {}
    for r in rows:
        cats.setdefault(r.get("ServiceName"), set()).add(
            (r.get("ServiceCategory"), r.get("ServiceSubcategory")))  # fmt: skip
    for name, pairs in sorted(cats.items(), key=lambda kv: str(kv[0])):
        if len(pairs) > 1:
            problems.append(f"ServiceName {name!r} has more than one ServiceCategory/Subcategory: "
                            f"{sorted(pairs)}")  # fmt: skip
    if total is not None:
        billed = sum(_f(r["BilledCost"]) for r in rows)
        if abs(billed - total) > 1e-6 + 1e-6 * abs(total):
            problems.append(f"sum of BilledCost {billed:.8f} != the run's total {total:.8f}")
    return problems


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        out = pq.read_table(path).to_pylist()
        for r in out:
            for k, v in r.items():
                if isinstance(v, datetime):
                    r[k] = v.strftime("%Y-%m-%dT%H:%M:%SZ")
        return out
    with path.open() as f:
        return list(csv.DictReader(f))


def run_total(run_dir: Path) -> float | None:
    for name, get in (("cost.json", lambda d: d["report"]["total_usd"]),
                      ("evidence.json", lambda d: d["cost"]["final"]["total_usd"])):  # fmt: skip
        p = run_dir / name
        if p.exists():
            try:
                return float(get(json.loads(p.read_text())))
            except (KeyError, TypeError, ValueError):
                continue
    return None


# --- the FinOps Foundation's validator --------------------------------------------------


def cache() -> Path:
    return Path(os.environ.get("KDRILL_CACHE", Path.home() / ".cache" / "kdrill"))


def rule_file() -> Path | None:
    hits = sorted((cache() / "focus-validator").glob(
        f"lib/python*/site-packages/focus_validator/rules/model-{MODEL_VERSION}.json"))  # fmt: skip
    return hits[0] if hits else None


def allowed_failures(rules_path: Path | None) -> set[str]:
    """{InvoiceId-C-005-C} while the rule file leaves both InvoiceId nullability rules without
    a condition (the upstream defect); empty once either has one."""
    if rules_path is None or not rules_path.exists():
        return set()
    rules = json.loads(rules_path.read_text()).get("ModelRules", {})
    empty = all(
        not (rules.get(r, {}).get("ValidationCriteria") or {}).get("Condition", {"x": 1})
        for r in EMPTY_CONDITION_RULES
    )
    return {KNOWN_DEFECT} if empty else set()


def parse_validator(out: str) -> tuple[str, set[str], set[str]]:
    lines = re.findall(r".*Pass: \d+ \| Fail: \d+.*", out)
    failed = set(re.findall(r"^\S+ (\S+): FAIL\b", out, re.M))
    passed = set(re.findall(r"^\S+ (\S+): PASS\b", out, re.M))
    return (lines[-1].strip() if lines else ""), failed, passed


def accepted(summary: str, failed: set[str], allowance: set[str]) -> bool:
    m = re.search(r"Fail: (\d+)", summary)
    if not m:
        return False
    n = int(m.group(1))
    return n == 0 or (n == len(failed) and failed == allowance and bool(allowance))


def ensure_validator(setup: bool, say: Callable[[str], None]) -> bool:
    fv = cache() / "focus-validator" / "bin" / "focus-validator"
    if fv.exists():
        return True
    if not setup:
        say(
            "kdrill: cost validate: the FOCUS validator is not set up (run tools/setup-focus-validator.sh)"
        )
        return False
    say(
        "setting up the FOCUS validator (tools/setup-focus-validator.sh; ~7 minutes the first time)"
    )
    return (
        subprocess.run(["bash", str(ROOT / "tools" / "setup-focus-validator.sh")]).returncode == 0
    )


def validate_path(path: Path, setup: bool = True, say: Callable[[str], None] = print) -> int:
    """0 valid, 1 a check or the validator failed, 2 cannot validate."""
    files = [path / "cost-focus.csv", path / "cost-focus.parquet"] if path.is_dir() else [path]
    files = [f for f in files if f.exists()]
    if not files:
        say(f"kdrill: cost validate: {path}: no FOCUS export (cost-focus.csv / .parquet)")
        return 2
    total = run_total(path if path.is_dir() else path.parent)
    bad = False
    for f in files:
        problems = check_rows(read_rows(f), total)
        say(f"{f.name}: kdrill checks: {'pass' if not problems else f'{len(problems)} problem(s)'}")
        for p in problems:
            say(f"  {p}")
        bad |= bool(problems)
    if not ensure_validator(setup, say):
        return 2
    allowance = allowed_failures(rule_file())
    for f in files:
        p = subprocess.run([str(ROOT / "tools" / "focus-validate"), str(f)], capture_output=True,
                           text=True, timeout=900)  # fmt: skip
        summary, failed, _ = parse_validator(p.stdout + p.stderr)
        if not summary:
            say(f"{f.name}: the validator printed no summary:\n{(p.stdout + p.stderr)[-2000:]}")
            return 2
        ok = accepted(summary, failed, allowance)
        why = "" if not failed else f" (failed: {', '.join(sorted(failed))}" + (
            "; allowed: the rule file leaves InvoiceId-C-004-C/C-005-C without a condition)"
            if ok else ")")  # fmt: skip
        say(f"{f.name}: focus-validator {VALIDATOR_VERSION}: {summary}{why}: "
            f"{'accepted' if ok else 'REJECTED'}")  # fmt: skip
        bad |= not ok
    return 1 if bad else 0

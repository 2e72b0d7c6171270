"""`kdrill cost ...`: export a run's cost in FOCUS, reconcile it with Cost Explorer, refresh prices."""

from __future__ import annotations

import json
from pathlib import Path

from drills.cost.catalog import Catalog, CatalogError
from drills.cost.focus import FORMATS, write
from drills.cost.model import CostReport


def _say(msg: str) -> None:
    print(msg, flush=True)


def cmd_export(args) -> int:
    run = Path(args.run_dir)
    ev_path = run / "evidence.json"
    if not ev_path.exists():
        _say(f"kdrill: {run}: no evidence.json (not a drill run directory)")
        return 2
    ev = json.loads(ev_path.read_text())
    final = (ev.get("cost") or {}).get("final")
    if not final:
        err = (ev.get("cost") or {}).get("error", "the evidence has no cost section")
        _say(f"kdrill: {run}: no cost lines to export ({err})")
        return 2
    try:
        cat = Catalog.load()
    except CatalogError as e:
        _say(f"kdrill: cost export: {e}")
        return 2
    meta = {"drill_id": ev["run_id"], "drill": ev["drill"], "run_dir": run.name}
    out_dir = Path(args.out or run)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = write(CostReport.from_dict(final), meta, out_dir, args.format, cat.region_name,
                cat.gb_bytes)  # fmt: skip
    _say(f"{out} ({len(final['lines'])} FOCUS {'rows' if args.format != 'json' else 'lines'}, "
         f"total ${final['total_usd']:.6f})")  # fmt: skip
    return 0


def cmd_reconcile(args) -> int:
    from drills.cost.reconcile import ReconcileError, ce_client, reconcile

    try:
        rec = reconcile(Path(args.run_dir), ce_client())
    except ReconcileError as e:
        _say(f"kdrill: cost reconcile: {e}")
        return 2
    for line in rec.lines():
        _say(line)
    return 0 if rec.actuals_available else 3


def cmd_refresh(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from drills.cost.refresh import pricing_client, refresh

    try:
        cat = Catalog.load(args.catalog)
        new, updated, missing = refresh(cat, pricing_client())
    except CatalogError as e:
        _say(f"kdrill: cost refresh: {e}")
        return 2
    except NoCredentialsError:
        _say("kdrill: cost refresh: no AWS credentials (the Price List Query API needs "
             "pricing:GetProducts); the catalog is unchanged")  # fmt: skip
        return 2
    except (ClientError, BotoCoreError) as e:
        _say(f"kdrill: cost refresh: {e}; the catalog is unchanged")
        return 2
    path = new.save(args.catalog)
    _say(f"{path}: {len(updated)} prices refreshed from the Price List Query API")
    for m in missing:
        _say(f"  not found in the price list (old price kept): {m}")
    return 0 if not missing else 1


def cmd_standby(args) -> int:
    from drills.cost.standby import (
        StandbyAssumptions,
        StandbyError,
        measured_rate,
        meta,
        standby_for,
    )
    from drills.cost.standby import table as standby_table

    a = StandbyAssumptions(nat_gateways=args.nat_gateways)
    try:
        if args.from_run:
            a.rate_bytes_per_s, a.rate_source = measured_rate(Path(args.from_run))
        elif args.rate_mibps is not None:
            a.rate_bytes_per_s = args.rate_mibps * 2**20
            a.rate_source = f"configured {args.rate_mibps:g} MiB/s"
        if args.automq_retained_gib is not None:
            a.automq_retained_gib = args.automq_retained_gib
        if args.month:
            from datetime import UTC, datetime

            a.month = datetime.strptime(args.month, "%Y-%m").replace(tzinfo=UTC)
        cat = Catalog.load()
        report = standby_for(args.stack, cat, a, args.price_as)
    except (StandbyError, CatalogError, ValueError, OSError) as e:
        _say(f"kdrill: cost standby: {str(e).splitlines()[0]}")
        return 2
    for line in standby_table(report):
        _say(line)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = write(report, meta(report), out, "focus-csv", cat.region_name, cat.gb_bytes)
        path = path.rename(out / "standby-focus.csv")
        _say(f"  FOCUS 1.2: {path}")
    return 0


def cmd_validate(args) -> int:
    from drills.cost.checks import validate_path

    return validate_path(Path(args.path), setup=not args.no_setup, say=_say)


def add_parser(sub) -> None:
    cost = sub.add_parser("cost", help="what a drill cost: FOCUS export, Cost Explorer, prices")
    csub = cost.add_subparsers(dest="cmd", required=True)
    ex = csub.add_parser(
        "export", help="write a run's cost lines as FOCUS 1.2 (CSV/Parquet) or JSON"
    )
    ex.add_argument("run_dir")
    ex.add_argument("--format", choices=sorted(FORMATS), default="focus-csv")
    ex.add_argument("--out", help="directory to write into (default: the run directory)")
    ex.set_defaults(fn=cmd_export)
    rc = csub.add_parser("reconcile", help="compare a run's estimate with AWS Cost Explorer actuals",
                         description="exit 0 actuals compared, 3 no actuals yet, 2 cannot ask")  # fmt: skip
    rc.add_argument("run_dir")
    rc.set_defaults(fn=cmd_reconcile)
    rf = csub.add_parser(
        "refresh", help="rebuild the price catalog from the AWS Price List Query API"
    )
    rf.add_argument("--catalog", help="catalog file (default: drills/cost/catalog.json)")
    rf.set_defaults(fn=cmd_refresh)
    sb = csub.add_parser("standby", help="the monthly cost of keeping the standby ready",
                         description="list prices; Savings Plans / reserved capacity not modelled")  # fmt: skip
    sb.add_argument("--stack", required=True, help="a stack under stacks/ (local or an AWS stack)")
    sb.add_argument("--price-as", help="price the local pair as this AWS stack")
    rate = sb.add_mutually_exclusive_group()
    rate.add_argument("--rate-mibps", type=float, help="replication rate primary -> standby")
    rate.add_argument("--from-run", help="take the replication rate a drill run measured")
    sb.add_argument("--nat-gateways", type=int, default=0, help="NAT gateways in the standby")
    sb.add_argument("--automq-retained-gib", type=float, help="GiB the AutoMQ data bucket holds")
    sb.add_argument("--month", help="YYYY-MM (default: this month)")
    sb.add_argument("--out", help="also write standby-focus.csv (FOCUS 1.2) into this directory")
    sb.set_defaults(fn=cmd_standby)
    va = csub.add_parser("validate", help="kdrill's FOCUS checks + the FinOps FOCUS validator",
                         description="exit 0 valid, 1 invalid, 2 cannot validate")  # fmt: skip
    va.add_argument("path", help="a run directory or a FOCUS CSV/Parquet file")
    va.add_argument(
        "--no-setup",
        action="store_true",
        help="do not build the validator if it is missing (fail instead)",
    )
    va.set_defaults(fn=cmd_validate)

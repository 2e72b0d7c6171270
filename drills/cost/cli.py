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
    out = write(CostReport.from_dict(final), meta, Path(args.out or run), args.format,
                cat.region_name)  # fmt: skip
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

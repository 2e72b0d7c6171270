"""`kdrill env create|list|destroy|reap` and `kdrill run SPEC --env create`.

The lifecycle itself is components/local/envs.py; this module parses, prints, and wraps a
drill in an environment made for it: created first, destroyed in `finally` whatever the
drill did (failed, refused, interrupted by SIGINT/SIGTERM/SIGHUP, which the CLI turns into
KeyboardInterrupt), with interrupts held off while the env is torn down.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from components.console import console, error, out, progress_display
from components.local.envs import Envs, duration_text, held_signals, parse_time, parse_ttl
from components.local.errors import LocalEnvError

DEFAULT_TTL = "2h"


def _owner(given: str | None) -> str:
    return given or os.environ.get("KDRILL_OWNER") or getpass.getuser()


def cmd_env_create(args) -> int:
    ttl = parse_ttl(args.ttl)
    with progress_display(f"env from {args.template}") as step:
        rec = Envs().create(args.template, ttl, _owner(args.owner), args.name, args.set, step)
    where = f" prefix {rec.prefix}, network {rec.network}" if rec.prefix else ""
    out.print(
        f"{rec.stack} ready ({rec.kind}{where}); expires {rec.expires_at}: "
        f"`kdrill run SPEC --stack {rec.stack}`, `kdrill env destroy {rec.stack}`",
        markup=False,
        highlight=False,
    )
    return 0


def env_rows(now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per env: what `env list` shows (cost so far from drills/cost/envcost.py)."""
    from drills.cost.envcost import cost_so_far

    envs = Envs()
    now = now or datetime.now(UTC)
    rows = []
    for r in envs.records():
        try:
            cost: float | None = cost_so_far(r, now, stack_file=envs.stack_path(r.stack))
        except Exception:  # a listing never fails on one env
            cost = None
        rows.append(
            {
                "name": r.stack,
                "template": r.template,
                "owner": r.owner,
                "kind": r.kind,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "age_s": int((now - r.created).total_seconds()),
                "time_left_s": int((r.expires - now).total_seconds()),
                "cost_so_far_usd": cost,
                "state": r.state,
                "prefix": r.prefix,
                "network": r.network,
            }
        )
    return rows


def cmd_env_list(args) -> int:
    rows = env_rows()
    if args.json:
        out.print_json(json.dumps(rows))
        return 0
    t = Table(title="ephemeral environments", title_justify="left")
    for col in ("name", "template", "owner", "age", "time left", "cost so far", "state", "where"):
        t.add_column(col, no_wrap=col in ("name", "where"))
    for r in rows:
        left = r["time_left_s"]
        t.add_row(
            r["name"],
            r["template"],
            r["owner"],
            duration_text(timedelta(seconds=r["age_s"])),
            duration_text(timedelta(seconds=left)) if left > 0 else "expired",
            "?" if r["cost_so_far_usd"] is None else f"${r['cost_so_far_usd']:.4f}",
            r["state"],
            f"{r['prefix']} {r['network']}" if r["prefix"] else r["kind"],
        )
    out.print(t if rows else "no ephemeral environment")
    return 0


def cmd_env_destroy(args) -> int:
    done = Envs().destroy(args.name)
    console.print(f"destroyed: {', '.join(done)}", markup=False)
    return 0


def cmd_env_reap(args) -> int:
    try:
        at = parse_time(args.at) if args.at else None
    except ValueError:
        error(f"kdrill: --at {args.at!r} is not an ISO 8601 time (e.g. 2026-12-02T08:00:00Z)")
        return 2
    results = Envs().reap(
        dry_run=args.dry_run, now=at, report=lambda m: console.print(m, markup=False)
    )
    for stack, what in results:
        out.print(f"{stack}: {what}", markup=False, highlight=False)
    if not results:
        out.print("reap: nothing expired")
    failed = [s for s, what in results if what.startswith("failed")]
    return 1 if failed else 0


def run_in_env(args, run: Callable[[argparse.Namespace], int]) -> int:
    """`kdrill run SPEC --env create`: an env from the spec's stack (or --stack) as the
    template, the drill on it, the env destroyed after whatever happened."""
    from drills.spec import SpecError, load_spec

    if args.env != "create":
        error(f"kdrill: --env {args.env!r}: the only value is 'create'")
        return 2
    try:
        ttl = parse_ttl(args.ttl)
        template = args.stack or load_spec(args.spec).target.stack
    except SpecError as e:
        error(f"kdrill: invalid drill spec: {e}")
        return 2
    except LocalEnvError as e:
        error(f"kdrill: {e}")
        return 2
    envs = Envs()
    with progress_display(f"env from {template}") as step:
        rec = envs.create(template, ttl, _owner(args.owner), None, args.set, step)
    console.print(f"{rec.stack} created (expires {rec.expires_at})", markup=False)
    # The env's lock is held while the drill runs, so a reap (cron, CI) that finds it
    # expired skips it ("being created or destroyed right now") instead of pulling it away.
    with envs.lock(rec.stack):
        try:
            args.stack = rec.stack
            return run(args)
        finally:
            with held_signals():
                console.print(f"{rec.stack}: destroying", markup=False)
                try:
                    envs.destroy_locked(envs.get(rec.stack))
                    console.print(f"{rec.stack} destroyed", markup=False)
                except LocalEnvError as e:
                    error(
                        f"kdrill: {rec.stack} not fully destroyed ({e}); `kdrill env reap` ends it"
                    )


def run_holding_env(args, run: Callable[[argparse.Namespace], int]) -> int:
    """`kdrill run SPEC --stack env-<id>`: the drill holds the env's lock while it runs, as
    `--env create` does, so a reap that finds the env expired skips it ("being created or
    destroyed right now") rather than tearing the pair down under the drill. An env being
    created or destroyed right now is refused in one line, before anything is applied."""
    envs = Envs()
    try:
        rec = envs.get(args.stack)
    except LocalEnvError as e:
        error(f"kdrill: cannot run {args.spec}: {e}")
        return 2
    if rec.state == "destroying":
        error(
            f"kdrill: {rec.stack} is being destroyed; create another with "
            f"`kdrill env create --from {rec.template}`"
        )
        return 2
    with envs.lock(rec.stack, wait=False) as held:
        if not held:
            error(
                f"kdrill: {rec.stack} is being created or destroyed right now; "
                "wait for it (`kdrill env list`) and run again"
            )
            return 2
        return run(args)


def add_env_arguments(run: argparse.ArgumentParser) -> None:
    """`kdrill run`'s --env, --ttl, --owner, --set."""
    run.add_argument(
        "--env",
        metavar="create",
        help="create an ephemeral env from the stack (--stack or the spec's), drill in it, "
        "destroy it after, even when the drill fails or is interrupted",
    )
    run.add_argument("--ttl", default=DEFAULT_TTL, help="with --env: its expiry (default 2h)")
    run.add_argument("--owner", help="with --env: its owner (default $KDRILL_OWNER or the user)")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="with --env: an override"
    )


def add_parser(sub) -> None:
    """`kdrill env ...` on the main parser's subcommands."""
    env = sub.add_parser(
        "env",
        help="ephemeral drill environments: create, list, destroy, reap",
        description="Ephemeral drill environments: Pulumi stacks env-<id> copied from a template "
        "stack, stamped (stack tags) with owner, creation, expiry and env id, destroyed by "
        "`env destroy` or, once expired, by `env reap` (safe from cron and CI).",
    )
    esub = env.add_subparsers(dest="cmd", required=True)
    c = esub.add_parser("create", help="a new env from a template stack, brought up")
    c.add_argument("--from", dest="template", required=True, metavar="STACK", help="template stack")
    c.add_argument("--ttl", default=DEFAULT_TTL, help="lifetime: 30s, 15m, 2h, 1d (max 72h)")
    c.add_argument("--owner", help="owner (default $KDRILL_OWNER or the user)")
    c.add_argument("--name", help="the env id (stack env-<name>); default: random")
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, repeatable: a config path such as kdrill:regions[1].brokers=2",
    )
    c.set_defaults(fn=cmd_env_create)
    ls = esub.add_parser("list", help="envs: template, owner, age, time left, cost so far")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(fn=cmd_env_list)
    d = esub.add_parser("destroy", help="destroy an env (its pair, stack and files)")
    d.add_argument("name", help="env-<id> or <id>")
    d.set_defaults(fn=cmd_env_destroy)
    r = esub.add_parser(
        "reap",
        help="destroy every expired env, finish destroys a kill interrupted (exit 1 if one failed)",
    )
    r.add_argument("--dry-run", action="store_true", help="say what would be destroyed")
    r.add_argument(
        "--at",
        metavar="TIME",
        help="reap as if it were TIME (ISO 8601): with --dry-run, what expires by then",
    )
    r.set_defaults(fn=cmd_env_reap)

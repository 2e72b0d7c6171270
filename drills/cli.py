"""The `kdrill` command line: parse arguments, build a target and hooks, print.

Errors a user can fix come out as one line (`kdrill: ...`) with a non-zero
exit, never a traceback. SIGTERM and SIGHUP are turned into KeyboardInterrupt
(components/console.py) so every long command unwinds through the same
clean-up; a drill's own clean-up holds them until the evidence is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from components.console import (
    check_interrupted,
    console,
    error,
    install_signal_handlers,
    out,
    progress_display,
)
from components.local import cli as local_cli
from components.local.config import ENV_STACK_PREFIX, POLICIES
from components.local.errors import LocalEnvError
from drills.hooks import Callbacks
from drills.spec import DrillSpec, SpecError, load_spec
from drills.targets import Target, TargetError, open_target


def _load(spec_path: str, stack: str | None, keep: bool = False) -> tuple[DrillSpec, Target]:
    """The spec and its target, the fault checked against the target: raises SpecError or
    TargetError, and nothing has been touched either way."""
    from drills.targets.aws import check_engine

    spec = load_spec(spec_path)
    target = open_target(stack or spec.target.stack, keep)
    check_engine(spec.replication.engine, spec.cutover.resume, target.facts())
    for i, f in enumerate(spec.faults or [spec.fault]):  # a timeline: every fault of it
        try:
            target.resolve_fault(f.fault_spec())
        except TargetError as e:
            where = "fault" if len(spec.faults or ()) < 2 else f"faults[{i}]"
            raise TargetError(f"{where}: {e}") from None
    return spec, target


def cmd_sync_control_state(args) -> int:
    """Copy what the destination region lacks of the source's control state (ACLs under the
    names clients use after failover, SCRAM users with new secrets, quotas, topic configs),
    printing each change; idempotent (a second run finds nothing)."""
    from drills import controlstate

    try:
        target = open_target(args.stack)
        regions = (target.primary, target.standby)
        for r in (args.src, args.dst):
            if r not in regions:
                raise TargetError(f"unknown region {r!r}; this stack has: {', '.join(regions)}")
        if args.src == args.dst:
            raise TargetError("--from and --to name the same region; name the other one")
        remote = target.remote_topic if args.src == target.primary else (lambda t: t)
        src, dst = target.inventory(args.src), target.inventory(args.dst)
        missing = sorted({*(src.get("unavailable") or {}), *(dst.get("unavailable") or {})})
        plan = controlstate.sync_plan(src, dst, remote)
        for a in plan:
            out.print(f"{a.text}  ({args.dst})", markup=False, highlight=False)
        for m in missing:
            out.print(f"not compared: {m} (unreadable in a region)", markup=False)
        if not plan:
            console.print(f"{args.dst} already holds {args.src}'s control state: nothing to sync")
            return 0
        if args.dry_run:
            console.print(f"dry run: {len(plan)} change(s) not applied")
            return 0
        kept: set[str] = set()

        def new_secret(user: str) -> str:
            pw, where = target.new_user_secret(args.dst, user)
            kept.add(where)
            return pw

        setter = getattr(target, "set_quota", None)
        skipped = controlstate.apply_sync(
            target.bootstrap(args.dst), plan,
            (lambda u, q: setter(args.dst, u, q)) if setter else None, new_secret,
        )  # fmt: skip
        for line in skipped:
            out.print(f"skipped: {line}", markup=False)
        for where in sorted(kept):
            console.print(f"new users' secrets kept in {where} (0600)")
        console.print(f"applied {len(plan) - len(skipped)} change(s) to {args.dst}")
        return 0
    except TargetError as e:
        error(f"kdrill: sync-control-state: {e}")
        return 2
    except Exception as e:  # a broker refusing: one line, not a traceback
        error(f"kdrill: sync-control-state: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return 1


def cmd_validate(args) -> int:
    try:
        spec, _ = _load(args.spec, args.stack)
    except SpecError as e:
        error(f"kdrill: invalid drill spec: {e}")
        return 2
    except TargetError as e:
        error(f"kdrill: {args.spec}: {e}")
        return 2
    console.print(f"{args.spec}: valid drill spec {spec.name!r} (schema version {spec.version})")
    return 0


def cmd_scenarios(args) -> int:
    """One line per shipped scenario (name, what it proves); a broken one listed with its
    one-line error, and then exit 2."""
    import json

    from drills.library import SCENARIOS_DIR, library

    directory = Path(args.dir) if args.dir else SCENARIOS_DIR
    if not directory.is_dir():
        error(f"kdrill: scenarios: {directory}: no such directory; give the folder of the specs")
        return 2
    rows = library(directory)
    broken = [r for r in rows if r.error]
    if args.json:
        out.print_json(json.dumps([r.to_dict() for r in rows]))
    else:
        width = max((len(r.name or r.file) for r in rows), default=0)
        for r in rows:
            what = f"INVALID: {r.error}" if r.error else r.summary
            out.print(f"{(r.name or r.file):<{width}}  {what}", markup=False, highlight=False,
                      soft_wrap=True)  # fmt: skip
    if not rows:
        error(f"kdrill: scenarios: no *.yaml in {directory}")
        return 2
    if broken:
        error(f"kdrill: scenarios: {len(broken)} of {len(rows)} invalid")
        return 2
    return 0


def cmd_run(args) -> int:
    if getattr(args, "env", None):  # --env create: the drill in an env made for it
        from drills import env_cli

        return env_cli.run_in_env(args, _run_on_stack)
    if (args.stack or "").startswith(ENV_STACK_PREFIX):  # an env: hold it against a reap
        from drills import env_cli

        return env_cli.run_holding_env(args, _run_on_stack)
    return _run_on_stack(args)


def _run_on_stack(args) -> int:
    from drills.evidence import summary_lines
    from drills.runner import run_drill

    if getattr(args, "plan", False):  # AWS stacks: what the fault changes, under mocks
        from drills.targets.aws import plan_command

        return plan_command(args.spec, args.stack)
    try:
        spec, target = _load(args.spec, args.stack, keep=args.keep)
    except SpecError as e:
        error(f"kdrill: invalid drill spec: {e}")
        return 2
    except TargetError as e:
        error(f"kdrill: cannot run {args.spec}: {e}")
        return 2
    run_dir = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.name}"
    started = time.monotonic()
    try:
        with progress_display(f"stack {args.stack or spec.target.stack} ready") as step:
            target.prepare(progress=step)
        with console.status("drill") as status:

            def phase(ph: str, what: str) -> None:
                if ph not in ("rollback", "teardown"):  # clean-up runs to the end, whatever arrives
                    check_interrupted()
                console.print(f"  [dim]{time.monotonic() - started:6.1f}s[/] [bold]{ph}[/] {what}")
                status.update(f"{ph}: {what}")

            hooks = Callbacks(phase=phase, info=lambda m: console.print(f"  {m}"))
            outcome = run_drill(spec, target, run_dir, hooks)
    except (LocalEnvError, TargetError) as e:
        error(f"kdrill: drill could not run: {e}")
        return 2
    finally:
        target.release()
    for line in summary_lines(outcome.evidence):
        out.print(line, markup=False, highlight=False)
    if args.junit:
        from drills.report.junit import render as junit

        Path(args.junit).write_text(junit(outcome.evidence))
        out.print(f"junit: {args.junit}")
    out.print(f"evidence: {run_dir}/evidence.json  ({time.monotonic() - started:.0f}s in all)")
    if (run_dir / "report.html").exists():
        out.print(
            f"report: {run_dir}/report.html  (signed manifest: {run_dir}/manifest.json)",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    else:
        out.print(
            f"report: not written (rebuild it with `kdrill report {run_dir}`)",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    if args.keep and getattr(target, "owned", False):
        out.print("environment kept up (--keep): `kdrill local status`, then `kdrill local down`")
    return outcome.exit_code


def cmd_report(args) -> int:
    from drills.report.build import write_report
    from drills.report.load import ReportError
    from drills.report.manifest import MANIFEST, verify, write_manifest

    run_dir = Path(args.run_dir)
    signed = (run_dir / MANIFEST).exists()
    before = verify(run_dir) if signed else None
    try:
        rep, page, md = write_report(run_dir)
    except ReportError as e:
        error(f"kdrill: {e}")
        return 2
    console.print(f"report: {page}  ({page.stat().st_size / 1e6:.2f} MB; {md.name} beside it)")
    if before is not None:
        changed = {p.split(":")[0] for p in before.problems} - {"report.html", "report.md"}
        if changed:
            console.print(
                "manifest.json left as it was: it did not verify before the rebuild", markup=False
            )
        else:
            write_manifest(run_dir, rep.run.ev.get("run_id"))
            console.print("manifest.json re-signed (only report.html and report.md changed)")
    if args.junit:
        from drills.report.junit import render as junit

        Path(args.junit).write_text(junit(rep.run.ev))
        console.print(f"junit: {args.junit}")
    return 0


def cmd_verify(args) -> int:
    from drills.report.manifest import verify

    run_dir = Path(args.run_dir)
    v = verify(run_dir, args.key)
    for note in v.notes:
        console.print(f"note: {note}", markup=False)
    if not v.ok:
        for p in v.problems:
            error(f"kdrill: {run_dir}: {p}")
        return 1
    console.print(f"{run_dir}: manifest signature valid, {v.files} files unchanged", markup=False)
    return 0


def cmd_keys(args) -> int:
    from drills.report.manifest import fingerprint, key_path, load_key, public_text

    pub = public_text(load_key().public_key())
    out.print(f"ed25519 {pub}", markup=False, highlight=False)
    console.print(f"fingerprint {fingerprint(pub)}; private key {key_path()} (0600)", markup=False)
    return 0


def cmd_compare(args) -> int:
    from drills.report import compare
    from drills.report.load import ReportError

    try:
        thresholds = compare.parse_thresholds(args.threshold)
        runs = [compare.load(Path(d)) for d in args.run_dirs]
    except (compare.ThresholdError, ReportError) as e:
        error(f"kdrill: {e}")
        return 2
    from rich.table import Table

    head, body = compare.rows(runs)
    table = Table(*head, title=f"baseline: {runs[0].name}")
    for r in body:
        table.add_row(*r)
    out.print(table)
    for line in compare.notes(runs):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    found = compare.regressions(runs, thresholds)
    if args.html:
        Path(args.html).write_text(compare.html(runs, found))
        console.print(f"html: {args.html}")
    for line in found:
        out.print(f"REGRESSED {line}", markup=False, highlight=False)
    out.print(
        f"{len(found)} regression(s) past {', '.join(map(str, thresholds)) or 'no thresholds'}",
        markup=False,
        highlight=False,
    )
    return 1 if found else 0


def cmd_recover(args) -> int:
    from drills.worker import reap_leftovers

    workers = reap_leftovers()  # worker processes whose drill is gone
    target = open_target(args.stack)
    done = workers + target.recover()
    for line in done:
        console.print(line)
    console.print(f"recover: {len(done)} action(s)" if done else "recover: nothing to do")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kdrill",
        description="Cross-region recovery drills for Kafka. `kdrill local ...` manages the embedded "
        "default: two real Kafka clusters as two regions on this machine (needs root).",
    )
    sub = p.add_subparsers(dest="area", required=True)
    run = sub.add_parser(
        "run",
        help="run a drill spec against a stack and write its evidence",
        description="Run a drill (YAML spec) on a stack: preflight, steady state, inject, detect, decide, "
        "cutover, verify, teardown. Writes evidence.json, the journal, the raw history, report.html / "
        "report.md and a signed manifest.json to "
        "--out/<time>-<name>/ and uploads them to the standby's evidence bucket. Exit code: 0 objectives "
        "met, 1 objectives missed, 2 the drill could not run (bad spec, environment, steady state, interrupt).",
    )
    run.add_argument("spec", help="drill spec, e.g. drills/scenarios/region-loss.yaml")
    run.add_argument("--stack", help="stack to run on (default: the spec's target.stack)")
    run.add_argument(
        "--out", default="evidence", help="directory for run directories (default: ./evidence)"
    )
    run.add_argument(
        "--keep", action="store_true", help="leave the environment up afterwards for inspection"
    )
    run.add_argument(
        "--junit", metavar="FILE", help="also write JUnit XML: a testcase per objective"
    )
    run.add_argument(
        "--plan",
        action="store_true",
        help="AWS stacks: print what the drill's fault adds, changes and removes (the real "
        "program under Pulumi's mocks; nothing is run or contacted)",
    )
    from drills import env_cli

    env_cli.add_env_arguments(run)  # --env create, --ttl, --owner, --set
    run.set_defaults(fn=cmd_run)
    rep = sub.add_parser(
        "report",
        help="rebuild a run's report.html and report.md from evidence.json and the history",
        description="Rebuild RUN_DIR/report.html (and report.md) from RUN_DIR/evidence.json and "
        "RUN_DIR/history alone; no target is touched. Re-signs manifest.json when every other file "
        "still verifies. Exit 2 when the directory cannot be read.",
    )
    rep.add_argument("run_dir")
    rep.add_argument(
        "--junit", metavar="FILE", help="also write JUnit XML: a testcase per objective"
    )
    rep.set_defaults(fn=cmd_report)
    ver = sub.add_parser(
        "verify",
        help="check a run directory against its signed manifest.json (exit 0 intact, 1 not)",
    )
    ver.add_argument("run_dir")
    ver.add_argument(
        "--key", help="trusted public key (base64, from `kdrill keys`); default: the embedded one"
    )
    ver.set_defaults(fn=cmd_verify)
    keys = sub.add_parser(
        "keys", help="print this installation's evidence-signing public key (created if absent)"
    )
    keys.set_defaults(fn=cmd_keys)
    from drills.report.compare import DEFAULT_THRESHOLDS, FIGURES

    cmp_ = sub.add_parser(
        "compare",
        help="runs side by side (RTO parts, RPO, duplicates, skipped, cost); exit 1 on a regression",
        description="Compare run directories; the first is the baseline. Thresholds: FIGURE=N% "
        f"(relative) or FIGURE=N (absolute), FIGURE one of {', '.join(FIGURES)}. Exit 0 no "
        "regression, 1 a figure regressed past its threshold, 2 bad arguments or unreadable runs.",
    )
    cmp_.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    cmp_.add_argument(
        "--threshold", default=DEFAULT_THRESHOLDS, help=f"default: {DEFAULT_THRESHOLDS}"
    )
    cmp_.add_argument("--html", metavar="FILE", help="also write the table as HTML")
    cmp_.set_defaults(fn=cmd_compare)
    val = sub.add_parser(
        "validate", help="check a drill spec without running it (exit 0 valid, 2 invalid)"
    )
    val.add_argument("spec")
    val.add_argument(
        "--stack", help="stack whose regions the fault must name (default: the spec's)"
    )
    val.set_defaults(fn=cmd_validate)
    scen = sub.add_parser(
        "scenarios",
        help="list the shipped drill scenarios, one line each (exit 2 if one is invalid)",
        description="List drills/scenarios/*.yaml: name and what the drill proves (its "
        "description's first sentence). Each is validated as `kdrill validate` does, plus its "
        "header's `# Seed situation:` line; an invalid one is listed with its one-line error "
        "and the exit code is 2.",
    )
    scen.add_argument("--json", action="store_true", help="machine-readable output")
    scen.add_argument("--dir", help="another folder of specs (default: drills/scenarios)")
    scen.set_defaults(fn=cmd_scenarios)
    from drills.cost.cli import add_parser as add_cost

    add_cost(sub)  # kdrill cost export|reconcile|refresh
    sync = sub.add_parser(
        "sync-control-state",
        help="copy ACLs, users, quotas and topic configs one region lacks from the other",
        description=cmd_sync_control_state.__doc__,
    )
    sync.add_argument("--from", dest="src", required=True, help="the region to copy from")
    sync.add_argument("--to", dest="dst", required=True, help="the region to copy into")
    sync.add_argument("--stack", default="local", help="the stack (default local)")
    sync.add_argument("--dry-run", action="store_true", help="print the changes, apply none")
    sync.set_defaults(fn=cmd_sync_control_state)
    rec = sub.add_parser(
        "recover",
        help="clear every fault a killed drill left applied (same as `kdrill local recover`)",
    )
    rec.add_argument("--stack", default="local", help="stack name or stack file (default: local)")
    rec.set_defaults(fn=cmd_recover)
    wrk = sub.add_parser(
        "worker",
        help="run a share of a drill's workload for the drill process that started it",
        description="Started by `kdrill run` (workload.workers > 1), not by hand: connects to "
        "the drill's control channel, runs the producers and groups it is given and writes "
        "their history shard (drills/worker.py).",
    )
    wrk.add_argument("--connect", required=True, help="HOST:PORT of the drill's control channel")
    wrk.add_argument("--index", type=int, required=True, help="this worker's number")
    wrk.add_argument("--engine-pid", type=int, default=0,
                     help="the drill process's pid, on this machine (kdrill recover reaps a worker whose drill is gone)")  # fmt: skip
    wrk.set_defaults(fn=lambda a: __import__("drills.worker").worker.run_worker(
        a.connect, a.index, a.engine_pid))  # fmt: skip
    env_cli.add_parser(sub)  # kdrill env create|list|destroy|reap
    local_cli.add_parser(sub)  # kdrill local up|down|status|demo|fault|faults|recover|counters
    for name, fn, what in (
        ("up", local_cli.cmd_up, "bring the local pair and its stack up (= `kdrill local up`)"),
        ("down", local_cli.cmd_down, "tear the local pair down, keeping its stack's history"),
        (
            "status",
            local_cli.cmd_status,
            "what each region holds and runs (= `kdrill local status`)",
        ),
    ):
        alias = sub.add_parser(name, help=what, description=what)
        local_cli.add_stack_argument(alias)
        if name == "up":
            alias.add_argument("--policy", choices=sorted(POLICIES), help="replication policy")
        if name == "status":
            alias.add_argument("--json", action="store_true", help="machine-readable output")
        alias.set_defaults(fn=fn)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_signal_handlers()
    try:
        return args.fn(args)
    except (LocalEnvError, TargetError) as e:
        error(f"kdrill: error: {e}")
        return 1
    except KeyboardInterrupt:
        console.print("kdrill: interrupted; everything started has been torn down", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())

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
from components.local.errors import LocalEnvError
from drills.hooks import Callbacks
from drills.spec import DrillSpec, SpecError, load_spec
from drills.targets import Target, TargetError, open_target


def _load(spec_path: str, stack: str | None, keep: bool = False) -> tuple[DrillSpec, Target]:
    """The spec and its target, the fault checked against the target: raises SpecError or
    TargetError, and nothing has been touched either way."""
    spec = load_spec(spec_path)
    target = open_target(stack or spec.target.stack, keep)
    try:
        target.resolve_fault(spec.fault.fault_spec())
    except TargetError as e:
        raise TargetError(f"fault: {e}") from None
    return spec, target


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


def cmd_run(args) -> int:
    from drills.evidence import summary_lines
    from drills.runner import run_drill

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
    out.print(f"evidence: {run_dir}/evidence.json  ({time.monotonic() - started:.0f}s in all)")
    if args.keep and getattr(target, "owned", False):
        out.print("environment kept up (--keep): `kdrill local status`, then `kdrill local down`")
    return outcome.exit_code


def cmd_recover(args) -> int:
    target = open_target(args.stack)
    cleared = target.recover()
    for line in cleared:
        console.print(f"cleared {line}")
    console.print(f"recover: {len(cleared)} fault(s) cleared")
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
        "cutover, verify, teardown. Writes evidence.json, the journal and the raw history to "
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
    run.set_defaults(fn=cmd_run)
    val = sub.add_parser(
        "validate", help="check a drill spec without running it (exit 0 valid, 2 invalid)"
    )
    val.add_argument("spec")
    val.add_argument(
        "--stack", help="stack whose regions the fault must name (default: the spec's)"
    )
    val.set_defaults(fn=cmd_validate)
    from drills.cost.cli import add_parser as add_cost

    add_cost(sub)  # kdrill cost export|reconcile|refresh
    rec = sub.add_parser(
        "recover",
        help="clear every fault a killed drill left applied (same as `kdrill local recover`)",
    )
    rec.add_argument("--stack", default="local", help="stack name or stack file (default: local)")
    rec.set_defaults(fn=cmd_recover)
    local_cli.add_parser(sub)  # kdrill local up|down|status|demo|fault|faults|recover|counters
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

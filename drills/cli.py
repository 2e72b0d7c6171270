"""The `kdrill` command line.

Errors a user can fix come out as one line (`kdrill: error: ...`) with a
non-zero exit, never a traceback. SIGTERM and SIGHUP are turned into
KeyboardInterrupt so every long command unwinds through the same cleanup
(`up` tears down what it built; `demo` always tears down).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from components.local import config, faults, network
from components.local.env import LocalPair, PairStatus
from components.local.errors import LocalEnvError

console = Console(stderr=True, soft_wrap=True)
out = Console()


# Signals received. A KeyboardInterrupt raised while Python runs at-fork hooks (as when
# a signal lands inside subprocess.Popen) is printed as "Exception ignored" and lost, so
# the long commands also check this list between their steps and raise again.
_signals: list[int] = []


def _interrupt(signum, frame):
    _signals.append(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def check_interrupted() -> None:
    if _signals:
        raise KeyboardInterrupt(signal.Signals(_signals[-1]).name)


@contextmanager
def progress_display(title: str):
    """A spinner naming the current step, with each finished step and its time."""
    started = time.monotonic()
    state = {"step": None, "t": started}
    with console.status(title) as status:

        def step(msg: str) -> None:
            check_interrupted()
            now = time.monotonic()
            if state["step"]:
                console.print(f"  [green]✓[/] {state['step']} [dim]({now - state['t']:.1f}s)[/]")
            state.update(step=msg, t=now)
            status.update(f"{title}: {msg}")

        yield step
        step("")  # close the last step
    console.print(f"[bold]{title}[/]: done in {time.monotonic() - started:.1f}s")


def _pair_for(args) -> LocalPair:
    """The pair recorded as running for this stack, else one built from the stack file."""
    cfg = config.load(args.stack)
    return LocalPair.from_state(cfg.prefix) or LocalPair(cfg)


def cmd_up(args) -> int:
    pair = LocalPair.from_stack(args.stack)
    if args.policy:
        pair.policy = args.policy
    with progress_display(f"local pair {args.stack} up") as step:
        pair.up(progress=step)
    print_status(pair.status())
    return 0


def cmd_down(args) -> int:
    pair = _pair_for(args)
    t = time.monotonic()
    removed = pair.down()
    left = pair.leftovers()
    if left:
        console.print(f"[red]down left behind:[/] {', '.join(left)}")
        return 1
    what = ", ".join(removed) if removed else "nothing was up"
    console.print(f"local pair {args.stack} down in {time.monotonic() - t:.1f}s ({what})")
    return 0


def cmd_status(args) -> int:
    pair = _pair_for(args)
    st = pair.status()
    if args.json:
        out.print_json(json.dumps(asdict(st)))
    else:
        print_status(st)
    return 0 if st.up else 3


def print_status(st: PairStatus) -> None:
    out.print(
        f"[bold]stack[/] {st.stack}  [bold]up[/] {st.up}  [bold]replication policy[/] {st.policy}"
    )
    for r in st.regions:
        t = Table(title=f"{r.name} ({r.role})", title_justify="left")
        t.add_column("what")
        t.add_column("value")
        t.add_row("namespace", r.namespace)
        t.add_row("bootstrap", r.bootstrap)
        t.add_row("brokers", f"{r.brokers_registered}/{r.brokers_expected} registered")
        t.add_row("cpu quota", "unlimited" if r.cpu_cores is None else f"{r.cpu_cores:g} cores")
        t.add_row("s3", f"{r.s3_endpoint} buckets: {', '.join(r.buckets) or '-'}")
        for label, alive in r.processes.items():
            t.add_row(label, "[green]running[/]" if alive else "[red]not running[/]")
        for topic, parts in r.topics.items():
            t.add_row(f"topic {topic}", f"{sum(parts.values())} records, end offsets {parts}")
        t.add_row("consumer groups", ", ".join(r.groups) or "-")
        if r.error:
            t.add_row("[red]error[/]", r.error)
        out.print(t)


def _running_pair(args) -> LocalPair:
    pair = _pair_for(args)
    if not pair.is_up():
        raise LocalEnvError(f"local pair {args.stack} is not up; run `kdrill local up` first")
    return pair


def cmd_fault(args) -> int:
    if args.clear:
        pair = _pair_for(args)
        targets = (
            [e.id for e in faults.ledger(pair).open_entries()]
            if args.clear == "all"
            else [args.clear]
        )
        for fid in targets:
            e = faults.clear(pair, fid)
            console.print(f"cleared {e.id}: {e.fault.describe()}")
        if not targets:
            console.print("no fault applied")
        return 0
    if not args.kind:
        raise LocalEnvError("name a fault kind (see `kdrill local fault --help`) or --clear ID|all")
    spec = faults.FaultSpec(
        args.kind, args.region, args.link, faults.parse_params(args.param), args.duration
    )
    faults.validate(
        spec, config.load(args.stack)
    )  # bad input is reported before anything is touched
    e = faults.apply(_running_pair(args), spec)
    console.print(f"applied {e.id}: {e.fault.describe()} (t_fault={e.t_fault:.3f} monotonic)")
    if args.duration:
        try:
            with console.status(
                f"{e.id} applied; clearing in {args.duration:g}s (Ctrl-C clears now)"
            ):
                time.sleep(args.duration)
        finally:
            faults.clear(_pair_for(args), e.id)
            console.print(f"cleared {e.id}")
    return 0


def cmd_faults(args) -> int:
    pair = _pair_for(args)
    t = Table(title="faults applied", title_justify="left")
    for col in ("id", "fault", "status", "applied by pid", "observed"):
        t.add_column(col)
    open_entries = faults.ledger(pair).open_entries()
    for e in open_entries:
        try:
            seen = json.dumps(faults.observe(pair, e))
        except Exception as err:  # observing never fails the listing
            seen = f"(cannot observe: {err})"
        t.add_row(e.id, e.fault.describe(), e.status, str(e.applier_pid), seen)
    out.print(t if open_entries else "no fault applied")
    return 0


def cmd_recover(args) -> int:
    pair = _pair_for(args)
    cleared = faults.recover(pair)
    for e in cleared:
        console.print(f"cleared {e.id}: {e.fault.describe()} (applied by pid {e.applier_pid})")
    console.print(f"recover: {len(cleared)} fault(s) cleared")
    return 0


def cmd_counters(args) -> int:
    pair = _running_pair(args)
    t = Table(
        title="bytes on each region's backbone link (inter-region traffic)", title_justify="left"
    )
    for col in ("region", "in bytes", "out bytes", "in packets", "out packets"):
        t.add_column(col)
    for r in pair.regions:
        c = network.read_counters(r.namespace)
        t.add_row(
            r.name,
            *(str(c.get(k, 0)) for k in ("in_bytes", "out_bytes", "in_packets", "out_packets")),
        )
    out.print(t)
    return 0


def cmd_demo(args) -> int:
    from drills import local_demo

    return local_demo.run(args.stack, args.records, progress_display)


def cmd_validate(args) -> int:
    from drills.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as e:
        console.print(f"kdrill: invalid drill spec: {e}", markup=False, highlight=False)
        return 2
    try:
        pair_cfg = config.load(args.stack or spec.target.stack)
        faults.validate(_fault_spec(spec, pair_cfg), pair_cfg)
    except LocalEnvError as e:
        console.print(f"kdrill: {args.spec}: fault: {e}", markup=False, highlight=False)
        return 2
    console.print(f"{args.spec}: valid drill spec {spec.name!r} (schema version {spec.version})")
    return 0


def _fault_spec(spec, cfg) -> faults.FaultSpec:
    f = spec.fault
    region = f.region
    kind = faults.CATALOGUE[f.kind]
    if region is None and kind.region == "required":
        region = cfg.primary.name  # the drill's fault targets the primary unless it says otherwise
    return faults.FaultSpec(f.kind, region, f.link, dict(f.params), f.duration_s)


def cmd_run(args) -> int:
    from drills.engine import Drill, Hooks
    from drills.evidence import summary_lines
    from drills.spec import SpecError, load_spec
    from drills.target import LocalTarget

    try:
        spec = load_spec(args.spec)
        stack = args.stack or spec.target.stack
        if not stack.endswith((".yaml", ".yml")) and config.stack_file(stack).exists():
            pattern = (yaml.safe_load(config.stack_file(stack).read_text()) or {}).get("config", {})
            pattern = pattern.get("kdrill:pattern", "local")
            if pattern != "local":
                raise LocalEnvError(
                    f"stack {stack!r} is an AWS stack ({pattern}); drills run on the local stack only so far "
                    "(a Pulumi-stack target is not implemented yet): use --stack local"
                )
        cfg = config.load(stack)
        faults.validate(
            _fault_spec(spec, cfg), cfg
        )  # unknown region etc.: before anything is touched
    except SpecError as e:
        console.print(f"kdrill: invalid drill spec: {e}", markup=False, highlight=False)
        return 2
    except LocalEnvError as e:
        console.print(f"kdrill: cannot run {args.spec}: {e}", markup=False, highlight=False)
        return 2
    if spec.fault.region is None and faults.CATALOGUE[spec.fault.kind].region == "required":
        spec = spec.model_copy(
            update={"fault": spec.fault.model_copy(update={"region": cfg.primary.name})}
        )
    pair = LocalPair.from_state(cfg.prefix) or LocalPair(cfg)
    owned = not pair.is_up()
    run_dir = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.name}"
    started = time.monotonic()
    try:
        if owned:
            with progress_display(f"local pair {stack} up") as step:
                pair.up(progress=step)
        with console.status("drill") as status:

            def phase(ph: str, what: str) -> None:
                if ph not in ("rollback", "teardown"):  # clean-up runs to the end, whatever arrives
                    check_interrupted()
                console.print(f"  [dim]{time.monotonic() - started:6.1f}s[/] [bold]{ph}[/] {what}")
                status.update(f"{ph}: {what}")

            drill = Drill(
                spec,
                LocalTarget(pair),
                run_dir,
                Hooks(phase=phase, info=lambda m: console.print(f"  {m}")),
            )
            drill.teardown_fast = owned and not args.keep
            outcome = drill.run()
    except LocalEnvError as e:
        console.print(f"kdrill: drill could not run: {e}", markup=False, highlight=False)
        return 2
    finally:
        if owned and not args.keep:
            pair.down()
    for line in summary_lines(outcome.evidence):
        out.print(line, markup=False, highlight=False)
    out.print(f"evidence: {run_dir}/evidence.json  ({time.monotonic() - started:.0f}s in all)")
    if args.keep and owned:
        out.print("environment kept up (--keep): `kdrill local status`, then `kdrill local down`")
    return outcome.exit_code


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
    local = sub.add_parser(
        "local", help="the local region pair (network namespaces + real Kafka + MirrorMaker 2)"
    )
    lsub = local.add_subparsers(dest="cmd", required=True)

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = lsub.add_parser(name, help=help, description=help)
        sp.add_argument(
            "--stack",
            default="local",
            help="stack name, read from stacks/Pulumi.<stack>.yaml, or a path to a stack file (default: local)",
        )
        sp.set_defaults(fn=fn)
        return sp

    up = add(
        "up", cmd_up, "bring up both regions, their Kafka clusters, S3 endpoints and MirrorMaker 2"
    )
    up.add_argument(
        "--policy", choices=sorted(config.POLICIES), help="override the stack's replication policy"
    )
    add("down", cmd_down, "tear everything down: processes, namespaces, links, cgroups, state")
    st = add(
        "status", cmd_status, "what each region holds and runs (exit 3 when the pair is not up)"
    )
    st.add_argument("--json", action="store_true", help="machine-readable output")
    demo = add(
        "demo",
        cmd_demo,
        "bring the pair up, replicate a small workload, show what each region holds, tear down",
    )
    demo.add_argument("--records", type=int, default=1000, help="records to produce (default 1000)")

    kinds = "\n".join(f"  {k.name:<18} {k.help}" for k in faults.CATALOGUE.values())
    params = "\n".join(
        f"  {k.name:<18} " + ", ".join(f"{n}={p.type.__name__}" + (f" (default {p.default})" if p.default is not None else "")
                                       for n, p in k.params.items())
        for k in faults.CATALOGUE.values() if k.params
    )  # fmt: skip
    fault = add("fault", cmd_fault, "apply a fault to the running pair, or clear one")
    fault.formatter_class = argparse.RawDescriptionHelpFormatter
    fault.description = (
        "Apply a fault (recorded in the pair's fault ledger before it is applied), or clear one.\n\n"
        f"kinds:\n{kinds}\n\nparameters:\n{params}\n\n"
        "--link is client (clients' access) or backbone (the replication path); link faults act on the "
        "region's side of it, egress for bandwidth, and default to the primary."
    )
    fault.add_argument("kind", nargs="?", help="fault kind (see above)")
    fault.add_argument("--region", help="target region")
    fault.add_argument("--link", help="client or backbone")
    fault.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="fault parameter, repeatable"
    )
    fault.add_argument("--duration", type=float, help="clear automatically after this many seconds")
    fault.add_argument(
        "--clear", metavar="ID|all", help="clear fault ID (or all) instead of applying"
    )
    add("faults", cmd_faults, "list the faults applied, with what can be observed of each")
    add(
        "recover",
        cmd_recover,
        "clear every fault the ledger says is still applied (e.g. after a killed drill)",
    )
    add(
        "counters",
        cmd_counters,
        "bytes that crossed between the regions (nftables counters on the backbone)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        return args.fn(args)
    except LocalEnvError as e:
        console.print(f"kdrill: error: {e}", markup=False, highlight=False)
        return 1
    except KeyboardInterrupt:
        console.print("kdrill: interrupted; everything started has been torn down", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`kdrill local ...`: the local region pair's own commands (up, down, status, faults).

These manage the environment itself, so they live beside it; drill commands
(`kdrill run`, `validate`, `recover`) reach the pair only through a drill
target. Errors a user can fix are `LocalEnvError`s, printed as one line by the
main CLI.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from rich.table import Table

from components import faults as registry
from components.console import console, out, progress_display
from components.local import config, faults, network
from components.local.env import LocalPair, PairStatus
from components.local.errors import LocalEnvError


def pair_for(stack: str) -> LocalPair:
    """The pair recorded as running for this stack, else one built from the stack file."""
    cfg = config.load(stack)
    return LocalPair.from_state(cfg.prefix) or LocalPair(cfg)


def running_pair(stack: str) -> LocalPair:
    pair = pair_for(stack)
    if not pair.is_up():
        raise LocalEnvError(f"local pair {stack} is not up; run `kdrill local up` first")
    return pair


def cmd_up(args) -> int:
    pair = LocalPair.from_stack(args.stack)
    if args.policy:
        pair.policy = args.policy
    from components.local import faultswitch

    with progress_display(f"local pair {args.stack} up") as step:
        pair.up(progress=step)
        step(f"stack {pair.cfg.stack!r}: the fault switch (pulumi up if needed)")
        faultswitch.deploy(pair)
    print_status(pair.status())
    return 0


def cmd_down(args) -> int:
    pair = pair_for(args.stack)
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
    pair = pair_for(args.stack)
    if not pair.is_up():  # nothing to ask: brokers that are not there only time out
        if args.json:
            out.print_json(json.dumps({"up": False, "stack": pair.cfg.stack}))
        else:
            console.print(f"local pair {args.stack} is not up; `kdrill local up` starts it")
        return 3
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


def _next_key(pair: LocalPair) -> str:
    used = pair.stack.faults()
    return f"s{1 + max((int(k[1:]) for k in used if k[1:].isdigit()), default=0)}"


def cmd_fault(args) -> int:
    """A fault from the command line is a stack fault: an entry of the drill-time config
    applied by an update of the fault switch, cleared by removing it (and an update)."""
    from components.local import faultswitch

    if args.clear:
        pair = pair_for(args.stack)
        have = pair.stack.faults()
        ids = list(have) if args.clear == "all" else [args.clear]
        unknown = [i for i in ids if i not in have]
        if unknown:
            raise LocalEnvError(
                f"no fault {unknown[0]!r} in the stack's config; applied: {', '.join(have) or 'none'}"
            )
        for key in faultswitch.clear_keys(pair, ids) if ids else []:
            console.print(
                f"cleared {key}: {registry.FaultSpec.from_dict(dict(have[key])).describe()}"
            )
        if not ids:
            console.print("no fault applied")
        return 0
    if not args.kind:
        raise LocalEnvError("name a fault kind (see `kdrill local fault --help`) or --clear ID|all")
    spec = registry.FaultSpec(
        args.kind, args.region, args.link, faults.parse_params(args.param), args.duration
    )
    spec = faults.validate(spec, config.load(args.stack))  # bad input: before anything is touched
    pair = running_pair(args.stack)
    faultswitch.deploy(pair)
    key = _next_key(pair)
    pair.stack.add_fault(key, {k: v for k, v in spec.to_dict().items() if v is not None})
    try:
        applied = faultswitch.update(pair)
    except BaseException:
        pair.stack.remove_fault(key)
        raise
    if key not in applied:
        pair.stack.remove_fault(key)
        raise LocalEnvError(f"the stack update did not apply {spec.describe()} (key {key})")
    t_fault = float(applied[key]["t_fault"])
    console.print(f"applied {key}: {spec.describe()} (t_fault={t_fault:.3f} monotonic)")
    if args.duration:
        try:
            with console.status(
                f"{key} applied; clearing in {args.duration:g}s (Ctrl-C clears now)"
            ):
                time.sleep(args.duration)
        finally:
            faultswitch.clear_keys(pair_for(args.stack), [key])
            console.print(f"cleared {key}")
    return 0


def cmd_faults(args) -> int:
    """The stack's faults (its drill-time config), each with whether it is in effect on the
    live pair; then any fault effect on the pair no entry accounts for (a direct fence, what
    a killed process left)."""
    pair = pair_for(args.stack)
    t = Table(title="faults", title_justify="left")
    for col in ("key", "fault", "in effect", "observed"):
        t.add_column(col)
    have = pair.stack.faults()
    placed = []
    for key, spec in have.items():
        try:
            f = faults.place(pair, spec, key)
            placed.append(f)
            now = "yes" if faults.present(pair, f) else "no"
            seen = json.dumps(faults.observe(pair, f))
        except Exception as err:  # observing never fails the listing
            now, seen = "?", f"(cannot observe: {err})"
        t.add_row(key, registry.FaultSpec.from_dict(dict(spec)).describe(), now, seen)
    out.print(t if have else "no fault in the stack's config")
    stray = [x for x in faults.leftovers(pair)
             if not any(faults.kernel.table_name(f.key) in x for f in placed)]  # fmt: skip
    if stray:
        out.print("on the pair, not in the config: " + "; ".join(stray))
    return 0


def recover(stack: str) -> int:
    """End the engine sessions a kill left, release the stack, clear every fault still
    applied (what a killed drill left)."""
    from components.local import faultswitch

    done = faultswitch.recover(pair_for(stack))
    for line in done:
        console.print(line)
    console.print(f"recover: {len(done)} action(s)" if done else "recover: nothing to do")
    return 0


def cmd_recover(args) -> int:
    return recover(args.stack)


def cmd_counters(args) -> int:
    pair = running_pair(args.stack)
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
    from components.local import demo

    return demo.run(args.stack, args.records, progress_display)


def add_parser(sub) -> None:
    """Add `local` and its commands to the main parser's subcommands."""
    local = sub.add_parser(
        "local", help="the local region pair (network namespaces + real Kafka + MirrorMaker 2)"
    )
    lsub = local.add_subparsers(dest="cmd", required=True)

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = lsub.add_parser(name, help=help, description=help)
        add_stack_argument(sp)
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

    fault = add("fault", cmd_fault, "apply a fault to the running pair, or clear one")
    fault.formatter_class = argparse.RawDescriptionHelpFormatter
    fault.description = (
        "Apply a fault (an entry of the stack's drill-time config, applied by an update of the "
        "fault switch), or clear one.\n\n"
        f"{registry.help_text(target='local')}\n\n"
        "--region defaults to the stack's primary for kinds that act on a region. --link is client "
        "(clients' access) or backbone (the replication path); link faults act on the region's "
        "side of it, egress for bandwidth, and default to the backbone."
    )
    fault.add_argument("kind", nargs="?", help="fault kind (see above)")
    fault.add_argument("--region", help="target region (default: the primary)")
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
        "clear every fault effect left on the pair (e.g. after a killed drill), from the live system",
    )
    add(
        "counters",
        cmd_counters,
        "bytes that crossed between the regions (nftables counters on the backbone)",
    )


def add_stack_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stack",
        default="local",
        help="stack name, read from stacks/Pulumi.<stack>.yaml, or a path to a stack file (default: local)",
    )

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

from rich.console import Console
from rich.table import Table

from components.local import config
from components.local.env import LocalPair, PairStatus
from components.local.errors import LocalEnvError

console = Console(stderr=True, soft_wrap=True)
out = Console()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def progress_display(title: str):
    """A spinner naming the current step, with each finished step and its time."""
    started = time.monotonic()
    state = {"step": None, "t": started}
    with console.status(title) as status:

        def step(msg: str) -> None:
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


def cmd_demo(args) -> int:
    from drills import local_demo

    return local_demo.run(args.stack, args.records, progress_display)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kdrill",
        description="Cross-region recovery drills for Kafka. `kdrill local ...` manages the embedded "
        "default: two real Kafka clusters as two regions on this machine (needs root).",
    )
    sub = p.add_subparsers(dest="area", required=True)
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
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

"""Bench: how long each fault kind takes to apply and to clear on the local pair,
through the stack (a drill's way) and directly, in one run.

Through the stack: the fault is added to the drill-time config and the fault switch is
updated (`pulumi up --target`, components/local/faultswitch.py); `start -> T_fault` is from
the start of that update to the instant the provider applied the fault (the update's
output), `T_fault -> return` from there until the update and the read of its outputs
returned; clearing is another update. Directly: from the call to `t_fault`, and the whole
clear call (for region loss, broker kill and replication stop that includes restarting
the processes and waiting until they serve again).

    sudo .venv/bin/python bench/faults.py [--repeat 3] [--no-stack] [--kinds partition,...]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.clientconf import client_config  # noqa: E402
from components.faults import FaultSpec  # noqa: E402
from components.local import (
    config,  # noqa: E402
    faults,  # noqa: E402
)
from components.local.env import LocalPair  # noqa: E402
from drills.targets import LocalTarget  # noqa: E402


def specs(pair: LocalPair) -> list[FaultSpec]:
    p, s = pair.primary.name, pair.standby.name
    return [
        FaultSpec("partition"),
        FaultSpec("packet-loss", region=p, link="backbone", params={"percent": 30}),
        FaultSpec("bandwidth", region=p, link="backbone", params={"mbit": 1}),
        FaultSpec("latency", params={"ms": 200}),
        FaultSpec("blackhole", region=p, params={"endpoint": "kafka"}),
        FaultSpec("blackhole", region=s, params={"endpoint": "s3"}),
        FaultSpec("broker-pause", region=p),
        FaultSpec("replication-pause"),
        FaultSpec("cpu-squeeze", region=s, params={"cores": 0.25}),
        FaultSpec("broker-kill", region=p),
        FaultSpec("replication-stop"),
        FaultSpec("region-loss", region=p),
    ]


class Workload(threading.Thread):
    """A producer at `rate` records/s to the primary's `orders` (what a drill's default
    workload sends), delivery errors ignored: the stack's CPU burst competes with it."""

    def __init__(self, bootstrap: str, rate: float):
        super().__init__(daemon=True)
        self.bootstrap, self.rate, self.stop = bootstrap, rate, threading.Event()
        self.sent = 0

    def run(self) -> None:
        from confluent_kafka import Producer

        p = Producer(client_config(self.bootstrap, {"linger.ms": 5, "message.timeout.ms": 5000}))
        t0 = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while self.sent < due:
                try:
                    p.produce("orders", key=str(self.sent % 100).encode(), value=b"x" * 200)
                except BufferError:
                    break
                self.sent += 1
            p.poll(0.01)
        p.flush(5)


def med_ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:8.0f} ms" if xs else "       -   "


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds per fault kind (default 3)")
    ap.add_argument("--no-stack", action="store_true", help="direct only")
    ap.add_argument(
        "--rate",
        type=float,
        default=200,
        help="workload records/s (0: none; default 200, the default drill's producer)",
    )
    ap.add_argument("--kinds", default="", help="comma-separated kinds (default: all)")
    args = ap.parse_args()

    raw = copy.deepcopy(yaml.safe_load(config.stack_file("local").read_text())["config"])
    raw["kdrill:local"] = {"namePrefix": "kf", "network": "10.82.0.0/16"}
    pair = LocalPair(config.parse(raw, stack="bench-faults"))
    pair.down()
    try:
        pair.up()
        target = LocalTarget(pair)
        if not args.no_stack:
            target.prepare()  # the stack and its fault switch
        kinds = set(filter(None, args.kinds.split(",")))
        load = Workload(pair.primary.bootstrap, args.rate)
        if args.rate:
            load.start()
        print(f"{'fault':<40} {'stack: start->T_fault':>21} {'T_fault->return':>15} "
              f"{'clear':>11} | {'direct: apply':>13} {'clear':>11}", flush=True)  # fmt: skip
        for spec in specs(pair):
            if kinds and spec.kind not in kinds:
                continue
            s_apply, s_ret, s_clear, d_apply, d_clear = [], [], [], [], []
            for _ in range(args.repeat):
                if not args.no_stack:
                    fid, _t = target.apply_fault(spec)
                    u = target.fault_update(fid)
                    s_apply.append(u["start_to_t_fault_s"])
                    s_ret.append(u["t_fault_to_return_s"])
                    t0 = time.monotonic()
                    target.clear_fault(fid)
                    s_clear.append(time.monotonic() - t0)
                t0 = time.monotonic()
                e = faults.apply(pair, spec)
                d_apply.append(e.t_fault - t0)
                t0 = time.monotonic()
                faults.clear(pair, e.id)
                d_clear.append(time.monotonic() - t0)
            print(f"{spec.describe():<40} {med_ms(s_apply):>21} {med_ms(s_ret):>15} "
                  f"{med_ms(s_clear):>11} | {med_ms(d_apply):>13} {med_ms(d_clear):>11}",
                  flush=True)  # fmt: skip
        load.stop.set()
    finally:
        pair.down()
    print(
        f"(median of {args.repeat} rounds each; 2-core machine; workload {args.rate:.0f} records/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

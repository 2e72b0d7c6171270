"""Bench: how long each fault kind takes to apply and to clear on the local pair.

Apply time is from the call to `t_fault` (the action completed); clear time is
the whole clear call, which for region loss, broker kill and replication stop
includes restarting the processes and waiting until they serve again.

    sudo .venv/bin/python bench/faults.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.faults import FaultSpec  # noqa: E402
from components.local import (
    config,  # noqa: E402
    faults,  # noqa: E402
)
from components.local.env import LocalPair  # noqa: E402


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds per fault kind (default 3)")
    args = ap.parse_args()

    raw = copy.deepcopy(yaml.safe_load(config.stack_file("local").read_text())["config"])
    raw["kdrill:local"] = {"namePrefix": "kf", "network": "10.82.0.0/16"}
    pair = LocalPair(config.parse(raw, stack="bench-faults"))
    pair.down()
    rows = []
    try:
        pair.up()
        for spec in specs(pair):
            applies, clears = [], []
            for _ in range(args.repeat):
                t0 = time.monotonic()
                e = faults.apply(pair, spec)
                applies.append(e.t_fault - t0)
                t0 = time.monotonic()
                faults.clear(pair, e.id)
                clears.append(time.monotonic() - t0)
            rows.append((spec.describe(), statistics.median(applies), statistics.median(clears)))
            print(f"{rows[-1][0]:<45} apply {rows[-1][1] * 1000:8.1f} ms   clear {rows[-1][2] * 1000:8.1f} ms",
                  flush=True)  # fmt: skip
    finally:
        pair.down()
    print(f"(median of {args.repeat} rounds each; 2-core machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bench: capacity under peak -- the throughput drop of tests/integration/test_capacity.py's
step drill on a standby squeezed to a range of CPU quotas, and unsqueezed.

For each quota in `--cores` (1.0 = the stack's own quota, no squeeze), `--runs` drills:
the workload steps from 200 to 2,000 records/s of 1,000 B when the fault (the primary's
Kafka endpoint black-holed) strikes, the drill fails over, and the serving region's
acknowledged throughput over the 6 s serve window is compared with the offered 2,000/s.
Prints each run's drop, the median / min / max per quota, and the machine's load average:
where the quota that reproducibly misses `max_throughput_drop: 0.25` lies, and how far
the unsqueezed standby is from it.

Runs on its own pair: KDRILL_TEST_PAIR="<prefix> <network>" (default "kc 10.73.0.0/16"),
brought up here and torn down at the end.

    sudo KDRILL_TEST_PAIR="kc 10.73.0.0/16" .venv/bin/python bench/capacity.py \\
        [--cores 0.02,0.03,0.05,1.0] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components.local.env import LocalPair  # noqa: E402
from tests.integration.conftest import stack_config  # noqa: E402
from tests.integration.test_capacity import BOUND, run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", default="0.02,0.03,0.05,1.0", help="standby quotas, comma-separated")
    ap.add_argument("--runs", type=int, default=3, help="drills per quota")
    args = ap.parse_args()
    prefix, network = os.environ.get("KDRILL_TEST_PAIR", "kc 10.73.0.0/16").split()
    pair = LocalPair(stack_config(prefix, network))
    pair.down()
    results: dict[float, list[float]] = {}
    try:
        pair.up()
        with tempfile.TemporaryDirectory(prefix="kdrill-bench-capacity-") as tmp:
            for cores in [float(c) for c in args.cores.split(",")]:
                squeeze = None if cores >= pair.standby.spec.cpu_cores else cores
                for i in range(args.runs):
                    started = time.monotonic()
                    _, ev = run(pair, Path(tmp) / f"{cores}-{i}", squeeze)
                    cap = ev["capacity"]
                    results.setdefault(cores, []).append(cap["throughput_drop"])
                    print(f"cores {cores:<5g} run {i}: drop {cap['throughput_drop']:.1%} "
                          f"({cap['throughput_rps']:g} of {cap['offered_rps']:g} rec/s), "
                          f"drill {time.monotonic() - started:.0f} s, "
                          f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    finally:
        pair.down()
    print(f"\nthroughput drop per standby quota (bound {BOUND:.0%}), {args.runs} runs each:")
    for cores, drops in results.items():
        missed = sum(d > BOUND for d in drops)
        print(f"  {cores:<5g} cores: median {statistics.median(drops):.1%}  "
              f"min {min(drops):.1%}  max {max(drops):.1%}  missed {missed}/{len(drops)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

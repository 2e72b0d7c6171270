"""Bench: how close two faults of a timeline can strike on one stack.

Each fault a drill applies is a stack update of the fault switch, and the stack's lock
serialises updates, so a timeline's second fault, due at the same moment as the first,
strikes one update later. This applies two faults back to back through the stack, as the
engine does for `faults:` with equal `at_s` (`LocalTarget.apply_fault`, one after the
other), and prints per round the first's start -> T_fault, the gap T_fault(2) - T_fault(1)
(the closest two faults can be) and the second's start -> T_fault; then medians, with the
load average beside them (other work on the machine moves these figures).

    sudo .venv/bin/python bench/fault_spacing.py [--repeat 5] [--pair "ka 10.71.0.0/16"]

The pair is brought up on its own prefix and network (default KDRILL_TEST_PAIR, else
`ka 10.71.0.0/16`) and torn down after.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.faults import FaultSpec  # noqa: E402
from components.local import config  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from drills.targets import LocalTarget  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--pair", default=os.environ.get("KDRILL_TEST_PAIR", "ka 10.71.0.0/16"),
                    help="'<prefix> <network>' of the pair to bring up")  # fmt: skip
    args = ap.parse_args()
    prefix, network = args.pair.split()
    raw = copy.deepcopy(yaml.safe_load(config.stack_file("local").read_text())["config"])
    raw["kdrill:local"] = {"namePrefix": prefix, "network": network}
    pair = LocalPair(config.parse(raw, stack=f"bench-spacing-{prefix}"))
    pair.down()
    first_s, gaps, second_s = [], [], []
    try:
        pair.up()
        target = LocalTarget(pair)
        target.prepare()  # the stack and its fault switch
        a = FaultSpec("partition")
        b = FaultSpec("cpu-squeeze", region=pair.standby.name, params={"cores": 0.5})
        print(f"{'round':>5} {'1st start->T':>13} {'T2 - T1':>9} {'2nd start->T':>13} {'load':>6}")
        for i in range(args.repeat):
            f1, t1 = target.apply_fault(a)
            f2, t2 = target.apply_fault(b)  # due at once: it waits for the first update
            u1, u2 = target.fault_update(f1), target.fault_update(f2)
            first_s.append(u1["start_to_t_fault_s"])
            gaps.append(t2 - t1)
            second_s.append(u2["start_to_t_fault_s"])
            load = os.getloadavg()[0]
            print(f"{i + 1:>5} {first_s[-1]:>12.3f}s {gaps[-1]:>8.3f}s {second_s[-1]:>12.3f}s "
                  f"{load:>6.1f}", flush=True)  # fmt: skip
            target.clear_faults([f1, f2])
    finally:
        pair.down()
    if gaps:
        print(f"median over {len(gaps)} rounds: first start->T {statistics.median(first_s):.3f}s, "
              f"T2 - T1 {statistics.median(gaps):.3f}s (min {min(gaps):.3f}s, max {max(gaps):.3f}s), "
              f"second start->T {statistics.median(second_s):.3f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

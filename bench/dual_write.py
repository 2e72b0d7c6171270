"""Bench: how long the shipped dual-write drill takes, and where the time goes.

Runs drills/scenarios/dual-write-region-loss.yaml (on a topic of its own per round) on a local
pair and prints per round the drill's wall time, each phase's, the incident's stack update
(start -> T_fault) and the restore of the lost region inside verify, beside the figures
(one-sided records, diverging keys, deduplication, RPO, RTO) and the load average: the two
stack updates (the loss, the return) dominate and grow with the machine's load.

    sudo .venv/bin/python bench/dual_write.py [--repeat 3] [--pair "ke 10.75.0.0/16"] [--keep]

The pair is brought up on its own prefix and network (default KDRILL_TEST_PAIR, else
`kb 10.72.0.0/16`) and torn down after, unless --keep (then a pair already up is reused and
left up).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.local import config  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from drills.runner import run_drill  # noqa: E402
from drills.spec import load_spec, parse_spec  # noqa: E402
from drills.targets import LocalTarget  # noqa: E402

SCENARIO = (
    Path(__file__).resolve().parents[1] / "drills" / "scenarios" / "dual-write-region-loss.yaml"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--pair", default=os.environ.get("KDRILL_TEST_PAIR", "kb 10.72.0.0/16"),
                    help="'<prefix> <network>' of the pair to bring up")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="reuse a pair that is up; leave it up")
    args = ap.parse_args()
    prefix, network = args.pair.split()
    raw = copy.deepcopy(yaml.safe_load(config.stack_file("local").read_text())["config"])
    raw["kdrill:local"] = {"namePrefix": prefix, "network": network}
    for r in raw["kdrill:regions"]:
        r["brokers"] = 1
    pair = LocalPair(config.parse(raw, stack=f"test-{prefix}"))
    walls = []
    try:
        if not (args.keep and pair.is_up()):
            pair.down()
            pair.up()
        for i in range(args.repeat):
            data = load_spec(SCENARIO).to_dict()
            topic = f"orders-{uuid.uuid4().hex[:6]}"
            data["workload"]["topics"] = [{"name": topic, "partitions": 3}]
            for g in data["workload"]["groups"]:
                g["topics"] = [topic]
            with tempfile.TemporaryDirectory() as tmp:
                out = run_drill(parse_spec(data), LocalTarget(pair), Path(tmp) / "run")
                ev = json.loads((Path(tmp) / "run" / "evidence.json").read_text())
            j = ev["journal"]
            steps = " ".join(f"{s['phase']}:{s['duration']:.1f}" for s in j["steps"]
                             if s.get("duration") is not None)  # fmt: skip
            upd = (ev["faults"][0].get("stack_update") or {}).get("start_to_t_fault_s")
            dw, m = ev.get("dual_write") or {}, ev.get("measurements") or {}
            walls.append(j["duration"])
            print(f"round {i + 1}: {ev['status']} exit {out.exit_code} drill {j['duration']:.1f}s "
                  f"load {os.getloadavg()[0]:.1f}; loss update start->T {upd}s; {steps}")  # fmt: skip
            if dw:
                print(f"  one-sided acked {dw['acknowledged']['one_sided']} logged "
                      f"{dw['logged']['one_sided']}; diverging keys {dw['divergence']['keys']}; "
                      f"dedup removed {dw['dedup_removed']}; RPO {m['rpo']['records']}; "
                      f"RTO {m['rto']['seconds']}")  # fmt: skip
        if walls:
            print(f"median drill wall time over {len(walls)}: {statistics.median(walls):.1f}s "
                  f"(min {min(walls):.1f}s, max {max(walls):.1f}s)")  # fmt: skip
        return 0
    finally:
        if not args.keep:
            pair.down()


if __name__ == "__main__":
    raise SystemExit(main())

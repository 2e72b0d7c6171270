"""Bench: the default drill end to end, and what instrumentation costs a producer.

Prints:
- wall time of `kdrill run drills/scenarios/region-loss.yaml` from a pair that
  is not up (bring-up, the drill, teardown), and the drill's own phases;
- records/s acknowledged for the drill's instrumented producer (identity in
  every value, a history row per ack) vs a plain confluent-kafka producer with
  the same settings on the same cluster, and their ratio.

- over `--runs` default drills: the recovery time after detection (decide + cutover +
  first consume = RTO - detect), min / median / max, and its parts.

Targets: default drill under 90 s; ratio at least 0.8; after detection at most 0.5 s median.

    sudo .venv/bin/python bench/drill.py [--seconds 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components.local import config, kafka  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from drills.workload import (  # noqa: E402
    LOG,
    Detector,
    InstrumentedProducer,
    Placement,
    ProducerConfig,
    Recorder,
)

SIZE = 200
CONF = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}


def default_drill() -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        p = subprocess.run(
            [sys.executable, "-m", "drills.cli", "run", "drills/scenarios/region-loss.yaml", "--out", out],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.monotonic() - t0
        ev = next(Path(out).glob("*/evidence.json"), None)
        if ev is None:
            print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
            raise SystemExit("the default drill wrote no evidence")
        return wall, json.loads(ev.read_text())


def plain_rate(bootstrap: str, topic: str, seconds: float) -> float:
    p = Producer({"bootstrap.servers": bootstrap, **CONF}, logger=LOG)
    acked = [0]

    def done(err, msg):
        if err is None:
            acked[0] += 1

    value = b"x" * SIZE
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        try:
            p.produce(topic, value, key=f"k{i % 32}", on_delivery=done)
        except BufferError:
            p.poll(0.01)
        p.poll(0)
        i += 1
    p.flush(30)
    return acked[0] / seconds


def in_thread(fn, *args):
    """Run `fn` in a thread, as the drill's producers run: same conditions for both figures
    (on 2 cores, a producer loop in the main thread measured ~1.5x faster than in a thread)."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args)))
    t.start()
    t.join()
    return out[0]


def instrumented_rate(bootstrap: str, region: str, topic: str, seconds: float) -> float:
    rec = Recorder()
    timeouts = {"message_timeout_ms": 30000, "request_timeout_ms": 10000,
                "socket_connection_setup_timeout_ms": 10000, "metadata_max_age_ms": 60000}  # fmt: skip
    cfg = ProducerConfig(
        rate=1e9, keys=32, record_bytes=SIZE, acks="all", idempotence=True, timeouts=timeouts
    )
    prod = InstrumentedProducer("bench", cfg, Placement(region, bootstrap, {topic: topic}), rec,
                                Detector("delivery-errors", 3, 2))  # fmt: skip
    prod.start()
    time.sleep(seconds)
    prod.stop_flag.set()
    prod.join(60)
    return len(rec.acked) / seconds


def after_detection(first: dict, runs: int) -> None:
    """RTO - detect over `runs` default drills (the first is the end-to-end one)."""
    evs = [first] + [default_drill()[1] for _ in range(max(0, runs - 1))]
    rtos = [e["measurements"]["rto"] for e in evs if e.get("measurements")]
    rtos = [r for r in rtos if r.get("seconds") is not None and r.get("detect") is not None]
    if not rtos:
        print("after detection: no drill measured an RTO")
        return
    after = sorted(r["seconds"] - r["detect"] for r in rtos)
    parts = {
        k: statistics.median(r[k] for r in rtos) for k in ("decide", "cutover", "first_consume")
    }
    print(f"after detection over {len(after)} drills: min {after[0]:.3f} s  median "
          f"{statistics.median(after):.3f} s  max {after[-1]:.3f} s   (target median <= 0.5 s)")  # fmt: skip
    print("  median parts: " + ", ".join(f"{k} {v:.3f}s" for k, v in parts.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--seconds", type=float, default=10, help="length of each throughput run (default 10)"
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=5,
        help="default drills for the after-detection figure (default 5)",
    )
    args = ap.parse_args()

    if LocalPair.from_stack("local").is_up():
        raise SystemExit(
            "the local pair is up; `kdrill local down` first so the drill's wall time includes bring-up"
        )
    wall, ev = default_drill()
    phases = {}
    for s in ev["journal"]["steps"]:
        phases[s["phase"]] = phases.get(s["phase"], 0) + (s["duration"] or 0)
    print(f"default drill, end to end (up + drill + down): {wall:6.1f} s   (target < 90 s)   "
          f"verdict: {'PASS' if ev['verdict'] and ev['verdict']['passed'] else ev['status']}")  # fmt: skip
    print("  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
    rto = ev["measurements"]["rto"] if ev.get("measurements") else {}
    print(
        f"  RTO {rto.get('seconds')}  RPO {ev['measurements']['rpo']['records'] if ev.get('measurements') else None}"
    )

    after_detection(ev, args.runs)

    raw = copy.deepcopy(yaml.safe_load(config.stack_file("local").read_text())["config"])
    raw["kdrill:local"] = {"namePrefix": "kb", "network": "10.81.0.0/16"}
    pair = LocalPair(config.parse(raw, stack="bench"))
    pair.down()
    try:
        pair.up()
        kafka.create_topics(pair.primary.bootstrap, {"bench-plain": 3, "bench-instr": 3}, 1)
        rates = {}
        for name, fn in (
            (
                "plain",
                lambda: in_thread(plain_rate, pair.primary.bootstrap, "bench-plain", args.seconds),
            ),
            (
                "instrumented",
                lambda: instrumented_rate(
                    pair.primary.bootstrap, pair.primary.name, "bench-instr", args.seconds
                ),
            ),  # fmt: skip
        ):
            rates[name] = fn()
    finally:
        pair.down()
    ratio = rates["instrumented"] / rates["plain"]
    print(
        f"plain producer:        {rates['plain']:9.0f} records/s acknowledged ({SIZE} B, acks=all, idempotent)"
    )
    print(f"instrumented producer: {rates['instrumented']:9.0f} records/s acknowledged")
    print(
        f"ratio:                 {ratio:9.2f}   (target >= 0.8)   [{os.cpu_count()} cores, threads: {threading.active_count()}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

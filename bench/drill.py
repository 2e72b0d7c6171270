"""Bench: the default drill end to end, and what instrumentation costs a producer.

Prints:
- wall time of `kdrill run drills/scenarios/region-loss.yaml` from a pair that
  is not up (bring-up, the drill, teardown), and the drill's own phases;
- over `--runs` default drills: the recovery time after detection (decide + cutover +
  first consume = RTO - detect), min / median / max, its median parts, each run's figure;
- records/s acknowledged for the drill's instrumented producer (identity in
  every value, every ack recorded) vs a plain confluent-kafka producer with the
  same settings on the same cluster, alternating `--rounds` times, their medians
  and ratio (and each round's ratio: the machine is shared, figures are noisy).

Everything runs on the bench's own local pair (prefix kb, 10.81.0.0/16, written to a
temporary stack file; KDRILL_TEST_PAIR="<prefix> <network>" moves it), never on `kd`
(the default stack) or `kt` (the integration tests).

Targets: default drill under 90 s; ratio at least 0.8; after detection at most 0.5 s median.

    sudo .venv/bin/python bench/drill.py [--runs 5] [--seconds 10] [--rounds 3]
                                         [--part all|drill|throughput]
"""

from __future__ import annotations

import argparse
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
from components.clientconf import client_config  # noqa: E402
from components.local import config, kafka, security  # noqa: E402
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
# The bench's own pair; KDRILL_TEST_PAIR="<prefix> <network>" moves it (engineers sharing a
# machine each bench on their own prefix), as it moves the integration tests' pair.
PREFIX, NETWORK = os.environ.get("KDRILL_TEST_PAIR", "kb 10.81.0.0/16").split()
CONF = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}


def bench_stack(directory: Path) -> Path:
    """The local stack with the bench's own names and network (prefix kb, 10.81.0.0/16),
    so the bench never touches a pair someone else runs (kd: the default, kt: tests)."""
    raw = yaml.safe_load(config.stack_file("local").read_text())
    raw["config"]["kdrill:local"].update(namePrefix=PREFIX, network=NETWORK)
    path = directory / "Pulumi.bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


SPEC = "drills/scenarios/region-loss.yaml"


def default_drill(stack: Path, spec: str = SPEC, required: bool = True) -> tuple[float, dict]:
    """Wall time and evidence of one drill. A drill that wrote no evidence (it could not
    run, e.g. a broker that did not start) ends the bench when `required`, else gives {}."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        p = subprocess.run(
            [sys.executable, "-m", "drills.cli", "run", spec, "--stack", str(stack), "--out", out],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.monotonic() - t0
        ev = next(Path(out).glob("*/evidence.json"), None)
        if ev is None:
            print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
            if required:
                raise SystemExit("the default drill wrote no evidence")
            print("  (a drill that could not run is left out)", file=sys.stderr)
            return wall, {}
        return wall, json.loads(ev.read_text())


def plain_rate(bootstrap: str, topic: str, seconds: float) -> float:
    p = Producer(client_config(bootstrap, CONF), logger=LOG)
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
    return rec.ack_count() / seconds


def after_detection(stack: Path, spec: str, first: dict | None, runs: int) -> None:
    """RTO - detect over `runs` default drills (the first may be the end-to-end one)."""
    evs = ([first] if first else []) + [
        default_drill(stack, spec, required=False)[1]
        for _ in range(max(0, runs - (1 if first else 0)))
    ]
    if not all(evs):
        print(f"  drills that could not run (left out): {sum(not e for e in evs)}")
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
    print("  each: " + ", ".join(f"{a:.3f}" for a in after))


def throughput(stack: Path, seconds: float, rounds: int) -> None:
    """Plain vs instrumented, alternating, `rounds` times each on one pair; medians."""
    pair = LocalPair.from_stack("bench", stack)
    pair.down()
    rates: dict[str, list[float]] = {"plain": [], "instrumented": []}
    cpus: dict[str, list[float]] = {"plain": [], "instrumented": []}
    try:
        pair.up()
        kafka.create_topics(pair.primary.bootstrap, {"bench-plain": 3, "bench-instr": 3}, 1)
        if pair.secure:  # the instrumented producer writes as the workload's producer principal
            kafka.create_acls(pair.primary.bootstrap, security.bindings(
                [("TOPIC", "bench-instr", "LITERAL", f"User:{security.PRODUCER}", "WRITE")]))  # fmt: skip
        for _ in range(rounds):
            for name, run in (
                ("plain", lambda: in_thread(plain_rate, pair.primary.bootstrap, "bench-plain", seconds)),
                ("instrumented", lambda: instrumented_rate(pair.primary.bootstrap, pair.primary.name,
                                                           "bench-instr", seconds)),
            ):  # fmt: skip
                cpu = time.process_time()
                rates[name].append(run())
                # this process's CPU (the producer thread and librdkafka's) per acknowledged record
                cpus[name].append((time.process_time() - cpu) / (rates[name][-1] * seconds) * 1e6)
    finally:
        pair.down()
    plain, instr = (statistics.median(rates[k]) for k in ("plain", "instrumented"))
    cpu_p, cpu_i = (statistics.median(cpus[k]) for k in ("plain", "instrumented"))
    ratios = sorted(i / p for p, i in zip(rates["plain"], rates["instrumented"], strict=True))
    print(f"plain producer:        {plain:9.0f} records/s acknowledged ({SIZE} B, acks=all, "
          f"idempotent; median of {rounds}), {cpu_p:.2f} us client CPU per record")  # fmt: skip
    print(f"instrumented producer: {instr:9.0f} records/s acknowledged (every ack recorded), "
          f"{cpu_i:.2f} us client CPU per record")  # fmt: skip
    print(f"ratio:                 {instr / plain:9.2f}   (target >= 0.8)   per round: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}   [{os.cpu_count()} cores]")  # fmt: skip


class StandIn:
    """librdkafka replaced: produce() queues the delivery callback, poll() answers every
    queued send with a success report carrying one real confluent-kafka Message. What is
    left is the Python each producer spends per record, free of broker and machine noise."""

    def __init__(self, conf=None, logger=None):
        from confluent_kafka import Message

        self.queue: list = []
        self.msg = Message(topic="t", partition=0, offset=0, key=b"k", value=b"v")

    def produce(self, topic, value=None, key=None, partition=-1, on_delivery=None):
        self.queue.append(on_delivery)

    def poll(self, timeout=None):
        served, self.queue = self.queue, []
        for cb in served:
            cb(None, self.msg)
        return len(served)

    def flush(self, timeout=None):
        self.poll()
        return 0

    def purge(self, **kw):
        pass

    def list_topics(self, *a, **kw):
        pass


def overhead(seconds: float, rounds: int) -> None:
    """Python CPU per record, plain loop vs instrumented producer, on the stand-in."""
    import drills.workload as workload

    def plain() -> float:
        p, acked, value = StandIn(), [0], b"x" * SIZE

        def done(err, msg):
            if err is None:
                acked[0] += 1

        end, i, cpu = time.monotonic() + seconds, 0, time.thread_time()
        while time.monotonic() < end:  # as plain_rate
            p.produce("t", value, key=f"k{i % 32}", on_delivery=done)
            p.poll(0)
            i += 1
        p.flush()
        return (time.thread_time() - cpu) / acked[0] * 1e6

    def instrumented() -> float:
        rec, out = Recorder(), {}
        timeouts = {"message_timeout_ms": 1000, "request_timeout_ms": 1000,
                    "socket_connection_setup_timeout_ms": 1000, "metadata_max_age_ms": 5000}  # fmt: skip
        cfg = ProducerConfig(1e9, 32, SIZE, "all", True, timeouts)
        prod = InstrumentedProducer("bench", cfg, Placement("r", "r:9092", {"t": "t"}), rec,
                                    Detector("delivery-errors", 3, 2))  # fmt: skip
        run = prod._run

        def timed() -> None:
            cpu = time.thread_time()
            run()
            out["cpu"] = time.thread_time() - cpu

        prod._run = timed
        prod.start()
        time.sleep(seconds)
        prod.stop_flag.set()
        prod.join(60)
        return out["cpu"] / rec.ack_count() * 1e6

    real, workload.Producer = workload.Producer, StandIn
    try:
        got: dict[str, list[float]] = {"plain": [], "instrumented": []}
        for _ in range(rounds):
            got["plain"].append(in_thread(plain))
            got["instrumented"].append(instrumented())
    finally:
        workload.Producer = real
    p, i = (statistics.median(got[k]) for k in ("plain", "instrumented"))
    print(f"Python per record, librdkafka replaced by a stand-in (median of {rounds}): "
          f"plain {p:.2f} us, instrumented {i:.2f} us (+{i - p:.2f} us)")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--seconds", type=float, default=10, help="length of each throughput run (default 10)"
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="plain/instrumented throughput rounds (default 3)"
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=5,
        help="default drills for the after-detection figure (default 5)",
    )
    ap.add_argument(
        "--part",
        choices=("all", "drill", "throughput", "overhead"),
        default="all",
        help="drill: the default drill and the after-detection runs; throughput: the producers "
        "on a real broker; overhead: their Python per record on a stand-in (no pair needed)",
    )
    ap.add_argument(
        "--spec",
        default=str(ROOT / SPEC),
        help="the drill to run (default: the default drill; e.g. a copy with "
        "cutover.warm_standby: false for the cold cutover)",
    )
    args = ap.parse_args()
    spec = str(Path(args.spec).resolve())

    with tempfile.TemporaryDirectory() as d:
        stack = bench_stack(Path(d))
        if args.part in ("all", "drill"):
            if LocalPair.from_stack("bench", stack).is_up():
                raise SystemExit(
                    f"the bench pair ({PREFIX}) is up; `kdrill local down --stack <its file>` "
                    "first so the drill's wall time includes bring-up"
                )
            wall, ev = default_drill(stack, spec)
            phases: dict[str, float] = {}
            for s in ev["journal"]["steps"]:
                phases[s["phase"]] = phases.get(s["phase"], 0) + (s["duration"] or 0)
            verdict = "PASS" if ev["verdict"] and ev["verdict"]["passed"] else ev["status"]
            print(f"default drill, end to end (up + drill + down): {wall:6.1f} s   "
                  f"(target < 90 s)   verdict: {verdict}")  # fmt: skip
            print("  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
            m = ev.get("measurements") or {}
            print(f"  RTO {(m.get('rto') or {}).get('seconds')}  "
                  f"RPO {(m.get('rpo') or {}).get('records')}")  # fmt: skip
            after_detection(stack, spec, ev, args.runs)
        if args.part in ("all", "throughput"):
            throughput(stack, args.seconds, args.rounds)
        if args.part in ("all", "overhead"):
            overhead(min(args.seconds, 2.0), max(args.rounds, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())

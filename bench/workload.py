"""Bench: the workload as worker processes -- records/s with 1, 2 and 4 local workers, and
the checker's time on the merged history.

For each worker count N, N `kdrill worker` processes (drills/worker.py), one instrumented
producer each, send as fast as they can (200 B records, acks=all, idempotent, every ack
recorded) to one topic of 6 partitions for `--seconds`; the figure is the records the
primary acknowledged per second over that window (ack time inside it), counted in the
merged history, in all and per worker; beside it the records sent in the window and the
engine's live count (the acks the workers stream over their control channels). Then the run's log is
read back as a drill's verify step does, the engine's shard and the sharded meta.json are
written, and the bench times `read_history` (reading and merging the N + 1 shards) and
`check` on the merged history (the largest N's run).

Runs on its own local pair (prefix kb, 10.81.0.0/16; KDRILL_TEST_PAIR="<prefix> <network>"
moves it), brought up and torn down here. The machine's cores bound what N buys: every
worker, the brokers and MirrorMaker 2 share them (the count is printed).

    sudo .venv/bin/python bench/workload.py [--seconds 10] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.drill import bench_stack  # noqa: E402
from components.local import kafka, security  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from components.wait import wait_until  # noqa: E402
from drills.history import DrillMeta, check, read_history  # noqa: E402
from drills.shapes import RateSchedule  # noqa: E402
from drills.worker import WorkerPool, plan, producer_entry  # noqa: E402
from drills.workload import Placement, ProducerConfig, clock, read_log  # noqa: E402

TOPIC, PARTITIONS, SIZE, KEYS = "bench-workers", 6, 200, 32
RATE = 1_000_000.0  # per producer: as fast as it goes
TIMEOUTS = {"message_timeout_ms": 10000, "request_timeout_ms": 5000,
            "socket_connection_setup_timeout_ms": 3000, "metadata_max_age_ms": 10000}  # fmt: skip


def one_run(pair: LocalPair, n: int, seconds: float, out: Path) -> dict:
    """N workers for `seconds`: records/s acknowledged and sent in the window, from the
    merged history (in all and per worker) and as the engine saw the acks live."""
    bootstrap, region = pair.primary.bootstrap, pair.primary.name
    topic = f"{TOPIC}-{n}"
    kafka.create_topics(bootstrap, {topic: PARTITIONS}, 1)
    if pair.secure:  # the workers write as the workload's producer principal
        kafka.create_acls(bootstrap, security.bindings(
            [("TOPIC", topic, "LITERAL", f"User:{security.PRODUCER}", "WRITE")]))  # fmt: skip
    schedule = RateSchedule(RATE)
    cfg = ProducerConfig(RATE, KEYS, SIZE, "all", True, TIMEOUTS, schedule)
    place = Placement(region, bootstrap, {topic: topic})
    meta = DrillMeta(primary=region, standby=pair.standby.name, topics=(topic,), failover=False,
                     drill_id=f"bench-{n}")  # fmt: skip
    pids = [f"bench{n}-p{i}" for i in range(n)]
    history = out / f"workers-{n}" / "history"
    history.parent.mkdir(parents=True)
    pool = WorkerPool(n, history)
    try:
        pool.spawn()
        pool.start(plan(meta, schedule, "start", clock(), pids, [bootstrap], ["producer"]),
                   [producer_entry(p, cfg, place, None) for p in pids], [])  # fmt: skip
        wait_until(lambda: pool.rec.ack_count() > 1000, 60, "the workers' first acks")
        time.sleep(2)  # warm-up: every worker's producer past its first batches
        start = clock()
        time.sleep(seconds)
        end = clock()
        pool.stop(120)
    finally:
        pool.kill()
    live = pool.rec.acks_between(start, end) / (end - start)
    # the drill's verify: the primary's log read back, then the engine's shard + meta.json
    ends = kafka.end_offsets(bootstrap, [topic])
    left = read_log(bootstrap, ends, set(pids), pool.rec, region, f"bench-log-{n}")
    if left:
        raise SystemExit(f"bench: could not read back {left}")
    w = pool.rec.build(meta).writes
    producer = np.array(w["producer"].to_pylist())
    acked = w["ack_time"].to_numpy(zero_copy_only=False)
    sent = w["send_time"].to_numpy()
    inside = lambda t: (t >= start) & (t < end)  # noqa: E731
    dt = end - start
    return {
        "acked": inside(acked).sum() / dt,
        "sent": inside(sent).sum() / dt,
        "live": live,
        "per_worker": [(inside(acked) & (producer == p)).sum() / dt for p in pids],
        "history": history,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pair = LocalPair.from_stack("bench", bench_stack(tmp))
        pair.down()
        results = {}
        try:
            pair.up()
            for n in counts:
                results[n] = one_run(pair, n, args.seconds, tmp)
        finally:
            pair.down()
        print(f"[{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
              f"{SIZE} B records, acks=all, idempotent, {PARTITIONS} partitions, "
              f"{args.seconds:g} s window]")  # fmt: skip
        for n, r in results.items():
            print(f"{n} worker(s): {r['acked']:9.0f} records/s acknowledged ({r['sent']:.0f} sent; "
                  f"per worker {', '.join(f'{x:.0f}' for x in r['per_worker'])}; the engine's "
                  f"live view {r['live']:.0f})")  # fmt: skip
        n = max(results)
        history = results[n]["history"]
        reads, checks = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            merged = read_history(history)
            t1 = time.perf_counter()
            result = check(merged)
            t2 = time.perf_counter()
            reads.append(t1 - t0)
            checks.append(t2 - t1)
        print(f"checker on the merged history of {n} workers ({n + 1} shards, "
              f"{merged.writes.num_rows} writes, {merged.log.num_rows} log rows): "
              f"read+merge {statistics.median(reads):.2f} s, check {statistics.median(checks):.2f} s "
              f"(median of 3); lost {result.rpo.records}, valid {result.valid}")  # fmt: skip


if __name__ == "__main__":
    main()

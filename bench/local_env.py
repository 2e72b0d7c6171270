"""Bench: the local region pair's costs and MirrorMaker 2's replication lag.

Prints: time to bring the pair up, time to tear it down, peak RSS of the whole
environment (every process in both regions' cgroups, summed, sampled every
0.2 s), and replication lag p50/p99/max at a steady produce rate.

Lag of a record = the instant a consumer in the standby receives it minus the
record's CreateTime on the primary (MM2 preserves the timestamp); both clocks
are this machine's, so the figure includes the standby consumer's fetch delay,
an upper bound on MM2's own lag.

Targets on a 2-core machine: up < 30 s, down < 5 s, RSS < 3 GB, p99 < 2 s at 1,000 records/s.

    sudo .venv/bin/python bench/local_env.py [--rate 1000] [--seconds 30] [--brokers 1]
        [--prefix kl --network 10.85.0.0/16] [--security on|off] [--ups N]

`--ups N` brings the pair up and down N times first and prints each `up` (what SASL,
the authorizer, ACLs and quotas add to start-up: compare `--security on` with `off`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import yaml
from confluent_kafka import Consumer, Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.clientconf import client_config  # noqa: E402
from components.local import cgroups, config, kafka  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from components.wait import WaitTimeout, wait_until  # noqa: E402


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except FileNotFoundError:
            pass
    return total


class RssSampler(threading.Thread):
    def __init__(self, pair: LocalPair):
        super().__init__(daemon=True)
        self.pair, self.peak, self.stop = pair, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = [
                p
                for r in self.pair.regions
                if cgroups.exists(r.cgroup)
                for p in cgroups.procs(r.cgroup)
            ]
            self.peak = max(self.peak, rss_bytes(pids))
            time.sleep(0.2)


def measure_lag(pair: LocalPair, rate: int, seconds: int) -> list[float]:
    topic = f"bench-{uuid.uuid4().hex[:6]}"
    kafka.create_topics(pair.primary.bootstrap, {topic: 3}, min(3, len(pair.primary.brokers)))
    remote = pair.remote_topic(topic)
    lags: list[float] = []
    done = threading.Event()

    def consume() -> None:
        c = Consumer(
            client_config(
                pair.standby.bootstrap,
                {
                    "group.id": f"bench-{topic}",
                    "auto.offset.reset": "earliest",
                    "fetch.wait.max.ms": 10,
                },
            )  # fmt: skip
        )
        c.subscribe([remote])
        while not done.is_set():
            for m in c.consume(num_messages=1000, timeout=0.2):
                if m.error() is None:
                    lags.append(time.time() - m.timestamp()[1] / 1000)
        c.close()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    p = Producer(
        client_config(pair.primary.bootstrap, {"enable.idempotence": True, "linger.ms": 5})
    )
    # Warm up: MM2 finds a new topic on its next refresh and the consumer joins its
    # group; both are one-off delays, not steady-state lag. Wait for one record first.
    for part in range(3):
        p.produce(topic, value=b"warm-up", partition=part)
    p.flush(30)
    with contextlib.suppress(WaitTimeout):  # measured anyway; the warning below says so
        wait_until(lambda: len(lags) >= 3, 60, "the warm-up records in the standby")
    lags.clear()
    total = rate * seconds
    start = time.monotonic()
    for i in range(total):
        # pace: record i goes out at start + i / rate
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        p.produce(topic, key=str(i % 64), value=b"x" * 200)
        p.poll(0)
    p.flush(30)
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: len(lags) >= total, 60, "every record in the standby", interval=0.1)
    done.set()
    t.join(5)
    if len(lags) < total:
        print(
            f"warning: only {len(lags)} of {total} records reached the standby within 60 s",
            file=sys.stderr,
        )
    return lags


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=1000, help="records per second (default 1000)")
    ap.add_argument("--seconds", type=int, default=30, help="how long to produce (default 30)")
    ap.add_argument("--brokers", type=int, default=1, help="brokers per region (default 1)")
    ap.add_argument("--prefix", default="kl", help="the pair's name prefix (default kl)")
    ap.add_argument("--network", default="10.85.0.0/16", help="its /16 (default 10.85.0.0/16)")
    ap.add_argument("--security", choices=("on", "off"), default="on",
                    help="kdrill:security.enabled (default on, as shipped)")  # fmt: skip
    ap.add_argument("--ups", type=int, default=0, help="time N extra up/down cycles first")
    args = ap.parse_args()

    raw = copy.deepcopy(yaml.safe_load(config.stack_file("local").read_text())["config"])
    raw["kdrill:local"] = {"namePrefix": args.prefix, "network": args.network}
    raw["kdrill:security"] = {**raw.get("kdrill:security", {}), "enabled": args.security == "on"}
    for r in raw["kdrill:regions"]:
        r["brokers"] = args.brokers
    pair = LocalPair(config.parse(raw, stack=f"bench-{args.prefix}"))
    pair.down()
    ups = []
    for _ in range(args.ups):
        t0 = time.monotonic()
        try:
            pair.up()
            ups.append(time.monotonic() - t0)
        finally:
            pair.down()
    if ups:
        print(f"up x{len(ups)} (security {args.security}): median {statistics.median(ups):.1f} s; "
              f"each {', '.join(f'{u:.1f}' for u in ups)}; load {os.getloadavg()[0]:.1f}",
              flush=True)  # fmt: skip

    sampler = RssSampler(pair)
    sampler.start()
    try:
        t0 = time.monotonic()
        pair.up()
        up_s = time.monotonic() - t0
        lags = sorted(measure_lag(pair, args.rate, args.seconds))
    finally:
        sampler.stop.set()
        t0 = time.monotonic()
        pair.down()
        down_s = time.monotonic() - t0

    q = statistics.quantiles(lags, n=100) if len(lags) > 1 else [float("nan")] * 99
    print(f"machine: {os.cpu_count()} cores; brokers per region: {args.brokers}; cpu quota per region: "
          f"{', '.join(f'{r.name}={r.spec.cpu_cores:g}' for r in pair.regions)}")  # fmt: skip
    print(f"up:                 {up_s:6.1f} s   (target < 30 s)")
    print(f"down:               {down_s:6.1f} s   (target < 5 s)")
    print(f"peak RSS (all):     {sampler.peak / 2**30:6.2f} GB  (target < 3 GB)")
    print(f"records replicated: {len(lags)} at {args.rate}/s for {args.seconds} s")
    print(f"lag p50:            {q[49]:6.3f} s")
    print(f"lag p99:            {q[98]:6.3f} s   (target < 2 s)")
    print(f"lag max:            {max(lags) if lags else float('nan'):6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Each fault on the real pair, asserted from outside with numbers, then cleared.

Every test clears what it applied in `finally` and leaves the session pair
serving, so the order of tests does not matter.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from confluent_kafka import KafkaException, Producer

from components.clientconf import client_config
from components.faults import FaultSpec
from components.local import cgroups, faults, kafka, kernel, network, processes
from tests.integration.conftest import (
    consume_n,
    consumer,
    killed_after_applying,
    produce_all,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def fault(pair, kind, **kw):
    e = faults.apply(pair, FaultSpec(kind, **kw))
    try:
        yield e
    finally:
        faults.clear(pair, e.id)


def end_offset(bootstrap: str, topic: str, partitions: int = 1) -> int:
    """Records in the topic's first `partitions` partitions (sum of end offsets); 0 when
    it does not exist yet or the cluster cannot answer within a short patience."""
    try:
        ends = kafka.end_offsets(bootstrap, topic, patience=2)
    except KafkaException:
        return 0
    return sum(max(0, off) for (_, p), off in ends.items() if p < partitions)


def replicated_topic(pair, name: str, partitions: int = 1) -> str:
    """A new primary topic that MM2 already replicates (one warm-up record arrived)."""
    kafka.create_topics(pair.primary.bootstrap, {name: partitions}, 1)
    produce_all(pair.primary.bootstrap, [(b"warm", b"up", [])], name)
    remote = pair.remote_topic(name)
    wait_for(
        lambda: end_offset(pair.standby.bootstrap, remote, partitions) >= 1,
        60,
        f"{remote} to replicate",
    )
    return remote


def payload(n: int, size: int) -> list:
    return [(str(i).encode(), os.urandom(size), []) for i in range(n)]  # random: nothing compresses


def test_region_loss_fails_producers_within_their_timeout_and_standby_serves(pair, topic_name):
    kafka.create_topics(pair.standby.bootstrap, {topic_name: 1}, 1)
    with fault(pair, "region-loss", region=pair.primary.name) as e:
        assert e.t_fault is not None and e.status == "applied"
        errors, t0 = [], time.monotonic()
        p = Producer(client_config(pair.primary.bootstrap, {"message.timeout.ms": 4000}),
                     logger=kafka.RDKAFKA_LOG)  # fmt: skip
        p.produce(
            "orders",
            b"lost?",
            on_delivery=lambda err, m: errors.append((err, time.monotonic() - t0)),
        )
        p.flush(15)
        assert len(errors) == 1 and errors[0][0] is not None, (
            "a produce to a lost region was acknowledged"
        )
        assert errors[0][1] <= 4 + 2, (
            f"delivery failed only after {errors[0][1]:.1f}s (timeout 4 s)"
        )
        # the standby still serves clients
        produce_all(pair.standby.bootstrap, [(b"k", b"still here", [])], topic_name)
        assert [m.value() for m in consume_n(pair.standby.bootstrap, topic_name, 1)] == [
            b"still here"
        ]
    # cleared: the primary is back and accepts writes
    produce_all(pair.primary.bootstrap, [(b"k", b"back", [])], "orders")


def test_partition_stops_replication_and_it_catches_up_after(pair, topic_name):
    remote = replicated_topic(pair, topic_name)
    with fault(pair, "partition"):
        before = end_offset(pair.standby.bootstrap, remote)
        produce_all(
            pair.primary.bootstrap, payload(300, 100), topic_name
        )  # the primary keeps accepting
        primary_end = end_offset(pair.primary.bootstrap, topic_name)
        assert primary_end == before + 300
        for _ in range(10):  # 10 s of a still standby
            time.sleep(1)
            assert end_offset(pair.standby.bootstrap, remote) == before, (
                "records crossed a partition"
            )
    t0 = time.monotonic()
    wait_for(
        lambda: end_offset(pair.standby.bootstrap, remote) == primary_end,
        30,
        "the standby to catch up",
    )
    print(f"caught up {time.monotonic() - t0:.1f}s after clearing the partition")


def test_bandwidth_limit_caps_replication_throughput(pair, topic_name):
    remote = replicated_topic(pair, topic_name)
    size = 1000
    with fault(pair, "bandwidth", region=pair.primary.name, link="backbone", params={"mbit": 1}):
        produce_all(
            pair.primary.bootstrap, payload(2000, size), topic_name
        )  # 2 MB waiting to cross
        # skip the token bucket's initial burst, then measure over 8 s
        start = wait_for(
            lambda: end_offset(pair.standby.bootstrap, remote) > 100, 30, "replication to start"
        )
        t0 = time.monotonic()
        time.sleep(8)
        n1, t1 = end_offset(pair.standby.bootstrap, remote), time.monotonic()
    mbit_s = (n1 - start) * size * 8 / (t1 - t0) / 1e6
    print(f"payload replicated at {mbit_s:.2f} Mbit/s under a 1 Mbit/s tbf")
    assert mbit_s <= 1.2, (
        f"replication ran at {mbit_s:.2f} Mbit/s of payload through a 1 Mbit/s limit"
    )
    assert mbit_s >= 0.2, (
        f"replication nearly stopped ({mbit_s:.2f} Mbit/s): the limit is not a rate limit"
    )
    wait_for(
        lambda: end_offset(pair.standby.bootstrap, remote) == 2001, 60, "catch-up after clearing"
    )


def time_to_replicate(
    pair, topic: str, remote: str, records: int, size: int, timeout: float = 120
) -> float:
    base = end_offset(pair.standby.bootstrap, remote)
    t0 = time.monotonic()
    produce_all(pair.primary.bootstrap, payload(records, size), topic)
    wait_for(
        lambda: end_offset(pair.standby.bootstrap, remote) >= base + records,
        timeout,
        f"{remote} to replicate",
    )
    return time.monotonic() - t0


def test_packet_loss_cuts_replication_throughput(pair, topic_name):
    remote = replicated_topic(pair, topic_name)
    n, size = 3000, 1000
    clean = n * size / time_to_replicate(pair, topic_name, remote, n, size) / 1e3
    # With loss, TCP may not finish in any useful time: measure what crosses in 10 s instead.
    with fault(
        pair, "packet-loss", region=pair.primary.name, link="backbone", params={"percent": 30}
    ) as e:
        base = end_offset(pair.standby.bootstrap, remote)
        produce_all(pair.primary.bootstrap, payload(n, size), topic_name)
        t0 = time.monotonic()
        time.sleep(10)
        crossed = end_offset(pair.standby.bootstrap, remote) - base
        lossy = crossed * size / (time.monotonic() - t0) / 1e3
        dropped = faults.observe(pair, e)[pair.primary.namespace]["packets"]
    print(
        f"replication: {clean:.0f} kB/s clean, {lossy:.0f} kB/s at 30% loss ({dropped} packets dropped)"
    )
    assert dropped > 0
    assert lossy < 0.5 * clean, f"30% loss left throughput at {lossy:.0f} of {clean:.0f} kB/s"
    wait_for(
        lambda: end_offset(pair.standby.bootstrap, remote) == base + n,
        90,
        "catch-up after clearing",
    )


def lag_sample(pair, topic: str, remote: str, records: int = 300, rate: int = 100) -> list[float]:
    """Replication lag of records produced at `rate`/s: standby receive time minus CreateTime."""
    c = consumer(pair.standby.bootstrap, **{"fetch.wait.max.ms": 10})
    c.subscribe([remote])
    wait_for(
        lambda: c.assignment() or c.poll(0.2) or c.assignment(), 30, "the lag consumer's assignment"
    )
    p = Producer(client_config(pair.primary.bootstrap, {"linger.ms": 0}))
    lags: list[float] = []
    start = time.monotonic()
    for i in range(records):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        p.produce(topic, value=b"x" * 100)
        p.poll(0)
        for m in c.consume(num_messages=100, timeout=0):
            if m.error() is None and m.value() != b"up":
                lags.append(time.time() - m.timestamp()[1] / 1000)
    p.flush(10)
    deadline = time.monotonic() + 30
    while len(lags) < records and time.monotonic() < deadline:
        for m in c.consume(num_messages=100, timeout=0.2):
            if m.error() is None and m.value() != b"up":
                lags.append(time.time() - m.timestamp()[1] / 1000)
    c.close()
    assert len(lags) >= records * 0.95, f"only {len(lags)} of {records} records replicated"
    return lags


def test_latency_raises_replication_lag_by_the_added_round_trip(pair, topic_name):
    remote = replicated_topic(pair, topic_name)
    base = statistics.median(lag_sample(pair, topic_name, remote))
    added_ms = 200
    with fault(pair, "latency", params={"ms": pair.cfg.rtt_ms + added_ms}) as e:
        assert faults.observe(pair, e)["rtt_jitter_ms"][0] == pair.cfg.rtt_ms + added_ms
        slow = statistics.median(lag_sample(pair, topic_name, remote))
    print(
        f"median lag {base * 1000:.0f} ms at {pair.cfg.rtt_ms} ms RTT, {slow * 1000:.0f} ms at +{added_ms} ms"
    )
    assert slow - base >= added_ms / 1000, (
        f"lag rose by {(slow - base) * 1000:.0f} ms for +{added_ms} ms RTT"
    )
    assert (
        pair.latency_proxy.latency(pair.replication_proxies()[0])[0] == pair.cfg.rtt_ms
    )  # default restored


def test_blackholed_listener_times_clients_out_and_spares_the_other_region(pair, topic_name):
    kafka.create_topics(pair.standby.bootstrap, {topic_name: 1}, 1)
    with fault(pair, "blackhole", region=pair.primary.name, params={"endpoint": "kafka"}) as e:
        errors, t0 = [], time.monotonic()
        p = Producer(client_config(pair.primary.bootstrap, {"message.timeout.ms": 3000}),
                     logger=kafka.RDKAFKA_LOG)  # fmt: skip
        p.produce(
            "orders", b"x", on_delivery=lambda err, m: errors.append((err, time.monotonic() - t0))
        )
        p.flush(15)
        assert errors and errors[0][0] is not None, (
            "a produce through a blackholed endpoint was acknowledged"
        )
        assert errors[0][1] >= 2.5, f"failed after {errors[0][1]:.1f}s: refused, not timed out"
        assert faults.observe(pair, e)[pair.primary.namespace]["packets"] > 0
        produce_all(pair.standby.bootstrap, [(b"k", b"fine", [])], topic_name)
    produce_all(pair.primary.bootstrap, [(b"k", b"reachable again", [])], "orders")


def test_backbone_counters_count_replicated_bytes(pair, topic_name):
    remote = replicated_topic(pair, topic_name)
    before = network.read_counters(pair.primary.namespace)["out_bytes"]
    time_to_replicate(pair, topic_name, remote, 500, 1000)
    crossed = network.read_counters(pair.primary.namespace)["out_bytes"] - before
    assert crossed >= 500 * 1000, (
        f"only {crossed} bytes counted leaving the primary for 500 kB replicated"
    )


APPLIER = """
import sys, time
from components.local.env import LocalPair
from components.faults import FaultSpec
from components.local import faults
pair = LocalPair.from_state(sys.argv[1], __import__("pathlib").Path(sys.argv[2]))
for spec in [
    FaultSpec("partition"),
    FaultSpec("packet-loss", region=pair.standby.name, link="client", params={"percent": 10}),
    FaultSpec("bandwidth", region=pair.primary.name, link="backbone", params={"mbit": 5}),
    FaultSpec("latency", params={"ms": 300}),
    FaultSpec("blackhole", region=pair.standby.name, params={"endpoint": "s3"}),
    FaultSpec("cpu-squeeze", region=pair.standby.name, params={"cores": 0.5}),
    FaultSpec("replication-pause"),
]:
    faults.apply(pair, spec)
print("applied", flush=True)
time.sleep(600)
"""


def test_recover_after_sigkill_of_the_applier_clears_everything(pair, tmp_path):
    applier = killed_after_applying(APPLIER, pair)

    mm2 = pair.find("mirrormaker2", pair.standby.name)
    # still in effect after the applier died
    assert any(t.startswith("kdrill_direct_") for t in kernel.tables(pair.standby.namespace))
    assert "tbf" in kernel.qdisc(pair.primary.namespace, "backbone")
    assert processes._state(mm2.pid) == "T"

    stack = tmp_path / "Pulumi.kt.yaml"
    stack.write_text(yaml.safe_dump({"config": pair.cfg.raw}))
    out = subprocess.run(
        [sys.executable, "-m", "drills.cli", "local", "recover", "--stack", str(stack)],
        cwd=REPO, env={**os.environ, "KDRILL_STATE_DIR": str(pair.dir.parent)}, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for line in ("deleted nft table kdrill_direct_partition", "deleted nft table kdrill_direct_packet_loss",
                 "removed the tbf qdisc", "replication latency back", "deleted nft table kdrill_direct_blackhole",
                 "CPU quota of", "SIGCONT to process"):  # fmt: skip
        assert line in out.stderr, out.stderr

    for r in pair.regions:
        assert kernel.tables(r.namespace) == ["kdrill_counters"], f"nft tables left in {r.name}"
        for dev in ("client", "backbone"):
            assert "tbf" not in kernel.qdisc(r.namespace, dev), f"tc qdisc left on {r.name}/{dev}"
        assert cgroups.quota_cores(r.cgroup) == pytest.approx(r.spec.cpu_cores)
        for pid in cgroups.procs(r.cgroup):
            assert processes._state(pid) != "T", f"process {pid} in {r.name} still stopped"
            assert pid in {p.pid for p in pair.procs}, f"stray process {pid} in {r.name}"
    assert pair.latency_proxy.latency(pair.replication_proxies()[0]) == (pair.cfg.rtt_ms, 0)
    assert faults.leftovers(pair) == []
    assert not (pair.dir / "faults.json").exists(), "recover works with no file of its own"
    assert not processes.alive(applier)

"""Fixtures for tests on real processes: one local pair per test session.

Like confluent-kafka-python's integration fixtures: the pair is started once
(session scope) and always torn down in `finally`; tests get factories and
unique topic names. The pair runs in namespace mode, which needs root: in CI
a failure to create namespaces fails the run, it never skips.

The test pair uses its own name prefix and network (`kt`, 10.78.0.0/16), so it
never collides with a pair a developer has up with `kdrill local up`;
KDRILL_TEST_PAIR="<prefix> <network>" moves it (two test runs side by side).
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from components.clientconf import client_config
from components.local import config
from components.local.env import LocalPair
from components.wait import WaitTimeout, wait_until


def stack_config(prefix: str, network: str, brokers: int = 1, **replication) -> config.LocalConfig:
    """The shipped local stack, renamed onto its own prefix and network."""
    raw = copy.deepcopy(yaml.safe_load(config.stack_file("local").read_text())["config"])
    raw["kdrill:local"] = {"namePrefix": prefix, "network": network}
    for r in raw["kdrill:regions"]:
        r["brokers"] = brokers
    raw["kdrill:replication"].update(replication)
    return config.parse(raw, stack=f"test-{prefix}")


@pytest.fixture(scope="session")
def pair() -> Iterator[LocalPair]:
    """KDRILL_TEST_KEEP=1 (development only): use the pair if it is up, and leave it up
    afterwards (`kdrill local down` or a run without it removes it)."""
    prefix, network = os.environ.get("KDRILL_TEST_PAIR", "kt 10.78.0.0/16").split()
    keep = os.environ.get("KDRILL_TEST_KEEP") == "1"
    p = LocalPair(stack_config(prefix, network))
    if keep and p.is_up():
        yield p
        return
    p.down()  # whatever an earlier, killed test run left
    try:
        p.up()
        yield p
    finally:
        if not keep:
            p.down()


@pytest.fixture(scope="session")
def default_drill(pair, tmp_path_factory):
    """The default drill (drills/scenarios/region-loss.yaml on a topic of its own, with a cost
    budget), run once per session: test_drill's figures, test_report's report and
    test_cost_export's exports all read this one run rather than a drill each (a minute
    apiece). Tests read its run directory and never change what is in it."""
    from drills.runner import run_drill
    from drills.targets import LocalTarget
    from tests.integration.test_drill import spec  # a test module: imported once the session runs

    run_dir = tmp_path_factory.mktemp("default-drill") / "run"
    return run_drill(spec(**{"cost": {"budget_usd": 5.0}}), LocalTarget(pair), run_dir)


@pytest.fixture
def topic_name() -> Iterator[str]:
    yield f"t-{uuid.uuid4().hex[:10]}"


def producer(bootstrap: str, **extra) -> Producer:
    return Producer(client_config(bootstrap, {"enable.idempotence": True, "linger.ms": 5, **extra}))


def consumer(bootstrap: str, group: str | None = None, **extra) -> Consumer:
    return Consumer(
        {
            **client_config(bootstrap),
            "group.id": group or f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        }
    )


def produce_all(bootstrap: str, records: list[tuple[bytes, bytes, list]], topic: str) -> None:
    """Produce and wait for every acknowledgement; fail on any delivery error."""
    errors: list = []
    p = producer(bootstrap)
    for key, value, headers in records:
        p.produce(
            topic,
            key=key,
            value=value,
            headers=headers,
            on_delivery=lambda e, m: e and errors.append(e),
        )
        p.poll(0)
    assert p.flush(30) == 0, "records still in flight after 30 s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"


def consume_n(
    bootstrap: str, topic: str, n: int, timeout: float = 60, group: str | None = None
) -> list:
    """Read until n records arrive (or the timeout), polling, never sleeping."""
    c = consumer(bootstrap, group)
    c.subscribe([topic])
    got: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error() is not None:
                    # the topic may not exist yet (MM2 creates remote topics on its next refresh)
                    assert m.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART, m.error()
                    continue
                got.append(m)
        return got
    finally:
        c.close()


def read_log(
    bootstrap: str,
    topic: str,
    partitions: list[int] | None = None,
    upto: dict[int, int] | None = None,
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of every record of `topic` (or of `partitions`), read
    from offset 0 to the end offsets as they are now, or below the offsets `upto` gives: the
    log itself through the cluster's bootstrap, with the test's own consumer, so a test's
    count never comes from the drill's reader."""
    c = consumer(bootstrap)
    try:
        if partitions is None and upto is None:
            partitions = list(c.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = upto or {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in partitions or []
        }
        left = {p: e for p, e in ends.items() if e > 0}
        c.assign([TopicPartition(topic, p, 0) for p in left])
        out: list[tuple[int, int, bytes | None, bytes | None]] = []

        def read() -> bool:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error() is not None or m.offset() >= ends.get(m.partition(), 0):
                    continue
                if m.offset() + 1 >= left.get(m.partition(), 0):
                    left.pop(m.partition(), None)
                out.append((m.partition(), m.offset(), m.key(), m.value()))
            return not left

        wait_for(read, 60, f"{topic} read to {ends}", interval=0)
        return out
    finally:
        c.close()


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    """Poll `condition()` until it returns something truthy; fail naming `what`."""
    last = None

    def probe():
        nonlocal last
        last = condition()
        return last

    try:
        return wait_until(probe, timeout, what, interval=interval)
    except WaitTimeout:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def killed_after_applying(script: str, pair: LocalPair) -> int:
    """Run `script` (argv: the pair's prefix and state root) in another process until it
    prints "applied", then SIGKILL it: what a kdrill killed with faults in effect leaves.
    Returns its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, pair.cfg.prefix, str(pair.dir.parent)],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "applied"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return proc.pid

"""`kdrill local demo`: show the pair replicating (the README's `./run demo`).

Brings the local pair up (unless it already is), produces a small keyed
workload to the primary, lets a consumer group read and commit part of it, waits
until MirrorMaker 2 has copied every record and the group's offsets to the
standby, prints what each region holds, and tears the pair down again (only if
this command brought it up).
"""

from __future__ import annotations

import contextlib
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from components.clientconf import client_config
from components.local import kafka
from components.local.env import LocalPair
from components.local.errors import LocalEnvError
from components.wait import WaitTimeout, wait_until

GROUP = "demo-readers"
out = Console()


def run(stack: str, records: int, progress_display) -> int:
    if records < 1:
        raise LocalEnvError(f"--records {records}: must be at least 1")
    pair = LocalPair.from_stack(stack)
    if not pair.cfg.topics:
        raise LocalEnvError(f"stack {stack} lists no kdrill:topics; add one to replicate")
    topic = pair.cfg.topics[0].name
    owned = not pair.is_up()
    try:
        with progress_display(f"demo on stack {stack}") as step:
            if owned:
                pair.up(progress=step)
            step(f"producing {records} records to {topic} in {pair.primary.name}")
            produce(pair.primary.bootstrap, topic, records)
            step(f"group {GROUP} reads and commits half of them in {pair.primary.name}")
            consume_and_commit(pair.primary.bootstrap, topic, GROUP, records // 2)
            remote = pair.remote_topic(topic)
            step(f"waiting for MirrorMaker 2 to copy them to {remote} in {pair.standby.name}")
            lag = wait_replicated(pair, topic, remote)
            step(f"waiting for {GROUP}'s offsets to reach {pair.standby.name}")
            synced = wait_group_synced(pair.standby.bootstrap, GROUP, remote)
            step("reading both regions")
            show(pair, topic, remote, lag, synced)
    finally:
        if owned:
            t = time.monotonic()
            pair.down()
            out.print(f"torn down in {time.monotonic() - t:.1f}s")
    return 0


def produce(bootstrap: str, topic: str, n: int) -> None:
    p = Producer(client_config(bootstrap, {"enable.idempotence": True, "linger.ms": 5}))
    failed: list[str] = []
    for i in range(n):
        p.produce(
            topic,
            key=f"key-{i % 16}",
            value=f"record {i}",
            headers={"kdrill-seq": str(i)},
            on_delivery=lambda err, msg: failed.append(str(err)) if err else None,
        )
        p.poll(0)
    p.flush(30)
    if failed:
        raise LocalEnvError(f"{len(failed)} of {n} records were not acknowledged: {failed[0]}")


def consume_and_commit(bootstrap: str, topic: str, group: str, n: int) -> None:
    c = Consumer(
        client_config(
            bootstrap,
            {"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False},
        )
    )
    c.subscribe([topic])
    got, deadline = 0, time.monotonic() + 60
    while got < n and time.monotonic() < deadline:
        got += len(c.consume(num_messages=min(500, n - got), timeout=1))
    c.commit(asynchronous=False)
    c.close()  # an inactive group: MM2 syncs offsets only into groups empty in the target


def by_partition(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> end offset of one topic (empty while it does not exist), for display."""
    return {p: off for (_, p), off in kafka.end_offsets(bootstrap, topic).items()}


def wait_replicated(pair: LocalPair, topic: str, remote: str, timeout: float = 90) -> float:
    """Seconds from now until the standby's end offsets match the primary's."""
    want = by_partition(pair.primary.bootstrap, topic)
    t0 = time.monotonic()
    wait_until(
        lambda: by_partition(pair.standby.bootstrap, remote) == want,
        timeout,
        f"{remote} to catch up",
        interval=0.2,
        error=lambda _: LocalEnvError(
            f"{remote} in {pair.standby.name} did not catch up with {topic} in {timeout:.0f}s"
        ),
    )
    return time.monotonic() - t0


def wait_group_synced(
    bootstrap: str, group: str, remote: str, timeout: float = 60
) -> dict[int, int]:
    """The group's committed offsets in the standby once MM2 has synced any; {} if none
    arrive within `timeout` (the demo then says so rather than failing)."""
    c = Consumer(client_config(bootstrap, {"group.id": group, "enable.auto.commit": False}))
    try:
        parts = c.list_topics(remote, timeout=5).topics[remote].partitions

        def synced() -> dict[int, int]:
            committed = c.committed([TopicPartition(remote, p) for p in parts], timeout=5)
            return {tp.partition: tp.offset for tp in committed if tp.offset >= 0}

        with contextlib.suppress(WaitTimeout):
            return wait_until(synced, timeout, f"{group}'s offsets in the standby", interval=0.5)
        return {}
    finally:
        c.close()


def show(pair: LocalPair, topic: str, remote: str, lag: float, synced: dict[int, int]) -> None:
    t = Table(title="what each region holds", title_justify="left")
    for col in ("region", "role", "topic", "records", "end offsets per partition", "group offsets"):
        t.add_column(col)
    prim = by_partition(pair.primary.bootstrap, topic)
    stby = by_partition(pair.standby.bootstrap, remote)
    t.add_row(
        pair.primary.name,
        "primary",
        topic,
        str(sum(prim.values())),
        str(prim),
        "(committed on primary)",
    )
    t.add_row(
        pair.standby.name,
        "standby",
        remote,
        str(sum(stby.values())),
        str(stby),
        f"{GROUP}: {synced}" if synced else "not synced yet",
    )
    out.print(t)
    out.print(f"replication policy {pair.policy}; standby caught up {lag:.1f}s after the last ack")

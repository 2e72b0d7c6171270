"""Minimal reproductions of two Tansu 0.6.0 defects the rehearsal meets
(tools/tansu/README.md, "What the rehearsal found").

1. A group moved to a new broker on the same bucket, joining while its lost member's
   session runs or after it expired: two groups read a topic (one record per batch)
   through broker A, both members alive (never closed) when A is SIGKILLed; broker B
   starts on the same bucket; one group's new member joins through B 3 s after the kill
   (the lost member's last heartbeat 3-6 s old), the other's once that member's session
   (6 s) has expired. Prints what each was assigned and read.
2. A Fetch from an offset inside a batch: one batch of 20 records, read from offset 5. Needs the pair up (KDRILL_TEST_PAIR, KDRILL_TEST_KEEP=1 pytest ... -k moto):

    KDRILL_TEST_PAIR="ks 10.74.0.0/16" .venv/bin/python tools/tansu/group_rejoin_probe.py [log dir]

KDRILL_TANSU_LOG=debug makes the brokers' logs (in the log dir) show the coordinator's steps.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from components.clientconf import client_config  # noqa: E402
from components.local import objectstore, processes, tansu  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from components.local.tansu import TansuBroker  # noqa: E402
from components.wait import wait_until  # noqa: E402
from drills.sharedstorage import create_topic  # noqa: E402
from tests.integration.conftest import stack_config  # noqa: E402

SESSION_MS, RECORDS = 6000, 40


def member(bootstrap: str, group: str) -> Consumer:
    return Consumer(client_config(bootstrap, {
        "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": SESSION_MS}))  # fmt: skip


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tansu-probe-"))
    pair = LocalPair(stack_config(*os.environ["KDRILL_TEST_PAIR"].split()))
    a, b = pair.primary, pair.standby
    bucket = f"tansu-{uuid.uuid4().hex[:8]}"
    objectstore.create_buckets(b.s3_endpoint, b.spec.aws_region, (bucket,))
    shared = {"s3_endpoint": f"http://{b.backbone_ip}:{objectstore.PORT}",
              "aws_region": b.spec.aws_region, "bucket": bucket, "cluster_id": f"kdrill-{bucket}"}  # fmt: skip
    first = TansuBroker(a.name, a.namespace, a.cgroup, a.client_ip, **shared)
    second = TansuBroker(b.name, b.namespace, b.cgroup, b.client_ip, **shared)
    pids: list[int] = []
    try:
        pids.append(tansu.start(first, out / "a.log"))
        tansu.wait_ready(first, pids[-1], time.monotonic() + 60, out / "a.log")
        topic = f"t-{uuid.uuid4().hex[:6]}"
        create_topic(first.bootstrap, topic, 2)
        p = Producer(client_config(first.bootstrap, {"enable.idempotence": True}))
        for i in range(RECORDS):  # one record per batch: every offset starts a batch
            p.produce(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode())
            assert p.flush(30) == 0
        groups = {
            "3 s after the kill": f"g-{uuid.uuid4().hex[:6]}",
            "after the session expired": f"g-{uuid.uuid4().hex[:6]}",
        }
        old = {}
        for name, g in groups.items():  # each group reads half, commits, stays a member
            c = old[name] = member(first.bootstrap, g)
            c.subscribe([topic])
            got: list = []
            wait_until(lambda c=c, got=got: got.extend(
                m for m in c.consume(10, timeout=0.2) if m.error() is None) or len(got) >= 10,
                30, f"{name}: records through A")  # fmt: skip
            c.commit(asynchronous=False)
        t_kill = tansu.kill(pids[0])
        print(f"A killed; both groups' members alive until then (session.timeout.ms {SESSION_MS})")
        pids.append(tansu.start(second, out / "b.log"))
        tansu.wait_ready(second, pids[-1], time.monotonic() + 60, out / "b.log")
        for name, g in groups.items():
            at = t_kill + (3.0 if name == "3 s after the kill" else SESSION_MS / 1000 + 0.25)
            wait_until(lambda at=at: time.monotonic() >= at, SESSION_MS / 1000 + 2, name)
            c, parts = member(second.bootstrap, g), []
            t_join = time.monotonic()
            c.subscribe([topic], on_assign=lambda _c, ps, parts=parts: parts.append(len(ps)))
            n, deadline = 0, time.monotonic() + 20
            while time.monotonic() < deadline:
                n += sum(1 for m in c.consume(50, timeout=0.2) if m.error() is None)
            print(f"group joining B {name} ({t_join - t_kill:.1f} s): "
                  f"assignments {parts} (partitions each), {n} records read in 20 s")  # fmt: skip
            c.close()
        # 2. a fetch from inside a batch
        t2 = f"t-{uuid.uuid4().hex[:6]}"
        create_topic(second.bootstrap, t2, 1)
        p = Producer(
            client_config(second.bootstrap, {"enable.idempotence": True, "linger.ms": 100})
        )
        for i in range(20):
            p.produce(t2, value=f"v{i}".encode())
        assert p.flush(30) == 0
        r = Consumer(
            client_config(second.bootstrap, {"group.id": "probe", "enable.auto.commit": False})
        )
        r.assign([TopicPartition(t2, 0, 5)])
        got, deadline = [], time.monotonic() + 10
        while time.monotonic() < deadline:
            got += [m.offset() for m in r.consume(50, timeout=0.2) if m.error() is None]
        print(
            f"one batch of 20 at offset 0, read from offset 5: offsets {got} (15 expected: 5..19)"
        )
        r.close()
    finally:
        processes.kill_all([q for q in pids if processes.alive(q)])
        print(f"broker logs: {out}")
        os._exit(0)  # the lost members' handles would try to leave a dead broker


if __name__ == "__main__":
    main()

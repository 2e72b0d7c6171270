"""A region's KRaft cluster: broker configs, storage format, start, readiness.

Each broker is a combined broker+controller node with four listeners:

| listener    | address              | used by                                         |
| ----------- | -------------------- | ----------------------------------------------- |
| CLIENT      | region client ip     | producers / consumers / admin from the root ns  |
| REPLICATION | region backbone ip   | MirrorMaker 2 in the other region               |
| INTERNAL    | 127.0.0.1 (region)   | inter-broker traffic inside the region          |
| CONTROLLER  | 127.0.0.1 (region)   | the KRaft quorum                                |

Keeping REPLICATION apart from CLIENT is what lets a fault cut, slow or proxy
the path replication takes without touching clients, and the other way round.
Inter-broker and controller traffic stay on the region's own loopback, so a
fault on either link never splits a region's own quorum.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from components.local import kafka_dist
from components.local.errors import LocalEnvError

CLIENT_PORT, REPLICATION_PORT, INTERNAL_PORT, CONTROLLER_PORT = 9092, 9192, 9292, 9392


@dataclass(frozen=True)
class Broker:
    region: str
    node_id: int
    client_ip: str
    backbone_ip: str
    cluster_size: int
    # What the REPLICATION listener advertises: the primary's brokers advertise
    # their toxiproxy address in the standby, so replication goes through it.
    advertised_replication: str | None = None

    @property
    def client_address(self) -> str:
        return f"{self.client_ip}:{CLIENT_PORT + self.node_id}"

    @property
    def replication_address(self) -> str:
        return f"{self.backbone_ip}:{REPLICATION_PORT + self.node_id}"

    @property
    def replication_advertised(self) -> str:
        return self.advertised_replication or self.replication_address

    @property
    def controller_address(self) -> str:
        return f"127.0.0.1:{CONTROLLER_PORT + self.node_id}"


def new_cluster_id() -> str:
    """A Kafka Uuid string: 16 random bytes, URL-safe base64 without padding. Like Kafka's
    Uuid.randomUuid, never one starting with '-' (a command line would take it for a flag)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def server_properties(b: Broker, log_dir: Path) -> str:
    n = b.cluster_size
    rf = min(3, n)
    min_isr = 2 if n >= 3 else 1
    i = b.node_id
    if n == 1:
        quorum = f"controller.quorum.bootstrap.servers={b.controller_address}"
    else:
        quorum = "controller.quorum.voters=" + ",".join(
            f"{k}@127.0.0.1:{CONTROLLER_PORT + k}" for k in range(n)
        )
    return f"""\
# Written by kdrill for region {b.region}, node {i} of {n}.
process.roles=broker,controller
node.id={i}
{quorum}
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listeners=CLIENT://{b.client_address},REPLICATION://{b.replication_address},INTERNAL://127.0.0.1:{INTERNAL_PORT + i},CONTROLLER://{b.controller_address}
advertised.listeners=CLIENT://{b.client_address},REPLICATION://{b.replication_advertised},INTERNAL://127.0.0.1:{INTERNAL_PORT + i}
listener.security.protocol.map=CLIENT:PLAINTEXT,REPLICATION:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={log_dir}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor={rf}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={rf}
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min(2, n)}
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min(2, n)}
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
"""


def format_argv(props: Path, cluster_id: str, standalone: bool, log4j: Path) -> list[str]:
    args = ["format", "-t", cluster_id, "-c", str(props)]
    if standalone:
        args.insert(1, "--standalone")
    return kafka_dist.java_argv("kafka.tools.StorageTool", kafka_dist.TOOL_HEAP, log4j, args)


def broker_argv(props: Path, log4j: Path) -> list[str]:
    return kafka_dist.java_argv("kafka.Kafka", kafka_dist.BROKER_HEAP, log4j, [str(props)])


# librdkafka's own log lines ("connection refused" while a broker starts or is
# faulted) are expected noise here: route them to logging, silent unless configured.
RDKAFKA_LOG = logging.getLogger("kdrill.rdkafka")
RDKAFKA_LOG.addHandler(logging.NullHandler())
RDKAFKA_LOG.propagate = False


def admin(bootstrap: str, **extra: object) -> AdminClient:
    conf = {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 3000, **extra}
    return AdminClient(conf, logger=RDKAFKA_LOG)


def wait_ready(bootstrap: str, brokers: int, deadline: float, still_alive) -> None:
    """Poll the admin API until all `brokers` are registered and metadata answers.

    `still_alive()` is checked between polls so a broker that died (port taken,
    bad config) fails fast with its log, instead of waiting out the deadline.
    """
    a = admin(bootstrap)
    last = "no answer"
    while time.monotonic() < deadline:
        still_alive()
        try:
            nodes = a.describe_cluster(request_timeout=2).result().nodes
            if len(nodes) >= brokers:
                a.list_topics(timeout=2)
                return
            last = f"{len(nodes)} of {brokers} brokers registered"
        except KafkaException as e:
            last = str(e.args[0]) if e.args else str(e)
        time.sleep(0.2)
    raise LocalEnvError(f"cluster at {bootstrap} not ready in time ({last}); see the broker logs")


def create_topics(bootstrap: str, topics: dict[str, int], replication_factor: int) -> None:
    """Create topics (name -> partitions), waiting until each exists; existing ones are kept."""
    if not topics:
        return
    a = admin(bootstrap)
    futures = a.create_topics(
        [
            NewTopic(t, num_partitions=p, replication_factor=replication_factor)
            for t, p in topics.items()
        ],
        operation_timeout=15,
    )
    for name, f in futures.items():
        try:
            f.result()
        except KafkaException as e:
            if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise LocalEnvError(f"could not create topic {name!r}: {e.args[0].str()}") from None


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> end offset of `topic`; empty when it does not exist (yet)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "kdrill-probe"}, logger=RDKAFKA_LOG)
    try:
        md = c.list_topics(topic, timeout=5).topics.get(topic)
        if md is None or md.error is not None:
            return {}
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)[1]
            for p in md.partitions
        }
    except KafkaException:
        return {}
    finally:
        c.close()

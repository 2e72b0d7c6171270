"""A region's KRaft cluster: broker configs, storage format, start, readiness, and
what clients read of it (end offsets, the inventory of topics, configs, groups, ACLs).

`end_offsets` and `inventory` are the project's one reader of each: status, the
drill target, the demo, benches and tests all go through them, so "what a
region holds" means the same thing everywhere.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from components.clientconf import client_config
from components.local import kafka_dist
from components.local.errors import LocalEnvError
from components.wait import wait_until

T = TypeVar("T")

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


def server_properties(b: Broker, log_dir: Path, secure: str = "") -> str:
    """A broker's server.properties; `secure`: the lines turning SASL and the authorizer on
    (components/local/security.py `broker_properties`), which replace the PLAINTEXT map."""
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
{secure or PLAINTEXT_MAP}log.dirs={log_dir}
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


PLAINTEXT_MAP = (
    "listener.security.protocol.map="
    "CLIENT:PLAINTEXT,REPLICATION:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
)


def format_argv(
    props: Path, cluster_id: str, standalone: bool, log4j: Path, extra: list[str] = ()
) -> list[str]:
    """`extra`: more format arguments (SCRAM users: pass the result through an argument
    file, components/local/security.py `argfile_argv`)."""
    args = ["format", "-t", cluster_id, "-c", str(props), *extra]
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
    conf = client_config(bootstrap, {"socket.connection.setup.timeout.ms": 3000, **extra})
    return AdminClient(conf, logger=RDKAFKA_LOG)


def wait_ready(
    bootstrap: str, brokers: int, deadline: float, still_alive: Callable[[], object]
) -> None:
    """Wait until all `brokers` are registered and metadata answers (by `deadline`, monotonic).

    `still_alive()` is checked between polls so a broker that died (port taken,
    bad config) fails fast with its log, instead of waiting out the deadline.
    """
    a = admin(bootstrap)
    last = "no answer"

    def ready() -> bool:
        nonlocal last
        try:
            nodes = a.describe_cluster(request_timeout=2).result().nodes
            if len(nodes) >= brokers:
                a.list_topics(timeout=2)
                return True
            last = f"{len(nodes)} of {brokers} brokers registered"
        except KafkaException as e:
            last = str(e.args[0]) if e.args else str(e)
        return False

    wait_until(
        ready,
        deadline - time.monotonic(),
        f"cluster at {bootstrap}",
        interval=0.2,
        check=still_alive,
        error=lambda _: LocalEnvError(
            f"cluster at {bootstrap} not ready in time ({last}); see the broker logs"
        ),
    )


def create_acls(bootstrap: str, bindings: list) -> None:
    """Create ACL bindings (confluent-kafka AclBinding); existing ones are kept as they are."""
    if not bindings:
        return
    a = admin(bootstrap)  # held until every future resolved (a dropped handle fails them)
    for b, f in a.create_acls(bindings, request_timeout=15).items():
        try:
            f.result()
        except KafkaException as e:
            raise LocalEnvError(f"could not create ACL {b}: {e.args[0].str()}") from None


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

    def led() -> bool:
        """Every partition has a leader in the metadata a broker answers with: the controller
        accepting a topic is not every broker knowing it yet (a describe right after it can
        get UNKNOWN_TOPIC_OR_PART)."""
        md = a.list_topics(timeout=5).topics
        return all(
            t in md and md[t].error is None and len(md[t].partitions) >= n
            and all(p.leader >= 0 for p in md[t].partitions.values())
            for t, n in topics.items()
        )  # fmt: skip

    wait_until(led, 15, f"topics {sorted(topics)} to have leaders", error=LocalEnvError)


# What a restarted, re-electing or just-created partition answers for a moment.
TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        # the client's metadata lacks the partition for a moment: a broker starved of CPU
        # (a squeezed standby) answers metadata late; seen at cutover's end-offset snapshot
        KafkaError._UNKNOWN_PARTITION,
    }
)


def end_offsets(
    bootstrap: str, topics: Iterable[str] | str, patience: float = 10.0
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> end offset (the high watermark) of each of `topics` in one cluster.

    Topics the cluster does not have are left out. Transient answers (a leader
    moving, a broker restarting, a timeout) are retried until `patience` seconds
    have passed, then raised as the `KafkaException` they are; any other error
    is raised at once. Offsets are read from the brokers, never from a cache.
    """
    c = Consumer(
        client_config(bootstrap, {"group.id": "kdrill-offsets", "enable.auto.commit": False}),
        logger=RDKAFKA_LOG,
    )
    try:
        return read_end_offsets(c, topics, patience)
    finally:
        c.close()


def read_end_offsets(
    client: Any, topics: Iterable[str] | str, patience: float = 10.0
) -> dict[tuple[str, int], int]:
    """`end_offsets` through an open client: anything with confluent-kafka's
    `Consumer.list_topics` and `Consumer.get_watermark_offsets` (tests pass a fake)."""
    wanted = list(dict.fromkeys([topics] if isinstance(topics, str) else topics))
    if not wanted:
        return {}
    deadline = time.monotonic() + patience

    def metadata() -> dict:
        listed = client.list_topics(timeout=5).topics
        for t in wanted:
            err = listed[t].error if t in listed else None
            if err is not None and err.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KafkaException(err)  # transient ones are retried below
        return listed

    listed = _retrying(metadata, deadline)
    out: dict[tuple[str, int], int] = {}
    for t in wanted:
        md = listed.get(t)
        if md is None or md.error is not None:  # absent (UNKNOWN_TOPIC_OR_PART)
            continue
        for p in sorted(md.partitions):
            tp = TopicPartition(t, p)
            out[(t, p)] = _retrying(
                lambda tp=tp: client.get_watermark_offsets(tp, timeout=5, cached=False)[1],
                deadline,
            )
    return out


def _retrying(call: Callable[[], T], deadline: float) -> T:
    """`call()`, retried while it raises a transient KafkaException and `deadline` is ahead."""
    last: KafkaException | None = None

    def attempt() -> tuple[T] | None:
        nonlocal last
        try:
            return (call(),)
        except KafkaException as e:
            if not e.args or e.args[0].code() not in TRANSIENT:
                raise
            last = e
            return None

    # `attempt` runs at least once, so `last` is set whenever time runs out.
    return wait_until(
        attempt,
        deadline - time.monotonic(),
        "a transient Kafka error to pass",
        interval=0.2,
        error=lambda _: last or KafkaException(KafkaError(KafkaError._TIMED_OUT)),
    )[0]


# Topic configs that matter when a region takes over (compared across regions in preflight).
INVENTORY_CONFIGS = ("retention.ms", "cleanup.policy", "min.insync.replicas", "max.message.bytes")


def topic_configs(
    a: AdminClient, topics: Iterable[str], keys: Iterable[str], timeout: float
) -> dict[str, dict[str, str]]:
    """Topic -> the values of `keys` it has (sorted by topic), from the brokers."""
    topics, keys = list(topics), list(keys)
    if not topics:
        return {}
    futures = a.describe_configs(
        [ConfigResource("TOPIC", n) for n in topics], request_timeout=timeout
    )
    configs = {}
    for res, f in futures.items():
        entries = f.result()
        configs[res.name] = {k: entries[k].value for k in keys if k in entries}
    return dict(sorted(configs.items()))


def inventory(bootstrap: str, timeout: float = 5) -> dict:
    """What one cluster holds, for status and for comparing regions before a drill.

    {"brokers": registered broker count,
     "topics": {name: partitions}, "end_offsets": {name: {partition: end offset}},
     "configs": {name: {key: value}} for INVENTORY_CONFIGS,
     "groups": [consumer group ids, sorted],
     "acls": [every ACL binding as text] or ["unavailable: <why>"] without an authorizer}

    Internal topics (`__consumer_offsets`, ...) are left out. `timeout` bounds
    each admin request (and the patience of the end-offset read).
    """
    a = admin(bootstrap)
    brokers = len(a.describe_cluster(request_timeout=timeout).result().nodes)
    md = a.list_topics(timeout=timeout)
    topics = {n: len(t.partitions) for n, t in sorted(md.topics.items()) if not n.startswith("__")}
    ends: dict[str, dict[int, int]] = {n: {} for n in topics}
    for (t, p), off in end_offsets(bootstrap, topics, patience=timeout).items():
        ends[t][p] = off
    configs = topic_configs(a, topics, INVENTORY_CONFIGS, timeout)
    groups = sorted(
        g.group_id for g in a.list_consumer_groups(request_timeout=timeout).result().valid
    )
    try:
        acl_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                      AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip
        acls = [str(b) for b in a.describe_acls(acl_filter, request_timeout=timeout).result()]
    except Exception as e:  # no authorizer configured: say so rather than report "no ACLs"
        acls = [f"unavailable: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}"]
    return {
        "brokers": brokers,
        "topics": topics,
        "end_offsets": ends,
        "configs": configs,
        "groups": groups,
        "acls": acls,
    }

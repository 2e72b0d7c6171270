"""What the drill engine needs from an environment, and the local pair as the first one.

The engine never reaches into namespaces, nftables or Pulumi state itself; it
asks a `Target` for regions, bootstrap servers, faults (returning the instant
each took effect), fencing, stopping replication and end offsets. A
Pulumi-stack target later implements the same few methods by mutating stack
state; the engine does not change.
"""

from __future__ import annotations

import contextlib
import struct
import time
from pathlib import Path
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from components.local import kafka, mirrormaker, network, objectstore
from components.local.env import LocalPair
from components.local.errors import LocalEnvError
from components.local.faults import FaultSpec, catalogue
from drills.workload import LOG


class Target(Protocol):
    primary: str
    standby: str
    policy: str

    def bootstrap(self, region: str) -> str: ...
    def remote_topic(self, topic: str) -> str: ...
    def set_policy(self, policy: str) -> None: ...
    def create_topics(self, region: str, topics: dict[str, int]) -> None: ...
    def inventory(self, region: str) -> dict: ...
    def end_offsets(self, region: str, topics: list[str]) -> dict[tuple[str, int], int]: ...
    def apply_fault(self, spec: FaultSpec) -> tuple[str, float]: ...
    def clear_fault(self, fault_id: str, teardown: bool = False) -> None: ...
    def clear_faults(self, fault_ids: list[str], teardown: bool = False) -> None: ...
    def open_faults(self, applier_pid: int) -> list[str]: ...
    def fence(self, region: str) -> tuple[str, float]: ...
    def stop_replication(self) -> tuple[str, float]: ...
    def checkpoints(self) -> dict[tuple[str, str, int], int]: ...
    def bytes_between_regions(self) -> int: ...
    def upload_evidence(self, run_dir: Path) -> str: ...


class LocalTarget:
    """The local region pair (components/local) as a drill target."""

    def __init__(self, pair: LocalPair):
        self.pair = pair
        self.primary = pair.primary.name
        self.standby = pair.standby.name

    @property
    def policy(self) -> str:
        return self.pair.policy

    def bootstrap(self, region: str) -> str:
        return self.pair.region(region).bootstrap

    def set_policy(self, policy: str) -> None:
        """Run replication under `policy` (restarts MirrorMaker 2)."""
        self.pair.restart_replication(policy)

    def remote_topic(self, topic: str) -> str:
        return self.pair.remote_topic(topic)

    def create_topics(self, region: str, topics: dict[str, int]) -> None:
        r = self.pair.region(region)
        kafka.create_topics(r.bootstrap, topics, min(3, len(r.brokers)))

    def inventory(self, region: str) -> dict:
        """Topics (partitions, configs that matter for failover), consumer groups, ACLs."""
        a = kafka.admin(self.bootstrap(region))
        md = a.list_topics(timeout=5)
        topics = {n: len(t.partitions) for n, t in md.topics.items() if not n.startswith("__")}
        from confluent_kafka.admin import ConfigResource

        configs = {}
        wanted = ("retention.ms", "cleanup.policy", "min.insync.replicas", "max.message.bytes")
        if topics:
            futures = a.describe_configs([ConfigResource("TOPIC", n) for n in topics])
            for res, f in futures.items():
                entries = f.result()
                configs[res.name] = {k: entries[k].value for k in wanted if k in entries}
        groups = sorted(
            g.group_id for g in a.list_consumer_groups(request_timeout=5).result().valid
        )
        try:
            from confluent_kafka.admin import (
                AclBindingFilter,
                AclOperation,
                AclPermissionType,
                ResourcePatternType,
                ResourceType,
            )

            acl_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                          AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip
            acls = [str(b) for b in a.describe_acls(acl_filter, request_timeout=5).result()]
        except Exception as e:  # no authorizer configured: say so rather than report "no ACLs"
            acls = [f"unavailable: {str(e).splitlines()[0][:120]}"]
        return {"topics": topics, "configs": configs, "groups": groups, "acls": acls}

    def end_offsets(self, region: str, topics: list[str]) -> dict[tuple[str, int], int]:
        c = Consumer(
            {"bootstrap.servers": self.bootstrap(region), "group.id": "kdrill-offsets"}, logger=LOG
        )
        try:
            out = {}
            md = c.list_topics(timeout=5).topics
            for t in topics:
                if t not in md:
                    continue
                for p in md[t].partitions:
                    out[(t, p)] = _watermark(c, TopicPartition(t, p))
            return out
        finally:
            c.close()

    def apply_fault(self, spec: FaultSpec) -> tuple[str, float]:
        e = catalogue.apply(self.pair, spec)
        return e.id, e.t_fault

    def clear_fault(self, fault_id: str, teardown: bool = False) -> None:
        catalogue.clear(self.pair, fault_id, teardown)

    def clear_faults(self, fault_ids: list[str], teardown: bool = False) -> None:
        """Clear several, restarting what they stopped in dependency order."""
        catalogue.clear_many(self.pair, fault_ids, teardown)

    def open_faults(self, applier_pid: int) -> list[str]:
        """Faults this process recorded that are not cleared: what an interrupt may have
        left between the ledger write and the caller learning the fault's id."""
        return [
            e.id for e in catalogue.ledger(self.pair).open_entries() if e.applier_pid == applier_pid
        ]

    def fence(self, region: str) -> tuple[str, float]:
        """Our clients can no longer reach the region's brokers (both directions dropped)."""
        return self.apply_fault(FaultSpec("blackhole", region=region, params={"endpoint": "kafka"}))

    def stop_replication(self) -> tuple[str, float]:
        return self.apply_fault(FaultSpec("replication-stop"))

    def checkpoints(self) -> dict[tuple[str, str, int], int]:
        """Latest MM2 checkpoint per (group, standby topic, partition): the translated offset."""
        topic = mirrormaker.checkpoints_topic(self.primary)
        c = Consumer({"bootstrap.servers": self.bootstrap(self.standby), "group.id": "kdrill-checkpoints",
                      "enable.auto.commit": False}, logger=LOG)  # fmt: skip
        out: dict[tuple[str, str, int], int] = {}
        try:
            ends = self.end_offsets(self.standby, [topic])
            c.assign([TopicPartition(t, p, 0) for (t, p) in ends])
            remaining = {k: v for k, v in ends.items() if v > 0}
            while remaining:
                msgs = c.consume(num_messages=500, timeout=2)
                if not msgs:
                    break
                for m in msgs:
                    if m.error() is None:
                        group, t, part, _upstream, down = decode_checkpoint(m.key(), m.value())
                        out[(group, t, part)] = down
                        if m.offset() + 1 >= remaining.get((m.topic(), m.partition()), 0):
                            remaining.pop((m.topic(), m.partition()), None)
            return out
        finally:
            c.close()

    def bytes_between_regions(self) -> int:
        total = 0
        for r in self.pair.regions:
            with contextlib.suppress(LocalEnvError):
                total += network.read_counters(r.namespace).get("out_bytes", 0)
        return total

    def evidence_bucket(self) -> str:
        buckets = self.pair.standby.spec.buckets
        for b in buckets:
            if "evidence" in b:
                return b
        raise LocalEnvError(
            f"the standby {self.standby} has no evidence bucket in the stack (a name with 'evidence')"
        )

    def upload_evidence(self, run_dir: Path) -> str:
        bucket = self.evidence_bucket()
        s3 = objectstore.client(self.pair.standby.s3_endpoint, self.pair.standby.spec.aws_region)
        prefix = f"drills/{run_dir.name}"
        for f in sorted(run_dir.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(run_dir)}")
        return f"s3://{bucket}/{prefix}/"


# What a restarted or re-electing broker answers for a moment.
TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
}


def _watermark(c: Consumer, tp: TopicPartition, patience: float = 10.0) -> int:
    """The partition's end offset, retrying transient answers until `patience` runs out."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return c.get_watermark_offsets(tp, timeout=5, cached=False)[1]
        except KafkaException as e:
            if e.args[0].code() not in TRANSIENT or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def decode_checkpoint(key: bytes, value: bytes) -> tuple[str, str, int, int, int]:
    """(group, topic, partition, upstream offset, downstream offset) of an MM2 checkpoint record.

    Key: group STRING, topic STRING, partition INT32; value: version INT16,
    upstream offset INT64, downstream offset INT64, metadata STRING (STRING is
    an int16 length then UTF-8, all big-endian).
    """

    def string(buf: bytes, at: int) -> tuple[str, int]:
        (n,) = struct.unpack_from(">h", buf, at)
        return buf[at + 2 : at + 2 + n].decode(), at + 2 + n

    group, at = string(key, 0)
    topic, at = string(key, at)
    (partition,) = struct.unpack_from(">i", key, at)
    _version, upstream, downstream = struct.unpack_from(">hqq", value, 0)
    return group, topic, partition, upstream, downstream

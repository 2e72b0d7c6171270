"""The local region pair (components/local) as a drill target.

`LocalTarget.for_stack(stack)` reads the stack file and the pair's state file
only: validating a drill against it touches nothing. `prepare` brings the pair
up when it is not running (the target then owns it and `release` tears it
down); a pair someone else brought up is used as it is and left up.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from components.faults import FaultSpec
from components.local import config, kafka, kafka_dist, mirrormaker, network, objectstore
from components.local import faults as local_faults
from components.local.env import LocalPair
from components.local.errors import LocalEnvError
from drills.cost.model import Inventory, inventory_local
from drills.targets.base import Progress, TargetError, TargetFacts
from drills.workload import LOG


class LocalTarget:
    """The local pair: regions are network namespaces, faults kernel-level or signals."""

    def __init__(self, pair: LocalPair, keep: bool = False):
        self.pair = pair
        self.primary = pair.primary.name
        self.standby = pair.standby.name
        self.keep = keep  # leave an environment this target brought up running afterwards
        self.owned = False  # set by prepare(): this target brought the pair up

    @classmethod
    def for_stack(cls, stack: str, keep: bool = False) -> LocalTarget:
        """The pair recorded as running for `stack`, else one built from its stack file."""
        try:
            cfg = config.load(stack)
        except LocalEnvError as e:
            raise TargetError(str(e)) from None
        return cls(LocalPair.from_state(cfg.prefix) or LocalPair(cfg), keep)

    # --- the environment --------------------------------------------------------------

    @property
    def policy(self) -> str:
        return self.pair.policy

    def facts(self) -> TargetFacts:
        return TargetFacts(
            stack=self.pair.cfg.stack,
            kind="local",
            primary=self.primary,
            standby=self.standby,
            policy=self.policy,
            versions={"kafka": kafka_dist.pinned_version()},
        )

    def resolve_fault(self, fault: FaultSpec) -> FaultSpec:
        try:
            return local_faults.validate(fault, self.pair.cfg)
        except LocalEnvError as e:
            raise TargetError(str(e)) from None

    def prepare(self, progress: Progress = lambda s: None) -> None:
        if self.pair.is_up():
            return
        self.owned = True
        self.pair.up(progress=progress)

    def release(self) -> None:
        if self.owned and not self.keep:
            self.pair.down()

    @property
    def releases_environment(self) -> bool:
        return self.owned and not self.keep

    # --- clients ----------------------------------------------------------------------

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
        inv = kafka.inventory(self.bootstrap(region))
        return {k: inv[k] for k in ("topics", "configs", "groups", "acls")}

    def end_offsets(self, region: str, topics: list[str]) -> dict[tuple[str, int], int]:
        return kafka.end_offsets(self.bootstrap(region), topics)

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

    # --- faults -----------------------------------------------------------------------

    def apply_fault(self, spec: FaultSpec) -> tuple[str, float]:
        e = local_faults.apply(self.pair, spec)
        return e.id, e.t_fault

    def clear_fault(self, fault_id: str) -> None:
        local_faults.clear(self.pair, fault_id)

    def clear_faults(self, fault_ids: list[str], final: bool = False) -> None:
        """Clear several, restarting what they stopped in dependency order (not when the
        pair is torn down right after)."""
        local_faults.clear_many(self.pair, fault_ids, final and self.releases_environment)

    def recover(self) -> list[str]:
        """Clear every fault the pair's ledger says is applied, whoever applied it."""
        return [
            f"{e.id}: {e.fault.describe()} (applied by pid {e.applier_pid})"
            for e in local_faults.recover(self.pair)
        ]

    def open_faults(self, applier_pid: int) -> list[str]:
        """Faults this process recorded that are not cleared: what an interrupt may have
        left between the ledger write and the caller learning the fault's id."""
        return [
            e.id
            for e in local_faults.ledger(self.pair).open_entries()
            if e.applier_pid == applier_pid
        ]

    def fence(self, region: str) -> tuple[str, float]:
        """Our clients can no longer reach the region's brokers (both directions dropped)."""
        return self.apply_fault(FaultSpec("blackhole", region=region, params={"endpoint": "kafka"}))

    def stop_replication(self) -> tuple[str, float]:
        return self.apply_fault(FaultSpec("replication-stop"))

    # --- measurement and evidence -----------------------------------------------------

    def region_out_bytes(self) -> dict[str, int]:
        """Bytes each region sent over its backbone link (nftables counters); a region whose
        namespace is gone (torn down) is left out."""
        out = {}
        for r in self.pair.regions:
            with contextlib.suppress(LocalEnvError):
                out[r.name] = network.read_counters(r.namespace).get("out_bytes", 0)
        return out

    def cost_inventory(self) -> Inventory:
        return inventory_local(self.pair.cfg)

    def evidence_bucket(self) -> str:
        for b in self.pair.standby.spec.buckets:
            if "evidence" in b:
                return b
        raise TargetError(
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

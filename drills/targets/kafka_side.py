"""The Kafka side of a target, shared by every target whose regions are Kafka clusters
reachable from here (the local pair, an AWS stack): create topics, inventory, end offsets
and MirrorMaker 2 checkpoints, all through a region's bootstrap servers. The local
integration tests exercise this code against real brokers.

A target mixes in `KafkaSide` and provides `bootstrap(region)`, `standby`,
`replication_factor(region)` and `checkpoints_topic()`.
"""

from __future__ import annotations

import struct
import threading

from confluent_kafka import Consumer, TopicPartition

from components.clientconf import client_config
from components.local import kafka
from drills.workload import LOG


class KafkaSide:
    standby: str

    def bootstrap(self, region: str) -> str:  # pragma: no cover - provided by the target
        raise NotImplementedError

    def replication_factor(self, region: str) -> int:  # pragma: no cover
        raise NotImplementedError

    def checkpoints_topic(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def create_topics(self, region: str, topics: dict[str, int]) -> None:
        kafka.create_topics(self.bootstrap(region), topics, self.replication_factor(region))

    def inventory(self, region: str) -> dict:
        """Topics (partitions, configs that matter for failover), ACLs, SCRAM users, consumer
        groups (drills/controlstate.py `inventory`)."""
        from drills import controlstate

        return controlstate.inventory(self.bootstrap(region), logger=LOG)

    def end_offsets(self, region: str, topics: list[str]) -> dict[tuple[str, int], int]:
        """High watermarks, read from the brokers through one client per region kept open
        for the drill: the steady state samples both regions four times a second and the
        cutover's snapshot is on the recovery path, so neither pays for a new connection."""
        clients = self.__dict__.setdefault("_offset_clients", {})
        lock = self.__dict__.setdefault("_offset_lock", threading.Lock())
        with lock:
            c = clients.get(region)
            if c is None:
                c = clients[region] = Consumer(
                    client_config(self.bootstrap(region), {"group.id": "kdrill-offsets",
                                  "enable.auto.commit": False}), logger=LOG)  # fmt: skip
            return kafka.read_end_offsets(c, topics)

    def close_clients(self) -> None:
        """Close the clients `end_offsets` keeps (they never join a group: nothing to leave)."""
        with self.__dict__.setdefault("_offset_lock", threading.Lock()):
            for c in self.__dict__.pop("_offset_clients", {}).values():
                c.close()

    def checkpoints(self) -> dict[tuple[str, str, int], int]:
        """Latest MM2 checkpoint per (group, standby topic, partition): the translated offset."""
        topic = self.checkpoints_topic()
        c = Consumer(client_config(self.bootstrap(self.standby), {"group.id": "kdrill-checkpoints",
                      "enable.auto.commit": False}), logger=LOG)  # fmt: skip
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

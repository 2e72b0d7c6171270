"""A small drill recorder for hand-built test histories: produce, replicate, consume, commit.

It assigns sequence numbers and offsets the way a producer and a broker would,
so each test states only what matters to it (which record is lost, where the
consumer resumed) and the expected figures can be computed by hand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from drills.history import DrillMeta, HistoryBuilder, Instants, ReplicationPolicy, TopicMapping

PRIMARY = "east"
STANDBY = "west"
TOPIC = "orders"
REPLICATED = f"{PRIMARY}.{TOPIC}"  # MM2's DefaultReplicationPolicy name in the standby
INSTANTS = Instants(t_fault=100.0, t_detect=103.0, t_decide=104.5, t_fence=106.0, t_cut=107.0)


@dataclass(frozen=True)
class Rec:
    """A produced record and where it was acknowledged (offset None: indeterminate)."""

    producer: str
    key: str
    seq: int
    gseq: int
    produced_at: float
    cluster: str
    topic: str
    partition: int
    offset: int | None

    @property
    def ident(self) -> dict:
        return {"producer": self.producer, "key": self.key, "seq": self.seq, "gseq": self.gseq}


class Scenario:
    def __init__(
        self,
        policy: ReplicationPolicy = ReplicationPolicy.PREFIXED,
        instants: Instants = INSTANTS,
        failover: bool = True,
        groups: tuple[str, ...] = (),
    ) -> None:
        self.b = HistoryBuilder()
        self.meta = DrillMeta(
            primary=PRIMARY,
            standby=STANDBY,
            topics=(TOPIC,),
            groups=groups,
            failover=failover,
            mapping=TopicMapping(policy=policy, source_alias=PRIMARY),
            instants=instants,
            drill_id="test",
        )
        self._seq: dict[tuple[str, str], int] = defaultdict(int)
        self._gseq: dict[str, int] = defaultdict(int)
        self._next: dict[tuple[str, str, int], int] = defaultdict(int)

    @property
    def standby_topic(self) -> str:
        return self.meta.mapping.replicated(TOPIC)

    def next_offset(self, cluster: str, topic: str, partition: int = 0, skip: int = 0) -> int:
        """Reserve the next offset; ``skip`` leaves that many offsets empty first (markers)."""
        slot = (cluster, topic, partition)
        self._next[slot] += skip
        offset = self._next[slot]
        self._next[slot] += 1
        return offset

    def produce(
        self,
        key: str,
        at: float,
        *,
        cluster: str = PRIMARY,
        partition: int = 0,
        acked: bool = True,
        lands: bool = True,
        ack_delay: float = 0.5,
        producer: str = "p1",
        skip: int = 0,
    ) -> Rec:
        """Send one record; acked records (and unacked ones that ``lands``) take a log offset."""
        seq = self._seq[(producer, key)]
        self._seq[(producer, key)] += 1
        gseq = self._gseq[producer]
        self._gseq[producer] += 1
        topic = TOPIC
        offset = self.next_offset(cluster, topic, partition, skip) if acked or lands else None
        rec = Rec(producer, key, seq, gseq, at, cluster, topic, partition, offset)
        if acked:
            self.b.ack(
                **rec.ident,
                cluster=cluster,
                topic=topic,
                partition=partition,
                offset=offset,
                send_time=at,
                ack_time=at + ack_delay,
            )
        else:
            self.b.send(**rec.ident, cluster=cluster, topic=topic, send_time=at, error="timed out")
        if offset is not None:
            self.b.logged(
                **rec.ident, cluster=cluster, topic=topic, partition=partition, offset=offset
            )
        return rec

    def replicate(self, rec: Rec, *, skip: int = 0) -> int:
        """MM2 copies ``rec`` into the standby's replicated topic; returns its standby offset."""
        offset = self.next_offset(STANDBY, self.standby_topic, rec.partition, skip)
        self.store(rec, self.standby_topic, offset)
        return offset

    def store(self, rec: Rec, topic: str, offset: int, cluster: str = STANDBY) -> None:
        self.b.logged(
            **rec.ident, cluster=cluster, topic=topic, partition=rec.partition, offset=offset
        )

    def snapshot_end(self, partition: int = 0) -> int:
        """Record E for a replicated standby partition: its next offset now."""
        end = self._next[(STANDBY, self.standby_topic, partition)]
        self.b.end_offset(
            cluster=STANDBY, topic=self.standby_topic, partition=partition, end_offset=end
        )
        return end

    def consume(
        self, group: str, rec: Rec, *, at: float, cluster: str, topic: str, offset: int
    ) -> None:
        self.b.read(
            group,
            **rec.ident,
            cluster=cluster,
            topic=topic,
            partition=rec.partition,
            offset=offset,
            produced_at=rec.produced_at,
            poll_time=at,
        )

    def commit(
        self, group: str, offset: int, *, at: float, cluster: str = PRIMARY, topic: str = TOPIC
    ) -> None:
        self.b.commit(group, cluster=cluster, topic=topic, partition=0, offset=offset, time=at)

    def history(self, **meta_changes):
        return self.b.build(replace(self.meta, **meta_changes))

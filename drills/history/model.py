"""The recorded history of one drill: what was sent, acknowledged, stored, read and committed.

The checker works only on this record, never on a live cluster, so a drill's
figures can be recomputed (and re-checked by a newer checker) long after the
clusters are gone. Everything here is data: six columnar tables plus a small
metadata object (clusters, topic mapping, instants). The tables are pyarrow
Tables with fixed schemas because the heavy work (joins, sorts, per-key scans
over a million records) is vectorised over them.

Record identity: every produced record carries its producer id, key, per-key
sequence number (``seq``), per-producer global sequence number (``gseq``) and
produce timestamp. ``(producer, gseq)`` identifies a record uniquely across
clusters and offsets; MirrorMaker 2 changes offsets, never identities.

All instants and times are seconds on one monotonic clock shared by the
processes that recorded them (see DESIGN.md, "What is measured").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc


class HistoryError(ValueError):
    """A history that cannot be checked: wrong schema, inconsistent metadata, reused identities."""


class ReplicationPolicy(StrEnum):
    """How MirrorMaker 2 names a primary topic in the standby.

    PREFIXED is MM2's DefaultReplicationPolicy (``<source alias><sep><topic>``):
    after cutover producers write to the unprefixed topic, so a consumer reads
    two topics in order. IDENTITY keeps the name: post-cutover writes append to
    the very partition replication filled, above the snapshotted end offset.
    """

    PREFIXED = "prefixed"
    IDENTITY = "identity"


class ResumeSource(StrEnum):
    """Where a consumer group's position in the standby came from after cutover."""

    SYNCED = "synced"  # MM2 synced the group's offsets into the standby
    CHECKPOINT = "checkpoint"  # translated from MM2 checkpoints by the drill
    RESET = "reset"  # no offset found: auto.offset.reset applied
    UNKNOWN = "unknown"  # not recorded


class Role(StrEnum):
    """What a serving-cluster partition holds relative to the primary topic it serves."""

    REPLICATED = (
        "replicated"  # filled by MM2 from the primary (and, under IDENTITY, then by producers)
    )
    LOCAL = "local"  # written directly by producers after cutover (PREFIXED only)


@dataclass(frozen=True)
class TopicMapping:
    """The replication policy's naming rule, so the checker can follow a primary topic to the standby."""

    policy: ReplicationPolicy = ReplicationPolicy.PREFIXED
    source_alias: str = "primary"
    separator: str = "."

    def replicated(self, topic: str) -> str:
        """The standby topic MirrorMaker 2 replicates ``topic`` into."""
        if self.policy is ReplicationPolicy.IDENTITY:
            return topic
        return f"{self.source_alias}{self.separator}{topic}"

    def serving_topics(self, topic: str) -> tuple[str, ...]:
        """The standby topics a consumer of ``topic`` reads after cutover, in reading order."""
        replicated = self.replicated(topic)
        return (replicated,) if replicated == topic else (replicated, topic)

    def origin(self, standby_topic: str, topics: tuple[str, ...]) -> tuple[str, Role] | None:
        """The primary topic and role of a standby topic, or None when it serves none of ``topics``."""
        for topic in topics:
            if standby_topic == self.replicated(topic):
                return topic, Role.REPLICATED
            if standby_topic == topic:
                return topic, Role.LOCAL
        return None


@dataclass(frozen=True)
class Instants:
    """The drill's instants (DESIGN.md): None when the drill never reached that point."""

    t_fault: float | None = None
    t_detect: float | None = None
    t_decide: float | None = None
    t_fence: float | None = None
    t_cut: float | None = None


@dataclass(frozen=True)
class DrillMeta:
    """Everything about a drill that is not a row: who is primary, how topics map, when things happened.

    ``failover`` is False for drills that recover inside the primary region
    (one broker killed): the primary then serves, and RTO is measured the same way.
    """

    primary: str
    standby: str
    topics: tuple[str, ...]
    groups: tuple[str, ...] = ()
    failover: bool = True
    mapping: TopicMapping = field(default_factory=TopicMapping)
    instants: Instants = field(default_factory=Instants)
    drill_id: str = ""

    @property
    def serving(self) -> str:
        """The cluster that serves the workload after recovery."""
        return self.standby if self.failover else self.primary

    def to_dict(self) -> dict:
        return {
            "drill_id": self.drill_id,
            "primary": self.primary,
            "standby": self.standby,
            "topics": list(self.topics),
            "groups": list(self.groups),
            "failover": self.failover,
            "mapping": {
                "policy": self.mapping.policy.value,
                "source_alias": self.mapping.source_alias,
                "separator": self.mapping.separator,
            },
            "instants": {
                name: getattr(self.instants, name) for name in Instants.__dataclass_fields__
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> DrillMeta:
        mapping = data.get("mapping", {})
        return cls(
            drill_id=data.get("drill_id", ""),
            primary=data["primary"],
            standby=data["standby"],
            topics=tuple(data["topics"]),
            groups=tuple(data.get("groups", ())),
            failover=bool(data.get("failover", True)),
            mapping=TopicMapping(
                policy=ReplicationPolicy(mapping.get("policy", "prefixed")),
                source_alias=mapping.get("source_alias", data["primary"]),
                separator=mapping.get("separator", "."),
            ),
            instants=Instants(**data.get("instants", {})),
        )


_ID = [
    pa.field("producer", pa.string(), nullable=False),
    pa.field("key", pa.string(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("gseq", pa.int64(), nullable=False),
]

#: One row per send. Null ack_time: never acknowledged, so indeterminate (neither lost nor a gap).
#: ``cluster``/``topic`` are where it was sent; partition/offset are the acknowledged position.
WRITES = pa.schema(
    [
        *_ID,
        pa.field("send_time", pa.float64(), nullable=False),
        pa.field("cluster", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
        pa.field("ack_time", pa.float64()),
        pa.field("error", pa.string()),
    ]
)

#: One row per record a consumer group was handed by poll(), on either cluster.
READS = pa.schema(
    [
        pa.field("group", pa.string(), nullable=False),
        pa.field("cluster", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        *_ID,
        pa.field("produced_at", pa.float64(), nullable=False),
        pa.field("poll_time", pa.float64(), nullable=False),
    ]
)

#: One row per offset commit; ``offset`` is Kafka's: the next offset to consume.
COMMITS = pa.schema(
    [
        pa.field("group", pa.string(), nullable=False),
        pa.field("cluster", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("commit_time", pa.float64(), nullable=False),
    ]
)

#: A cluster's partition contents read back after the drill: offset -> record identity.
#: Offsets with no row hold no record of ours (transaction markers, foreign data).
LOG = pa.schema(
    [
        pa.field("cluster", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        *_ID,
    ]
)

#: The standby's end offsets E, snapshotted at cutover once MM2 was stopped.
END_OFFSETS = pa.schema(
    [
        pa.field("cluster", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("end_offset", pa.int64(), nullable=False),
    ]
)

#: Where each group was positioned in the serving cluster after cutover, and why.
RESUMES = pa.schema(
    [
        pa.field("group", pa.string(), nullable=False),
        pa.field("cluster", pa.string(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("position", pa.int64()),
        pa.field("source", pa.string(), nullable=False),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "writes": WRITES,
    "reads": READS,
    "commits": COMMITS,
    "log": LOG,
    "end_offsets": END_OFFSETS,
    "resumes": RESUMES,
}


def conform(name: str, table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly the schema of table ``name``: columns reordered and cast.

    Raises HistoryError naming the table and column, so a recorder bug is
    found where it was written, not as a wrong figure later.
    """
    schema = TABLES[name]
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise HistoryError(f"{name}: missing columns {missing}")
    columns = []
    for f in schema:
        column = table.column(f.name)
        try:
            column = column.cast(f.type) if column.type != f.type else column
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise HistoryError(f"{name}.{f.name}: cannot read {column.type} as {f.type}") from exc
        if not f.nullable and column.null_count:
            raise HistoryError(f"{name}.{f.name}: {column.null_count} null values")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def empty(name: str) -> pa.Table:
    return TABLES[name].empty_table()


@dataclass(frozen=True)
class History:
    """A drill's full record: metadata plus the six tables, each conformed to its schema."""

    meta: DrillMeta
    writes: pa.Table = field(default_factory=lambda: empty("writes"))
    reads: pa.Table = field(default_factory=lambda: empty("reads"))
    commits: pa.Table = field(default_factory=lambda: empty("commits"))
    log: pa.Table = field(default_factory=lambda: empty("log"))
    end_offsets: pa.Table = field(default_factory=lambda: empty("end_offsets"))
    resumes: pa.Table = field(default_factory=lambda: empty("resumes"))

    def __post_init__(self) -> None:
        for name in TABLES:
            object.__setattr__(self, name, conform(name, getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        meta = self.meta
        if meta.primary == meta.standby:
            raise HistoryError("primary and standby must be different clusters")
        if not meta.topics:
            raise HistoryError("meta.topics is empty: the checker cannot map any topic")
        if self.writes.num_rows:
            counts = self.writes.group_by(["producer", "gseq"]).aggregate([("seq", "count")])
            reused = counts.filter(pc.greater(counts["seq_count"], 1))
            if reused.num_rows:
                first = reused.slice(0, 1).to_pylist()[0]
                raise HistoryError(
                    f"writes: (producer, gseq) must identify one send; "
                    f"{reused.num_rows} reused, e.g. {first['producer']}/{first['gseq']}"
                )
        sources = set(pc.unique(self.resumes["source"]).to_pylist())
        unknown = sources - {s.value for s in ResumeSource}
        if unknown:
            raise HistoryError(f"resumes.source: unknown values {sorted(unknown)}")

    def with_meta(self, **changes) -> History:
        """A copy with metadata fields replaced (tests vary one instant at a time)."""
        return replace(self, meta=replace(self.meta, **changes))

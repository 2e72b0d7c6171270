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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drills.history.columns import ints, local_codes, reused


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
    TIMESTAMP = "timestamp"  # offsets_for_times of a recorded timestamp (backup-and-restore)
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
        if column.type != f.type and not _encoded_string(f.type, column.type):
            try:
                column = column.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise HistoryError(
                    f"{name}.{f.name}: cannot read {column.type} as {f.type}"
                ) from exc
        if not f.nullable and column.null_count:
            raise HistoryError(f"{name}.{f.name}: {column.null_count} null values")
        columns.append(column)
    fields = [pa.field(f.name, c.type, f.nullable) for f, c in zip(schema, columns, strict=True)]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _encoded_string(wanted: pa.DataType, actual: pa.DataType) -> bool:
    """A dictionary of strings stands for a string column (Parquet stores them so; reads are cheap)."""
    return (
        pa.types.is_string(wanted)
        and pa.types.is_dictionary(actual)
        and pa.types.is_string(actual.value_type)
    )


def plain(table: pa.Table) -> pa.Table:
    """``table`` with dictionary-encoded string columns decoded to plain strings."""
    if not any(pa.types.is_dictionary(t) for t in table.schema.types):
        return table
    columns = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    schema = pa.schema(
        [pa.field(f.name, c.type, f.nullable) for f, c in zip(table.schema, columns, strict=True)]
    )
    return pa.Table.from_arrays(columns, schema=schema)


def empty(name: str) -> pa.Table:
    return TABLES[name].empty_table()


class History:
    """A drill's full record: metadata plus the six tables, each conformed to its schema.

    ``history.writes`` (and the other five) are tables with exactly the schemas
    above. A history read from Parquet keeps its string columns dictionary-encoded
    as read (``stored``), which is what the checker works on; the plain form is
    decoded on first access and kept.
    """

    __slots__ = ("_plain", "_stored", "meta")

    def __init__(
        self,
        meta: DrillMeta,
        writes: pa.Table | None = None,
        reads: pa.Table | None = None,
        commits: pa.Table | None = None,
        log: pa.Table | None = None,
        end_offsets: pa.Table | None = None,
        resumes: pa.Table | None = None,
    ) -> None:
        given = {
            "writes": writes,
            "reads": reads,
            "commits": commits,
            "log": log,
            "end_offsets": end_offsets,
            "resumes": resumes,
        }
        object.__setattr__(self, "meta", meta)
        object.__setattr__(
            self,
            "_stored",
            {
                name: empty(name) if table is None else conform(name, table)
                for name, table in given.items()
            },
        )
        object.__setattr__(self, "_plain", {})
        self._validate()

    def __setattr__(self, name, value) -> None:
        raise AttributeError("History is immutable; use with_meta")

    def stored(self, name: str) -> pa.Table:
        """Table ``name`` as held: string columns may be dictionary-encoded."""
        return self._stored[name]

    def table(self, name: str) -> pa.Table:
        """Table ``name`` with exactly its schema (plain strings)."""
        if name not in self._plain:
            self._plain[name] = plain(self._stored[name])
        return self._plain[name]

    writes = property(lambda self: self.table("writes"))
    reads = property(lambda self: self.table("reads"))
    commits = property(lambda self: self.table("commits"))
    log = property(lambda self: self.table("log"))
    end_offsets = property(lambda self: self.table("end_offsets"))
    resumes = property(lambda self: self.table("resumes"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return self.meta == other.meta and all(
            self.table(name).equals(other.table(name)) for name in TABLES
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (History, (self.meta, *(self._stored[name] for name in TABLES)))

    def __repr__(self) -> str:
        rows = ", ".join(f"{name}={self._stored[name].num_rows}" for name in TABLES)
        return f"History(meta={self.meta!r}, {rows})"

    def _validate(self) -> None:
        meta = self.meta
        if meta.primary == meta.standby:
            raise HistoryError("primary and standby must be different clusters")
        if not meta.topics:
            raise HistoryError("meta.topics is empty: the checker cannot map any topic")
        writes = self._stored["writes"]
        if writes.num_rows:
            # Any integer per producer will do to compare identities: the column's own
            # dictionary indices, not the checker's codes in order of first appearance.
            producer, names = local_codes(writes["producer"])
            gseq = ints(writes["gseq"])
            twice = reused(producer, gseq)
            if twice.any():
                first = int(np.argmax(twice))
                pairs = {
                    (int(p), int(g)) for p, g in zip(producer[twice], gseq[twice], strict=True)
                }
                count = len(pairs)
                raise HistoryError(
                    f"writes: (producer, gseq) must identify one send; "
                    f"{count} reused, e.g. {names[producer[first]]}/{gseq[first]}"
                )
        resumes = self._stored["resumes"]
        sources = set(pc.unique(resumes["source"].cast(pa.string())).to_pylist())
        unknown = sources - {s.value for s in ResumeSource}
        if unknown:
            raise HistoryError(f"resumes.source: unknown values {sorted(unknown)}")

    def with_meta(self, **changes) -> History:
        """A copy with metadata fields replaced (tests vary one instant at a time)."""
        return History(replace(self.meta, **changes), **self._stored)

"""The evidence an anomaly is reported with: the records, their positions, the writes and reads.

A case must let a reader verify the anomaly by hand from the raw history, so
each one names the producer and key, the sequence range, and the exact
positions (cluster, topic, partition, offset) of the write and of the read
that prove it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, TypeVar

T = TypeVar("T")
_new = object.__new__


def quick(cls: type[T], **fields) -> T:
    """``cls(**fields)`` for a frozen dataclass of this module, every field given by name,
    without the generated ``__init__``: it sets each field through ``object.__setattr__``,
    twice the time of filling the instance's ``__dict__`` at once, and a check builds evidence
    objects by the ten thousand (issue 22). Equality, hashing and ``asdict`` are unchanged."""
    obj = _new(cls)
    obj.__dict__.update(fields)
    return obj


LOST_TAIL = "lost-tail"
LOST_INTERIOR = "lost-interior"
DUPLICATE = "duplicate"
REORDERED = "reordered"
LATE = "late"
SKIPPED = "skipped-by-offset"
SPLIT_BRAIN = "split-brain-write"

#: Every anomaly type, in report order.
ANOMALIES = (LOST_TAIL, LOST_INTERIOR, DUPLICATE, REORDERED, LATE, SKIPPED, SPLIT_BRAIN)


@dataclass(frozen=True)
class Position:
    cluster: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Found:
    """A record as it was found in a log (or read by a consumer): identity and position."""

    producer: str
    key: str
    seq: int
    gseq: int
    at: Position

    @classmethod
    def from_row(cls, row: dict, cluster: str) -> Found:
        at = Position(cluster, row["topic"], row["partition"], row["offset"])
        return cls(row["producer"], row["key"], row["seq"], row["gseq"], at)


@dataclass(frozen=True)
class Write:
    """A send from the ack ledger; ``at`` and ``ack_time`` are None when it was never acknowledged."""

    producer: str
    key: str
    seq: int
    gseq: int
    cluster: str
    at: Position | None
    send_time: float
    ack_time: float | None

    #: The ledger's columns ``from_table`` reads, in its order.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "producer",
        "key",
        "seq",
        "gseq",
        "cluster",
        "topic",
        "partition",
        "offset",
        "send_time",
        "ack_time",
    )

    @classmethod
    def from_table(cls, table) -> list[Write]:
        """``from_row`` of every row of ``table`` (pyarrow, plain strings), read column by
        column: no dict per row (lost-write evidence has ~10,000 of them; issue 22)."""
        columns = [table[name].to_pylist() for name in cls.COLUMNS]
        out = []
        for producer, key, seq, gseq, cluster, topic, partition, offset, sent, acked in zip(
            *columns, strict=True
        ):
            at = None
            if offset is not None:
                at = quick(
                    Position, cluster=cluster, topic=topic, partition=partition, offset=offset
                )
            out.append(
                quick(
                    cls,
                    producer=producer,
                    key=key,
                    seq=seq,
                    gseq=gseq,
                    cluster=cluster,
                    at=at,
                    send_time=sent,
                    ack_time=acked,
                )
            )
        return out

    @classmethod
    def from_row(cls, row: dict) -> Write:
        at = None
        if row["offset"] is not None:
            at = quick(
                Position,
                cluster=row["cluster"],
                topic=row["topic"],
                partition=row["partition"],
                offset=row["offset"],
            )
        return quick(
            cls,
            producer=row["producer"],
            key=row["key"],
            seq=row["seq"],
            gseq=row["gseq"],
            cluster=row["cluster"],
            at=at,
            send_time=row["send_time"],
            ack_time=row["ack_time"],
        )


class Case:
    """Base of all cases: its anomaly type and a JSON-ready form."""

    anomaly: ClassVar[str]

    def to_dict(self) -> dict:
        return {"anomaly": self.anomaly, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class LostCase(Case):
    """Acknowledged records ``first_seq..last_seq`` of one key, absent from the serving log.

    ``segment`` is the cluster the records were written to; ``next_present`` is
    the later record of the same key and segment that was found (its presence is
    what makes the gap interior); ``last_present_seq`` is the highest sequence of
    the segment that was found at all.
    """

    anomaly: str  # LOST_TAIL or LOST_INTERIOR
    producer: str
    key: str
    segment: str
    first_seq: int
    last_seq: int
    count: int
    writes: tuple[Write, ...]
    last_present_seq: int | None
    next_present: Found | None


@dataclass(frozen=True)
class DuplicateCase(Case):
    """One record (same producer and gseq) found more than once in the serving log."""

    anomaly: ClassVar[str] = DUPLICATE
    producer: str
    key: str
    seq: int
    gseq: int
    found: tuple[Found, ...]


@dataclass(frozen=True)
class ReorderedCase(Case):
    """``record`` comes after ``after`` in reading order although its sequence is lower."""

    anomaly: ClassVar[str] = REORDERED
    producer: str
    key: str
    record: Found
    after: Found


@dataclass(frozen=True)
class LateCase(Case):
    """Records replicated into a standby partition at or above the end offset E snapshotted at cutover."""

    anomaly: ClassVar[str] = LATE
    topic: str
    partition: int
    end_offset: int
    count: int
    found: tuple[Found, ...]


@dataclass(frozen=True)
class SkippedCase(Case):
    """Records in [ideal, resume) of a serving partition that the group resumed past: loss by offset."""

    anomaly: ClassVar[str] = SKIPPED
    group: str
    topic: str
    partition: int
    ideal: int
    resume: int
    resume_source: str
    count: int
    records: tuple[Found, ...]


@dataclass(frozen=True)
class SplitBrainCase(Case):
    """Writes the old primary acknowledged after T_fence, in one primary partition; must never happen."""

    anomaly: ClassVar[str] = SPLIT_BRAIN
    topic: str
    partition: int
    t_fence: float
    count: int
    writes: tuple[Write, ...]
    replicated: int

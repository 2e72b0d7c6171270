"""Row-by-row recording of a history, for the drill engine and for hand-built test histories.

The engine learns facts one at a time (a delivery report, a poll, a commit);
the checker wants columns. The builder keeps one Python list per column and
turns them into tables once, in ``build``.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from drills.history.model import TABLES, DrillMeta, History, ResumeSource


class HistoryBuilder:
    """Appends rows to the six history tables; ``build(meta)`` returns the History."""

    def __init__(self) -> None:
        self._columns: dict[str, dict[str, list]] = {name: defaultdict(list) for name in TABLES}

    def _append(self, table: str, **row) -> None:
        columns = self._columns[table]
        for name in TABLES[table].names:
            columns[name].append(row.get(name))

    def ack(
        self,
        producer: str,
        key: str,
        seq: int,
        gseq: int,
        *,
        cluster: str,
        topic: str,
        partition: int,
        offset: int,
        send_time: float,
        ack_time: float,
    ) -> None:
        """A send that ``cluster`` acknowledged at topic/partition/offset."""
        self._append("writes", **_locals(locals()))

    def send(
        self,
        producer: str,
        key: str,
        seq: int,
        gseq: int,
        *,
        cluster: str,
        topic: str,
        send_time: float,
        partition: int | None = None,
        error: str | None = None,
    ) -> None:
        """A send never acknowledged (timed out, failed or still in flight): indeterminate."""
        self._append("writes", **_locals(locals()))

    def read(
        self,
        group: str,
        producer: str,
        key: str,
        seq: int,
        gseq: int,
        *,
        cluster: str,
        topic: str,
        partition: int,
        offset: int,
        produced_at: float,
        poll_time: float,
    ) -> None:
        """A record handed to ``group`` by poll(), with the identity read from its payload."""
        self._append("reads", **_locals(locals()))

    def commit(
        self, group: str, *, cluster: str, topic: str, partition: int, offset: int, time: float
    ) -> None:
        """An offset commit; ``offset`` is the next offset to consume (Kafka's convention)."""
        self._append(
            "commits",
            group=group,
            cluster=cluster,
            topic=topic,
            partition=partition,
            offset=offset,
            commit_time=time,
        )

    def last_commits(self, cluster: str, before: float) -> dict[tuple[str, str, int], int]:
        """(group, topic, partition) -> the last offset each group committed in `cluster` before
        `before` (a backup-and-restore drill turns it into a timestamp to resume from)."""
        c = self._columns["commits"]
        out: dict[tuple[str, str, int], tuple[float, int]] = {}
        rows = zip(c["group"], c["cluster"], c["topic"], c["partition"], c["offset"],
                   c["commit_time"], strict=True)  # fmt: skip
        for group, cl, topic, part, offset, at in rows:
            k = (group, topic, part)
            if cl == cluster and at < before and (k not in out or at >= out[k][0]):
                out[k] = (at, offset)
        return {k: v[1] for k, v in out.items()}

    def logged(
        self,
        producer: str,
        key: str,
        seq: int,
        gseq: int,
        *,
        cluster: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """A record found at cluster/topic/partition/offset when the log was read back."""
        self._append("log", **_locals(locals()))

    def end_offset(self, *, cluster: str, topic: str, partition: int, end_offset: int) -> None:
        """The end offset E of a standby partition, snapshotted at cutover."""
        self._append("end_offsets", **_locals(locals()))

    def resume(
        self,
        group: str,
        *,
        cluster: str,
        topic: str,
        partition: int,
        source: ResumeSource | str,
        position: int | None = None,
    ) -> None:
        """Where ``group`` was positioned in the serving cluster after cutover, and from what."""
        self._append(
            "resumes",
            group=group,
            cluster=cluster,
            topic=topic,
            partition=partition,
            position=position,
            source=ResumeSource(source).value,
        )

    def tables(self) -> dict[str, pa.Table]:
        """The rows so far as tables with the history schemas."""
        return {
            name: pa.Table.from_pydict(
                {f.name: self._columns[name][f.name] for f in schema}, schema=schema
            )
            if self._columns[name]
            else schema.empty_table()
            for name, schema in TABLES.items()
        }

    def build(self, meta: DrillMeta) -> History:
        return History(meta=meta, **self.tables())


def _locals(values: dict) -> dict:
    values.pop("self", None)
    return values

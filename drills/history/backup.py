"""Backup and restore (`replication.engine: backup-restore`): what the restore brought back,
recomputed from the history, and the verdict lines of the pattern.

The drill (drills/backup.py) restores the bucket into `restored.<topic>` in the standby and
reads those topics back into the history's log, like MirrorMaker 2's `<source>.<topic>`
replicas, so the general checker measures RPO and continuity on them. This module
recomputes the RPO from the tables alone -- records the primary acknowledged up to T_fence
whose identity (producer, gseq) is absent from the restored topics -- and checks it agrees
with the checker's; counts records restored twice (the sink is at-least-once, the restore
drops repeats by source offset: must be 0); and carries the restore's own figures: records
and bytes restored, seconds, MB/s and seconds per GB.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.compute as pc

from drills.history.model import History, ResumeSource

PATTERN = "backup-restore"
RESTORED_PREFIX = "restored"  # restored.<topic> in the standby: the layout of a prefixed policy
RESUME_TIMESTAMP = ResumeSource.TIMESTAMP.value  # a group's resume source after a restore


def restored_topic(topic: str) -> str:
    return f"{RESTORED_PREFIX}.{topic}"


@dataclass(frozen=True)
class Restore:
    """What the restore did, as the restore reported it (components/local/s3backup.py)."""

    location: str
    records: int
    bytes: int
    objects: int
    seconds: float
    started_since_fault_s: float | None = None

    @property
    def mb_per_s(self) -> float | None:
        return None if self.seconds <= 0 else round(self.bytes / 1e6 / self.seconds, 3)

    @property
    def seconds_per_gb(self) -> float | None:
        return None if self.bytes <= 0 else round(self.seconds / (self.bytes / 1e9), 1)


@dataclass(frozen=True)
class BackupRestoreReport:
    """The evidence's `backup_restore` section."""

    primary: str
    standby: str
    restore: Restore
    sink: dict[str, Any]  # the sink's last status: records and objects flushed, last flush
    flush_interval_s: float
    acknowledged: int  # primary acknowledgements up to T_fence
    missing: int  # of them, absent from the restored topics (recomputed here)
    missing_seconds: float | None  # T_fault - the oldest missing record's ack time
    missing_sample: list[dict[str, Any]]
    restored_twice: int  # identities found more than once in the restored topics
    checker_rpo_records: int
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # per group, from continuity

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["restore"]["mb_per_s"] = self.restore.mb_per_s
        d["restore"]["seconds_per_gb"] = self.restore.seconds_per_gb
        d["restore"]["records_per_s"] = (
            None
            if self.restore.seconds <= 0
            else round(self.restore.records / self.restore.seconds, 1)
        )
        return d

    def checks(self) -> list[dict[str, Any]]:
        """Verdict lines: the recomputed RPO agrees with the checker's; nothing restored twice."""
        return [
            {"objective": "backup-restore RPO recomputed from the restored log",
             "value": self.missing, "bound": self.checker_rpo_records,
             "met": self.missing == self.checker_rpo_records},
            {"objective": "backup-restore records restored twice", "value": self.restored_twice,
             "bound": 0, "met": self.restored_twice == 0},
        ]  # fmt: skip


def check_backup_restore(
    history: History,
    topics: list[str],
    restore: Restore,
    sink: dict[str, Any],
    flush_interval_s: float,
    checker_rpo_records: int,
    continuity: tuple = (),
    sample: int = 5,
) -> BackupRestoreReport:
    meta = history.meta
    ins = meta.instants
    restored = {restored_topic(t) for t in topics}
    writes = history.table("writes")
    prim = writes.filter(pc.and_(pc.equal(writes["cluster"], meta.primary),
                                 pc.is_valid(writes["ack_time"])))  # fmt: skip
    if ins.t_fence is not None:
        prim = prim.filter(pc.less_equal(prim["ack_time"], ins.t_fence))
    log = history.table("log")
    log = log.filter(pc.equal(log["cluster"], meta.standby))
    log = log.filter(pc.is_in(log["topic"], value_set=_array(sorted(restored))))
    found = Counter(zip(log["producer"].to_pylist(), log["gseq"].to_pylist(), strict=True))
    rows = prim.select(
        ["producer", "key", "seq", "gseq", "ack_time", "topic", "partition", "offset"]
    )
    missing = [r for r in rows.to_pylist() if (r["producer"], r["gseq"]) not in found]
    missing.sort(key=lambda r: r["ack_time"])
    oldest = missing[0]["ack_time"] if missing else None
    seconds = (
        0.0 if oldest is None else (None if ins.t_fault is None else round(ins.t_fault - oldest, 4))
    )
    dups = [{"group": c.group, "topic": c.topic, "partition": c.partition,
             "resume": c.resume, "ideal": c.ideal, "duplicates": c.duplicates,
             "skipped": c.skipped, "source": c.resume_source} for c in continuity]  # fmt: skip
    return BackupRestoreReport(
        primary=meta.primary,
        standby=meta.standby,
        restore=restore,
        sink=dict(sink),
        flush_interval_s=flush_interval_s,
        acknowledged=prim.num_rows,
        missing=len(missing),
        missing_seconds=seconds,
        missing_sample=missing[:sample],
        restored_twice=sum(n - 1 for n in found.values() if n > 1),
        checker_rpo_records=checker_rpo_records,
        duplicates=dups,
    )


def _array(values: list[str]):
    import pyarrow as pa

    return pa.array(values, pa.string())


def pattern_facts() -> dict[str, str]:
    return {"name": PATTERN, "describe": "backup and restore: the primary's topics backed up to "
            "the standby's bucket, restored into the standby after the region loss; consumers "
            "resume by timestamp"}  # fmt: skip


def summary_lines(section: dict[str, Any] | None) -> list[str]:
    """The terminal summary's backup-and-restore lines."""
    if not section:
        return []
    r = section["restore"]
    dup = sum(d["duplicates"] for d in section["duplicates"])
    return [
        f"backup-restore: restored {r['records']} records / {r['bytes']} bytes from "
        f"{r['objects']} objects in {r['seconds']:.2f}s ({r['mb_per_s']} MB/s, "
        f"{r['seconds_per_gb']} s/GB) from {r['location']}",
        f"backup-restore: {section['missing']} of {section['acknowledged']} acknowledged records "
        f"absent after restore (flush every {section['flush_interval_s']:g}s); consumers resumed "
        f"by timestamp: {dup} duplicates; restored twice {section['restored_twice']}",
    ]


def figures(section: dict[str, Any] | None) -> list[list[str]]:
    """The report's backup-and-restore rows."""
    if not section:
        return []
    r = section["restore"]
    return [
        ["backup-restore: restore", f"{r['records']:,} records, {r['bytes']:,} bytes in "
         f"{r['seconds']:.2f}s ({r['mb_per_s']} MB/s; {r['seconds_per_gb']} s per GB)"],
        ["backup-restore: absent after restore",
         f"{section['missing']:,} of {section['acknowledged']:,} acknowledged "
         f"(flush interval {section['flush_interval_s']:g}s)"],
        ["backup-restore: duplicates on resume by timestamp",
         f"{sum(d['duplicates'] for d in section['duplicates']):,}"],
    ]  # fmt: skip

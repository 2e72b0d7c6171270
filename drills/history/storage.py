"""The on-disk history: a directory of Parquet files plus meta.json, under a schema version.

Why Parquet: the history is the raw evidence a drill keeps, up to millions of
rows; Parquet is columnar, typed, compressed, read back in one call by
pyarrow, and readable by any analytics tool an SRE already has (DuckDB,
pandas, Spark). Why a directory of one file per table: the tables have
different shapes, and each can be inspected alone.

Layout of ``<dir>``::

    meta.json            {"format": "kdrill-history", "schema_version": 1, ...DrillMeta}
    writes.parquet       model.WRITES
    reads.parquet        model.READS
    commits.parquet      model.COMMITS
    log.parquet          model.LOG
    end_offsets.parquet  model.END_OFFSETS
    resumes.parquet      model.RESUMES

Every Parquet file also carries ``kdrill.history.schema_version`` in its
key-value metadata, so a file separated from its directory still says what
it is. Files are written to a temporary name and renamed, so a crash never
leaves a half-written table under its real name.

A run whose workload ran as several processes (``kdrill worker``, drills/worker.py) keeps
one *shard* per process, each a history directory of the layout above, and a top-level
meta.json that lists them::

    meta.json            {..., "shards": ["engine", "worker-0", ...], "clock_offsets": {...}}
    shards/<name>/       a history directory: that process's rows only

``read_history`` reads either layout: a sharded one is merged (``merge_shards``), so the
checker sees one history whichever way the workload ran. A shard's times are on its
process's clock; ``clock_offsets`` (seconds, that clock minus the engine's) is subtracted
from them when merging -- 0 for a process on the engine's machine, whose monotonic clock
is the engine's own.

Versioning: SCHEMA_VERSION changes when a column is removed, renamed or
changes meaning; readers refuse versions they do not know rather than guess.
Adding a nullable column does not change the version (``conform`` drops
unknown columns and older readers ignore them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from drills.history.allocator import without_huge_pages
from drills.history.model import TABLES, DrillMeta, History, HistoryError

SCHEMA_VERSION = 1
FORMAT = "kdrill-history"
VERSION_KEY = b"kdrill.history.schema_version"


def write_history(history: History, directory: str | os.PathLike) -> Path:
    """Write ``history`` into ``directory`` (created if needed); returns the directory."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        table = history.table(name)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), VERSION_KEY: str(SCHEMA_VERSION).encode()}
        )
        _atomic(path / f"{name}.parquet", lambda tmp, t=table: _write_table(t, tmp))
    meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **history.meta.to_dict()}
    _atomic(path / "meta.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return path


def read_history(directory: str | os.PathLike) -> History:
    """Read a history written by ``write_history``; HistoryError if absent or of another version."""
    path = Path(directory)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except FileNotFoundError as exc:
        raise HistoryError(f"{path}: no meta.json, not a kdrill history") from exc
    if meta.get("format") != FORMAT:
        raise HistoryError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    _check_version(path / "meta.json", meta.get("schema_version"))
    if "shards" in meta:
        shards = [read_history(path / SHARDS / name) for name in meta["shards"]]
        offsets = meta.get("clock_offsets") or {}
        return merge_shards(
            shards,
            DrillMeta.from_dict(meta),
            [float(offsets.get(name) or 0.0) for name in meta["shards"]],
        )
    with without_huge_pages():  # see allocator.py; History validates (allocates) too
        return History(meta=DrillMeta.from_dict(meta), **_read_tables(path))


SHARDS = "shards"  # the sharded layout's subdirectory

#: Columns written delta-encoded: sequence numbers and offsets, integers that mostly grow by
#: small steps (too many distinct values for a dictionary).
DELTA_COLUMNS = ("seq", "gseq", "offset")


def _write_table(table: pa.Table, file: Path) -> None:
    """One table as Parquet: ``DELTA_COLUMNS`` delta-encoded, times plain, every other column
    dictionary-encoded (the strings, read as dictionaries by ``read_history``; partitions),
    and no compression. Why: snappy over dictionary and plain pages took a third of the read's
    CPU and saved little beyond what delta encoding saves anyway (the bench's 1M history:
    63 MB and 0.32 s of read CPU with snappy, 45 MB and 0.21 s so; issue 22). Any Parquet
    reader reads either; histories written before are read as they are.
    """
    delta = [name for name in table.column_names if name in DELTA_COLUMNS]
    plain = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    pq.write_table(
        table,
        file,
        compression="none",
        use_dictionary=[name for name in table.column_names if name not in delta + plain],
        column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
    )


def write_sharded(
    meta: DrillMeta,
    directory: str | os.PathLike,
    shards: Sequence[str],
    clock_offsets: Mapping[str, float] | None = None,
) -> Path:
    """Make ``directory`` a sharded history: ``shards`` (names under ``directory/shards/``,
    each already written by ``write_history``) under ``meta``; returns the directory.
    Every shard must be there: a run missing one would be checked as if its rows never
    happened."""
    path = Path(directory)
    for name in shards:
        if not (path / SHARDS / name / "meta.json").exists():
            raise HistoryError(f"{path / SHARDS / name}: shard missing (no meta.json)")
    doc = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        **meta.to_dict(),
        "shards": list(shards),
        "clock_offsets": {name: float((clock_offsets or {}).get(name, 0.0)) for name in shards},
    }
    path.mkdir(parents=True, exist_ok=True)
    _atomic(path / "meta.json", lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n"))
    return path


# The time columns of each table, on the clock of the process that recorded the row.
# reads.produced_at is the producer's send time, carried in the record: on its producer's clock.
_TIMES = {
    "writes": ("send_time", "ack_time"),
    "reads": ("poll_time",),
    "commits": ("commit_time",),
}


def merge_shards(
    shards: Sequence[History],
    meta: DrillMeta | None = None,
    clock_offsets: Sequence[float] | None = None,
) -> History:
    """One history from the shards of one run, each recorded by one process.

    ``meta``: the run's (default: the first shard's). ``clock_offsets[i]``: shard i's
    clock minus the engine's, in seconds, subtracted from shard i's time columns (and
    from ``reads.produced_at`` of the records its producers wrote) so every instant is
    on the engine's clock, as the checker requires. Rows are put in the order one
    process's Recorder writes them (``recorder_order``): the checker numbers keys in
    order of first appearance, so its cases come in the same order as from one process.
    Identities must not repeat across shards (a producer runs in one process):
    History's own validation refuses a (producer, gseq) written twice.
    """
    if not shards:
        raise HistoryError("merge_shards: no shards")
    offsets = list(clock_offsets or [0.0] * len(shards))
    if len(offsets) != len(shards):
        raise HistoryError(f"merge_shards: {len(shards)} shards, {len(offsets)} clock offsets")
    by_producer: dict[str, float] = {}
    for shard, off in zip(shards, offsets, strict=True):
        if off:
            for name in pc.unique(shard.stored("writes")["producer"].cast(pa.string())).to_pylist():
                by_producer[name] = off
    tables = {}
    for name in TABLES:
        parts = []
        for shard, off in zip(shards, offsets, strict=True):
            table = shard.table(name)
            if off:
                for column in _TIMES.get(name, ()):
                    table = _shifted(table, column, off)
            if name == "reads" and by_producer and table.num_rows:
                table = _shift_produced(table, by_producer)
            parts.append(table)
        tables[name] = recorder_order(name, pa.concat_tables(parts))
    return History(meta=meta or shards[0].meta, **tables)


# How drills/workload.py's Recorder orders each table's rows: writes are the acks in ack
# order, then the sends that never got one; reads and commits as they happened. The log
# and the end offsets are the engine's alone (one shard), resumes have no time: kept.
_ORDER = {
    "writes": [("ack_time", "ascending", "at_end"), ("send_time", "ascending", "at_end")],
    "reads": [("poll_time", "ascending", "at_end")],
    "commits": [("commit_time", "ascending", "at_end")],
}


def recorder_order(name: str, table: pa.Table) -> pa.Table:
    """``table`` (of history table ``name``) in the order one process records its rows
    (a stable sort, unacknowledged writes last), in one chunk."""
    if name in _ORDER and table.num_rows:
        table = table.take(pc.sort_indices(table, sort_keys=_ORDER[name]))
    return table.combine_chunks()


def _shifted(table: pa.Table, column: str, offset: float) -> pa.Table:
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pc.subtract(table[column], offset))


def _shift_produced(reads: pa.Table, by_producer: Mapping[str, float]) -> pa.Table:
    names = reads["producer"].to_numpy(zero_copy_only=False)
    shift = np.array([by_producer.get(n, 0.0) for n in names], dtype=np.float64)
    i = reads.schema.get_field_index("produced_at")
    fixed = pc.subtract(reads["produced_at"], pa.array(shift))
    return reads.set_column(i, reads.schema.field(i), fixed)


def split_by_producer(history: History, groups: Sequence[Sequence[str]]) -> list[History]:
    """``history`` as the shards of processes each running ``groups[i]`` (producer ids and
    consumer group names): a shard holds its producers' writes and its groups' reads,
    commits and resumes; a last shard, the engine's, holds the log and the end offsets
    (what the drill itself read). Merging them gives ``history`` back, row order aside:
    what the checker must not depend on."""
    shards = []
    empty = {name: history.table(name).slice(0, 0) for name in TABLES}
    for names in groups:
        wanted = pa.array(list(names), pa.string())
        part = dict(empty)
        writes = history.table("writes")
        part["writes"] = writes.filter(pc.is_in(writes["producer"], wanted))
        for name in ("reads", "commits", "resumes"):
            table = history.table(name)
            part[name] = table.filter(pc.is_in(table["group"], wanted))
        shards.append(History(meta=history.meta, **part))
    engine = dict(empty, log=history.table("log"), end_offsets=history.table("end_offsets"))
    shards.append(History(meta=history.meta, **engine))
    return shards


def _read_tables(path: Path) -> dict[str, pa.Table]:
    """Every table of ``path``, the files read in parallel threads.

    Why threads: each file's read is partly serial (opening, metadata, assembling the
    table) and arrow releases the GIL throughout, so reading the six files at once keeps
    both cores busy (the bench's 1M history: see README, "History checker").
    Missing files are reported before anything is read, first in table order.
    """
    files = {name: path / f"{name}.parquet" for name in TABLES}
    for file in files.values():
        if not file.exists():
            raise HistoryError(f"{path}: missing {file.name}")
    # Largest first, so the small files fill in around them.
    names = sorted(TABLES, key=lambda name: -files[name].stat().st_size)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        read = dict(zip(names, pool.map(lambda n: _read_table(n, files[n]), names), strict=True))
    return {name: read[name] for name in TABLES}


def _read_table(name: str, file: Path) -> pa.Table:
    # String columns are dictionary-encoded in the file: read them as arrow dictionaries
    # (about 5x faster than materialising every string; the checker wants codes anyway).
    # ParquetFile.read, not read_table: one chunk per row group instead of one per 128Ki
    # rows, so numeric columns become numpy arrays without a copy and dictionary columns
    # need no unifying (read CPU 0.38 -> 0.11 s for 1M writes on this machine).
    # memory_map: the compressed pages are read from the page cache in place. Read into
    # buffers instead, they come from arrow's C++ default pool (mimalloc, whatever
    # allocator.py sets for pyarrow): ~65 MB of fresh pages per 1M-record history, faulted in
    # (huge pages: compacting memory) and kept by mimalloc after the read (read CPU 0.84 ->
    # 0.48 s, resident memory -68 MB; issue 22). The files are replaced by rename, never
    # rewritten in place, so a mapping never sees a file change under it.
    strings = [f.name for f in TABLES[name] if pa.types.is_string(f.type)]
    with pq.ParquetFile(file, read_dictionary=strings, memory_map=True) as parquet:
        table = parquet.read()
    _check_version(file, (table.schema.metadata or {}).get(VERSION_KEY, b"").decode() or None)
    return table.replace_schema_metadata(None)


def _check_version(where: Path, version: object) -> None:
    if str(version) != str(SCHEMA_VERSION):
        raise HistoryError(
            f"{where}: history schema version {version!r}; this checker reads {SCHEMA_VERSION}"
        )


def _atomic(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    write(tmp)
    os.replace(tmp, target)

"""Shards: a history split by producer (and group) into per-process shards and merged back
checks exactly as the one-process history does, whichever the shards' order, on disk too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from drills.history import CheckPolicy, HistoryError, check, read_history, write_history
from drills.history.cases import DUPLICATE, LATE, LOST_TAIL
from drills.history.model import TABLES
from drills.history.storage import merge_shards, split_by_producer, write_sharded

FIXTURE = Path(__file__).parents[1] / "report" / "fixtures" / "passing" / "history"
POLICY = CheckPolicy(tolerate=frozenset({LOST_TAIL, LATE, DUPLICATE}), sample=5)


def _synth():
    sys.path.insert(0, str(Path(__file__).parents[3]))
    from bench.synth import synthesize

    # the synthetic rows come in no particular order; a drill's Recorder writes them in
    # time order (acks by ack time, then the unacknowledged), which merging reproduces
    return merge_shards([synthesize(40_000, 64)])


def _names(history, table, column):
    return sorted(pc.unique(history.table(table)[column]).to_pylist())


def _assert_same(merged, whole) -> None:
    a, b = check(merged, POLICY).to_dict(full=True), check(whole, POLICY).to_dict(full=True)
    assert a.keys() == b.keys()
    for field in a:  # field by field, so a failure names the one that differs
        assert a[field] == b[field], field
    for name in TABLES:
        assert merged.table(name).num_rows == whole.table(name).num_rows, name


@pytest.mark.parametrize("source", ["fixture", "synth"])
def test_split_by_producer_and_merged_checks_identically(source, tmp_path):
    whole = read_history(FIXTURE) if source == "fixture" else _synth()
    producers = _names(whole, "writes", "producer")
    groups = _names(whole, "reads", "group")
    # one producer per worker, the groups spread over them, the engine's shard last
    n = max(len(producers), 2)
    split = [[*producers[i::n], *groups[i::n]] for i in range(n)]
    shards = split_by_producer(whole, split)
    assert sum(s.writes.num_rows for s in shards) == whole.writes.num_rows
    assert len({tuple(_names(s, "writes", "producer")) for s in shards[:-1]}) == n or n > len(
        producers
    )
    _assert_same(merge_shards(shards, whole.meta), whole)
    _assert_same(merge_shards(shards[::-1], whole.meta), whole)  # order does not matter
    # on disk: each shard a history directory, the run's meta.json listing them
    names = [f"worker-{i}" for i in range(n)] + ["engine"]
    for name, shard in zip(names, shards, strict=True):
        write_history(shard, tmp_path / "history" / "shards" / name)
    write_sharded(whole.meta, tmp_path / "history", names)
    back = read_history(tmp_path / "history")
    assert back.meta == whole.meta
    _assert_same(back, whole)


def test_clock_offsets_move_a_shards_times_onto_the_engines_clock():
    whole = merge_shards([read_history(FIXTURE)])  # rows in recorder order, as merging leaves them
    producers = _names(whole, "writes", "producer")
    groups = _names(whole, "reads", "group")
    shards = split_by_producer(whole, [[*producers, *groups]])
    # the worker's clock runs 2.5 s ahead of the engine's: its shard's times are +2.5 s
    worker = merge_shards([shards[0]], whole.meta, [-2.5])
    assert worker.writes["send_time"][0].as_py() == pytest.approx(
        whole.writes["send_time"][0].as_py() + 2.5
    )
    back = merge_shards([worker, shards[1]], whole.meta, [2.5, 0.0])
    for name, cols in {"writes": ("send_time", "ack_time"), "reads": ("poll_time", "produced_at"),
                       "commits": ("commit_time",)}.items():  # fmt: skip
        for col in cols:
            got = back.table(name)[col].to_numpy(zero_copy_only=False)
            want = whole.table(name)[col].to_numpy(zero_copy_only=False)
            assert got == pytest.approx(want, nan_ok=True), f"{name}.{col}"
    _assert_same(back, whole)


def test_a_missing_shard_is_refused(tmp_path):
    whole = read_history(FIXTURE)
    write_history(split_by_producer(whole, [[]])[0], tmp_path / "shards" / "worker-0")
    with pytest.raises(HistoryError, match="worker-1"):
        write_sharded(whole.meta, tmp_path, ["worker-0", "worker-1"])
    write_sharded(whole.meta, tmp_path, ["worker-0"])
    assert json.loads((tmp_path / "meta.json").read_text())["shards"] == ["worker-0"]
    assert read_history(tmp_path).writes.num_rows == 0


def test_a_producer_in_two_shards_is_refused():
    whole = read_history(FIXTURE)
    producers = _names(whole, "writes", "producer")
    shards = split_by_producer(whole, [producers, producers])
    with pytest.raises(HistoryError, match="reused"):
        merge_shards(shards)

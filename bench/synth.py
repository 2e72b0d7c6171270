"""The bench's synthetic drill history, generated with numpy so that 10M records take seconds.

Why a numpy generator: the Python-list one (kept for the golden test in
tests/unit/history/synthetic.py) needs minutes and several GB for 4M
records, which kept the growth figures of issue 22 item 5 from being
measured. This one builds the same shape of history column by column: 4
producers over ``keys`` keys in 12 partitions of one topic, a transaction
marker every 50 offsets in the primary and every 64 in the standby, 0.5%
indeterminate sends (half of them stored anyway), a replication lag of
~0.3% at the fault (lost-tail), per partition one interior hole, two
records duplicated by an MM2 restart, one reordered pair of one key and four
copies made after E (late); 20 split-brain acks; group "app" read 99% of the
primary, committed a little before that and resumes 20 records early
(duplicates); group "lagging" resumes near the end (skips); 12 post-fault
records consumed by both groups in the standby (the RTO's end).

String columns are built as dictionaries (codes plus a few distinct values),
the form ``read_history`` gives the checker, so generating costs no per-row
Python objects.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from drills.history import DrillMeta, History, Instants, TopicMapping
from drills.history.model import TABLES

PRIMARY, STANDBY, TOPIC = "east", "west", "orders"
REPLICATED = f"{PRIMARY}.{TOPIC}"
PARTITIONS = 12
PRODUCERS = 4
T_FAULT, T_FENCE = 100.0, 101.0


def _strings(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(values))


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Per row, how many earlier rows share its group value (a cumulative count)."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.diff(sorted_groups, prepend=sorted_groups[:1] - 1))
    run_start = np.repeat(starts, np.diff(np.append(starts, len(groups))))
    rank = np.empty(len(groups), np.int64)
    rank[order] = np.arange(len(groups)) - run_start
    return rank


def _copies(rng: np.random.Generator, written: np.ndarray, key: np.ndarray) -> np.ndarray:
    """What MM2 copied of one partition (write indexes, in standby order) before E."""
    cut = len(written) - len(written) // 300  # replication lag at the fault
    copied = written[:cut]
    hole = rng.integers(len(copied) // 2, len(copied) - 10)  # an interior hole
    copied = np.delete(copied, hole)
    for _ in range(2):  # duplicated by an MM2 restart
        j = int(rng.integers(len(copied)))
        copied = np.insert(copied, j + 1, copied[j])
    while True:  # one reordered pair: two records of one key
        j = int(rng.integers(len(copied) // 2))
        later = np.flatnonzero(key[copied[j + 1 :]] == key[copied[j]])
        if len(later):
            k = j + 1 + int(later[0])
            copied[[j, k]] = copied[[k, j]]
            return copied


def synthesize(records: int, keys: int, seed: int = 7) -> History:
    """A history of ``records`` sends over ``keys`` keys; the same for the same arguments."""
    rng = np.random.default_rng(seed)
    n = records
    i = np.arange(n, dtype=np.int64)
    producer = i % PRODUCERS
    key = rng.integers(0, keys, n)
    partition = key % PARTITIONS
    seq = _rank_within(producer * keys + key)
    send_time = i * ((T_FAULT - 0.5) / n)
    acked = rng.random(n) >= 0.005
    stored = acked | (rng.random(n) < 0.5)
    # Primary offsets: stored records numbered per partition, a marker after every 49.
    position = np.full(n, -1, np.int64)
    position[stored] = _rank_within(partition[stored])
    offset = position + position // 49
    ack_time = np.where(acked, send_time + 0.004, np.nan)
    late_acks = rng.choice(np.arange(max(n - 2000, 0), n), size=min(20, n), replace=False)
    ack_time[late_acks[acked[late_acks]]] = T_FENCE + 0.5  # split-brain

    log_parts: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]] = []  # cluster, topic, ...
    reads_parts, commits, resumes, ends = [], [], [], []
    for p in range(PARTITIONS):
        written = np.flatnonzero(stored & (partition == p))
        log_parts.append((0, 0, np.full(len(written), p), offset[written], written))
        copied = _copies(rng, written, key)
        standby_offset = np.arange(len(copied)) + np.arange(len(copied)) // 63  # markers
        end = int(standby_offset[-1]) + 1 if len(copied) else 0
        ends.append(end)
        cut = len(written) - len(written) // 300
        late = written[cut : cut + 4]  # MM2 stopped late: copies above E
        log_parts.append((1, 1, np.full(len(copied), p), standby_offset, copied))
        log_parts.append((1, 1, np.full(len(late), p), end + np.arange(len(late)), late))
        consumed = written[: len(written) - len(written) // 100]
        reads_parts.append((0, 0, 0, p, offset[consumed], consumed, send_time[consumed] + 0.01))
        committed = int(consumed[-len(consumed) // 200])
        first_copy = np.flatnonzero(copied == committed)
        at = int(standby_offset[first_copy[0]]) if len(first_copy) else 0
        for group in (0, 1):
            commits.append((group, p, int(offset[committed]) + 1))
        resumes.append((0, p, at - 20, "checkpoint"))  # translation lags: duplicates
        resumes.append((1, p, end - 5, "reset"))  # "lagging" was reset near the end: skips

    # Post-fault writes to the standby, consumed by both groups: the RTO's end.
    after = np.arange(n, n + PARTITIONS)
    for p in range(PARTITIONS):
        log_parts.append((1, 0, np.array([p]), np.array([0]), after[p : p + 1]))
        for group in (0, 1):
            reads_parts.append(
                (group, 1, 0, p, np.array([0]), after[p : p + 1], np.array([104.0 + p / 100]))
            )
    w = {
        "producer": np.append(producer, np.full(PARTITIONS, PRODUCERS)),
        "key": np.append(key, np.arange(PARTITIONS)),
        "seq": np.append(seq, np.zeros(PARTITIONS, np.int64)),
        "gseq": np.append(i // PRODUCERS, np.arange(PARTITIONS)),
    }
    producers = [f"p{x}" for x in range(PRODUCERS)] + ["p-after"]
    key_names = [f"key-{x}" for x in range(max(keys, PARTITIONS))]

    def identity(rows: np.ndarray) -> dict:
        return {
            "producer": _strings(w["producer"][rows], producers),
            "key": _strings(w["key"][rows], key_names),
            "seq": pa.array(w["seq"][rows]),
            "gseq": pa.array(w["gseq"][rows]),
        }

    all_rows = np.arange(n + PARTITIONS)
    ones = np.ones(PARTITIONS, bool)
    writes = pa.table(
        {
            **identity(all_rows),
            "send_time": np.append(send_time, np.full(PARTITIONS, 103.0)),
            "cluster": _strings(np.append(np.zeros(n), np.ones(PARTITIONS)), [PRIMARY, STANDBY]),
            "topic": _strings(np.zeros(n + PARTITIONS), [TOPIC]),
            "partition": pa.array(
                np.append(partition, np.arange(PARTITIONS)).astype(np.int32),
                mask=np.append(~acked, ~ones),
            ),
            "offset": pa.array(
                np.append(offset, np.zeros(PARTITIONS, np.int64)),
                mask=np.append(~acked, ~ones),
            ),
            "ack_time": pa.array(
                np.append(ack_time, np.full(PARTITIONS, 103.01)),
                mask=np.append(~acked, ~ones),
            ),
            "error": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n + PARTITIONS, np.int32), mask=np.append(acked, ones)),
                pa.array(["timed out"]),
            ),
        }
    )

    def concat(parts: list, column: int) -> np.ndarray:
        """One column of the parts, each part's scalars repeated to its length (its last column)."""
        return np.concatenate([np.broadcast_to(part[column], len(part[-1])) for part in parts])

    log_rows = concat(log_parts, 4)
    log = pa.table(
        {
            "cluster": _strings(concat(log_parts, 0), [PRIMARY, STANDBY]),
            "topic": _strings(concat(log_parts, 1), [TOPIC, REPLICATED]),
            "partition": pa.array(concat(log_parts, 2).astype(np.int32)),
            "offset": pa.array(concat(log_parts, 3).astype(np.int64)),
            **identity(log_rows),
        }
    )
    read_rows = concat(reads_parts, 5)
    produced = np.append(send_time, np.full(PARTITIONS, 103.0))
    reads = pa.table(
        {
            "group": _strings(concat(reads_parts, 0), ["app", "lagging"]),
            "cluster": _strings(concat(reads_parts, 1), [PRIMARY, STANDBY]),
            "topic": _strings(concat(reads_parts, 2), [TOPIC]),
            "partition": pa.array(concat(reads_parts, 3).astype(np.int32)),
            "offset": pa.array(concat(reads_parts, 4).astype(np.int64)),
            **identity(read_rows),
            "produced_at": pa.array(produced[read_rows]),
            "poll_time": pa.array(concat(reads_parts, 6).astype(np.float64)),
        }
    )
    groups = ["app", "lagging"]
    commit_table = pa.table(
        {
            "group": [groups[g] for g, _, _ in commits],
            "cluster": [PRIMARY] * len(commits),
            "topic": [TOPIC] * len(commits),
            "partition": pa.array([p for _, p, _ in commits], pa.int32()),
            "offset": [o for _, _, o in commits],
            "commit_time": [T_FAULT - 1.0] * len(commits),
        }
    )
    resume_table = pa.table(
        {
            "group": [groups[g] for g, _, _, _ in resumes],
            "cluster": [STANDBY] * len(resumes),
            "topic": [REPLICATED] * len(resumes),
            "partition": pa.array([p for _, p, _, _ in resumes], pa.int32()),
            "position": [at for _, _, at, _ in resumes],
            "source": [source for _, _, _, source in resumes],
        }
    )
    end_offsets = pa.table(
        {
            "cluster": [STANDBY] * PARTITIONS,
            "topic": [REPLICATED] * PARTITIONS,
            "partition": pa.array(range(PARTITIONS), pa.int32()),
            "end_offset": ends,
        },
        schema=TABLES["end_offsets"],
    )
    meta = DrillMeta(
        primary=PRIMARY,
        standby=STANDBY,
        topics=(TOPIC,),
        groups=tuple(groups),
        mapping=TopicMapping(source_alias=PRIMARY),
        instants=Instants(T_FAULT, 100.8, 100.9, T_FENCE, 103.01),
        drill_id="bench",
    )
    return History(
        meta=meta,
        writes=writes,
        reads=reads,
        commits=commit_table,
        log=log,
        end_offsets=end_offsets,
        resumes=resume_table,
    )

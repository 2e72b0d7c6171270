"""A seeded synthetic drill history, rich in every anomaly, for the checker's golden test.

The generator bench/checker.py used before it moved to numpy (kept here so
the golden outputs in ``golden.json.gz`` stay reproducible; one change: the
reordered pair is drawn again until its key recurs, as small histories need): 4
producers over ``keys`` keys in 12 partitions, transaction markers, 0.5%
indeterminate sends, a replication lag at the fault, interior holes,
duplicated and reordered replication, late copies, split-brain acks, and two
groups resuming before and past their commits. Plain Python lists: fine for
the few thousand records a unit test checks.
"""

from __future__ import annotations

import random

import pyarrow as pa

from drills.history import DrillMeta, History, Instants, TopicMapping
from drills.history.model import TABLES

PRIMARY, STANDBY, TOPIC = "east", "west", "orders"
REPLICATED = f"{PRIMARY}.{TOPIC}"
PARTITIONS = 12
T_FAULT, T_FENCE = 100.0, 101.0


def synthesize(records: int, keys: int, seed: int = 7) -> History:
    """A history of ``records`` sends over ``keys`` keys; the same for the same arguments."""
    rng = random.Random(seed)
    producers = [f"p{i}" for i in range(4)]
    w = {name: [] for name in TABLES["writes"].names}
    primary_log: list[list[int]] = [[] for _ in range(PARTITIONS)]  # write indexes by offset
    offsets = [0] * PARTITIONS
    seqs: dict[tuple[int, int], int] = {}
    step = (T_FAULT - 0.5) / records
    for i in range(records):
        p, k = i % 4, rng.randrange(keys)
        partition = k % PARTITIONS
        seq = seqs.get((p, k), 0)
        seqs[(p, k)] = seq + 1
        t = i * step
        acked = rng.random() >= 0.005
        stored = acked or rng.random() < 0.5
        offset = None
        if stored:
            if offsets[partition] % 50 == 49:
                offsets[partition] += 1  # a transaction marker
            offset = offsets[partition]
            offsets[partition] += 1
            primary_log[partition].append(i)
        w["producer"].append(producers[p])
        w["key"].append(f"key-{k}")
        w["seq"].append(seq)
        w["gseq"].append(i // 4)
        w["send_time"].append(t)
        w["cluster"].append(PRIMARY)
        w["topic"].append(TOPIC)
        w["partition"].append(partition if acked else None)
        w["offset"].append(offset if acked else None)
        w["ack_time"].append(t + 0.004 if acked else None)
        w["error"].append(None if acked else "timed out")
        if stored and not acked:
            w["offset"][-1] = None
        w.setdefault("_stored_offset", []).append(offset)
    stored_offset = w.pop("_stored_offset")
    # Split-brain: 20 late acks after the fence.
    for i in rng.sample(range(records - 2000, records), 20):
        if w["ack_time"][i] is not None:
            w["ack_time"][i] = T_FENCE + 0.5

    log = {name: [] for name in TABLES["log"].names}
    ends, late_rows = [], []

    def put(cluster: str, topic: str, partition: int, offset: int, i: int) -> None:
        log["cluster"].append(cluster)
        log["topic"].append(topic)
        log["partition"].append(partition)
        log["offset"].append(offset)
        for name in ("producer", "key", "seq", "gseq"):
            log[name].append(w[name][i])

    standby_of: dict[int, tuple[int, int]] = {}
    for partition, written in enumerate(primary_log):
        for i in written:
            put(PRIMARY, TOPIC, partition, stored_offset[i], i)
        cut = len(written) - len(written) // 300  # replication lag at the fault
        copied = list(written[:cut])
        for _ in range(1):  # an interior hole per partition
            copied.pop(rng.randrange(len(copied) // 2, len(copied) - 10))
        for _ in range(2):  # duplicated by an MM2 restart
            j = rng.randrange(len(copied))
            copied.insert(j + 1, copied[j])
        k = None
        while k is None:  # one reordered pair: two records of one key
            j = rng.randrange(len(copied) // 2)
            later = (
                n for n in range(j + 1, len(copied)) if w["key"][copied[n]] == w["key"][copied[j]]
            )
            k = next(later, None)
        copied[j], copied[k] = copied[k], copied[j]
        offset = 0
        for i in copied:
            if offset % 64 == 63:
                offset += 1
            put(STANDBY, REPLICATED, partition, offset, i)
            standby_of.setdefault(i, (partition, offset))
            offset += 1
        ends.append(offset)
        for i in written[cut : cut + 4]:  # MM2 stopped late: copies above E
            put(STANDBY, REPLICATED, partition, offset, i)
            late_rows.append(i)
            offset += 1

    reads = {name: [] for name in TABLES["reads"].names}
    commits = {name: [] for name in TABLES["commits"].names}
    resumes = {name: [] for name in TABLES["resumes"].names}

    def read(group, cluster, topic, partition, offset, i, poll):
        reads["group"].append(group)
        reads["cluster"].append(cluster)
        reads["topic"].append(topic)
        reads["partition"].append(partition)
        reads["offset"].append(offset)
        for name in ("producer", "key", "seq", "gseq"):
            reads[name].append(w[name][i])
        reads["produced_at"].append(w["send_time"][i])
        reads["poll_time"].append(poll)

    for partition, written in enumerate(primary_log):
        consumed = written[: len(written) - len(written) // 100]
        for i in consumed:
            read("app", PRIMARY, TOPIC, partition, stored_offset[i], i, w["send_time"][i] + 0.01)
        committed = consumed[-len(consumed) // 200]
        for group in ("app", "lagging"):
            commits["group"].append(group)
            commits["cluster"].append(PRIMARY)
            commits["topic"].append(TOPIC)
            commits["partition"].append(partition)
            commits["offset"].append(stored_offset[committed] + 1)
            commits["commit_time"].append(T_FAULT - 1.0)
        resume_at = standby_of.get(committed, (partition, 0))[1] - 20  # translation lags: dups
        skip_at = ends[partition] - 5  # "lagging" was reset to nearly the end: skips
        for group, at in (("app", resume_at), ("lagging", skip_at)):
            resumes["group"].append(group)
            resumes["cluster"].append(STANDBY)
            resumes["topic"].append(REPLICATED)
            resumes["partition"].append(partition)
            resumes["position"].append(at)
            resumes["source"].append("checkpoint" if group == "app" else "reset")
    # Post-fault records consumed in the standby: the RTO's end.
    for partition in range(PARTITIONS):
        i = len(w["seq"])
        w["producer"].append("p-after")
        w["key"].append(f"key-{partition}")
        w["seq"].append(0)
        w["gseq"].append(partition)
        w["send_time"].append(103.0)
        w["cluster"].append(STANDBY)
        w["topic"].append(TOPIC)
        w["partition"].append(partition)
        w["offset"].append(0)
        w["ack_time"].append(103.01)
        w["error"].append(None)
        put(STANDBY, TOPIC, partition, 0, i)
        for group in ("app", "lagging"):
            read(group, STANDBY, TOPIC, partition, 0, i, 104.0 + partition / 100)

    def table(name, columns):
        return pa.Table.from_pydict(columns, schema=TABLES[name])

    end_offsets = pa.Table.from_pydict(
        {
            "cluster": [STANDBY] * PARTITIONS,
            "topic": [REPLICATED] * PARTITIONS,
            "partition": list(range(PARTITIONS)),
            "end_offset": ends,
        },
        schema=TABLES["end_offsets"],
    )
    meta = DrillMeta(
        primary=PRIMARY,
        standby=STANDBY,
        topics=(TOPIC,),
        groups=("app", "lagging"),
        mapping=TopicMapping(source_alias=PRIMARY),
        instants=Instants(T_FAULT, 100.8, 100.9, T_FENCE, 103.01),
        drill_id="bench",
    )
    return History(
        meta=meta,
        writes=table("writes", w),
        reads=table("reads", reads),
        commits=table("commits", commits),
        log=table("log", log),
        end_offsets=end_offsets,
        resumes=table("resumes", resumes),
    )

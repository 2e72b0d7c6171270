"""Benchmark of the history checker: records/s and peak memory over a synthetic drill history.

    .venv/bin/python bench/checker.py [--records 1000000] [--keys 10000] [--runs 3]
    .venv/bin/python bench/checker.py --records 1000000,4000000,10000000   # growth

The history: 4 producers over ``--keys`` keys in 12 partitions of one topic,
transaction markers every 50 offsets in both clusters, 0.5% indeterminate
sends, a replication lag of ~0.3% at the fault (lost-tail), and a realistic
mix of the other anomalies (interior holes, duplicated and reordered
replication, late copies, split-brain acks, one group resuming too far).
One consumer group read the whole primary; it resumes in the standby a little
before its commit (duplicates) and another group resumes past it (skips).

It is generated once per size, written to Parquet, then read back and checked
``--runs`` times, each in a fresh process, so the memory figure is the
checker's alone (peak RSS, and the peak of pyarrow's memory pool). Printed per
size: the median run's wall time (read + check), its CPU time (user + sys,
which other load on the machine inflates far less than wall time), records/s
end to end = produced records / (read + check) wall seconds, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drills.history import (  # noqa: E402
    DrillMeta,
    History,
    Instants,
    TopicMapping,
    check,
    read_history,
    write_history,
)
from drills.history.cases import LOST_TAIL  # noqa: E402
from drills.history.checker import CheckPolicy  # noqa: E402
from drills.history.model import TABLES  # noqa: E402

PRIMARY, STANDBY, TOPIC = "east", "west", "orders"
REPLICATED = f"{PRIMARY}.{TOPIC}"
PARTITIONS = 12
T_FAULT, T_FENCE = 100.0, 101.0


def synthesize(records: int, keys: int, seed: int = 7) -> History:
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
        j = rng.randrange(len(copied) // 2)  # one reordered pair: two records of one key
        k = next(n for n in range(j + 1, len(copied)) if w["key"][copied[n]] == w["key"][copied[j]])
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_kib() -> int:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec,
    so a child of the parent that synthesized the history would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(directory: str, records: int) -> dict:
    cpu0, started = _cpu(), time.perf_counter()
    history = read_history(directory)
    cpu1, loaded = _cpu(), time.perf_counter()
    result = check(history, CheckPolicy(tolerate=frozenset({LOST_TAIL})))
    cpu2, done = _cpu(), time.perf_counter()
    return {
        "records": records,
        "rows": {name: history.stored(name).num_rows for name in TABLES},
        "read_seconds": round(loaded - started, 3),
        "check_seconds": round(done - loaded, 3),
        "seconds": round(done - started, 3),
        "cpu_seconds": round(cpu2 - cpu0, 3),  # user + sys, all threads: what load cannot inflate
        "read_cpu_seconds": round(cpu1 - cpu0, 3),
        "check_cpu_seconds": round(cpu2 - cpu1, 3),
        "records_per_second": round(records / (done - started)),  # end to end: read + check
        "records_per_cpu_second": round(records / (cpu2 - cpu0)),
        "peak_rss_mib": round(_peak_rss_kib() / 1024),
        "peak_arrow_pool_mib": round(pa.default_memory_pool().max_memory() / 2**20),
        "anomalies": {name: len(cases) for name, cases in result.anomalies.items()},
        "rpo_records": result.rpo.records,
        "rto_seconds": result.rto.seconds,
    }


def run(records: int, keys: int, runs: int) -> dict:
    """Synthesize and write one history, then measure it ``runs`` times, each in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_history(synthesize(records, keys), tmp)
        print(
            f"{records} records: synthesized and wrote in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        samples = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", tmp, "--records", str(records)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            samples.append(json.loads(out))
            print(
                "  run: {seconds} s ({read_seconds} read + {check_seconds} check), "
                "cpu {cpu_seconds} s, {records_per_second} records/s, "
                "peak RSS {peak_rss_mib} MiB".format(**samples[-1]),
                file=sys.stderr,
            )
    median = sorted(samples, key=lambda f: f["seconds"])[len(samples) // 2]
    figures = dict(median)
    figures["runs"] = runs
    for name in ("seconds", "cpu_seconds", "peak_rss_mib"):
        figures[f"{name}_all_runs"] = [f[name] for f in samples]
    figures["median_cpu_seconds"] = statistics.median(f["cpu_seconds"] for f in samples)
    figures["bytes_per_record"] = round(median["peak_rss_mib"] * 2**20 / records)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        default="1000000",
        help="records per history; a comma-separated list measures each size (1000000,4000000)",
    )
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="fresh-process measurements per size")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the fresh process
    args = parser.parse_args()
    sizes = [int(n) for n in str(args.records).split(",")]
    if args.measure:
        print(json.dumps(measure(args.measure, sizes[0])))
        return
    results = [run(n, args.keys, args.runs) for n in sizes]
    print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    if len(results) > 1:
        print(f"{'records':>10} {'seconds':>8} {'cpu s':>7} {'records/s':>10} {'peak RSS MiB':>13}")
        for f in results:
            print(
                f"{f['records']:>10} {f['seconds']:>8} {f['cpu_seconds']:>7} "
                f"{f['records_per_second']:>10} {f['peak_rss_mib']:>13}"
            )


if __name__ == "__main__":
    main()

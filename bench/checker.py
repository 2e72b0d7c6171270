"""Benchmark of the history checker: records/s and peak memory over a synthetic drill history.

    .venv/bin/python bench/checker.py [--records 1000000] [--keys 10000] [--runs 3]
    .venv/bin/python bench/checker.py --records 1000000,4000000,10000000   # growth

The history (bench/synth.py, numpy, seconds even at 10M): 4 producers over
``--keys`` keys in 12 partitions of one topic, transaction markers in both
clusters, 0.5% indeterminate sends, a replication lag of ~0.3% at the fault
(lost-tail), and a realistic mix of the other anomalies (interior holes,
duplicated and reordered replication, late copies, split-brain acks, one
group resuming too far). One consumer group read the whole primary; it
resumes in the standby a little before its commit (duplicates) and another
group resumes past it (skips).

It is generated once per size, written to Parquet, then read back and checked
``--runs`` times, each in a fresh process, so the memory figure is the
checker's alone (peak RSS, and the peak of pyarrow's memory pool). Printed per
size: the median run's wall time (read + check), its CPU time (user + sys,
which other load on the machine inflates far less than wall time; split, with
the page faults, since sys is mostly faulting memory in), records/s
end to end = produced records / (read + check) wall seconds, peak RSS, its
bytes per record, and whether it held the stated bound (BOUND_BYTES_PER_RECORD
per record + BOUND_CONSTANT_MIB, over every run); at 1M, whether issue 22's
target was met; and the machine (cores, CPU, load average at start and end).
Each run also prints its result digest (``digest``: sha256 of the full result,
computed after the timing and the peak RSS): an optimisation must leave it unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine  # noqa: E402
from bench.synth import synthesize  # noqa: E402
from drills.history import check, read_history, write_history  # noqa: E402
from drills.history.cases import LOST_TAIL  # noqa: E402
from drills.history.checker import CheckPolicy  # noqa: E402
from drills.history.model import TABLES  # noqa: E402

#: Peak RSS of read + check is bounded by this many bytes per produced record plus a constant
#: (issue 22 item 5; README, "History checker"). Set from the 1M/4M/10M figures with headroom.
BOUND_BYTES_PER_RECORD = 800
BOUND_CONSTANT_MIB = 150
#: Issue 22 item 1 at 1M records: end-to-end records/s and peak RSS.
TARGET_RECORDS_PER_SECOND = 1_000_000
TARGET_PEAK_RSS_MIB = 1024


def bound_mib(records: int) -> float:
    """The stated memory bound for a history of ``records`` produced records, in MiB."""
    return BOUND_BYTES_PER_RECORD * records / 2**20 + BOUND_CONSTANT_MIB


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _usage() -> tuple[float, float, int]:
    """User seconds, system seconds and minor page faults of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


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
    usage0 = _usage()
    cpu0, started = _cpu(), time.perf_counter()
    history = read_history(directory)
    cpu1, loaded = _cpu(), time.perf_counter()
    result = check(history, CheckPolicy(tolerate=frozenset({LOST_TAIL})))
    cpu2, done = _cpu(), time.perf_counter()
    usage2 = _usage()
    peak_rss_kib = _peak_rss_kib()  # before the digest below, which builds every case's dict
    return {
        "records": records,
        "rows": {name: history.stored(name).num_rows for name in TABLES},
        "read_seconds": round(loaded - started, 3),
        "check_seconds": round(done - loaded, 3),
        "seconds": round(done - started, 3),
        "cpu_seconds": round(cpu2 - cpu0, 3),  # user + sys, all threads: what load cannot inflate
        "user_seconds": round(usage2[0] - usage0[0], 3),
        "sys_seconds": round(usage2[1] - usage0[1], 3),  # mostly page faults (allocator.py)
        "page_faults": usage2[2] - usage0[2],
        "read_cpu_seconds": round(cpu1 - cpu0, 3),
        "check_cpu_seconds": round(cpu2 - cpu1, 3),
        "records_per_second": round(records / (done - started)),  # end to end: read + check
        "records_per_cpu_second": round(records / (cpu2 - cpu0)),
        "peak_rss_mib": round(peak_rss_kib / 1024),
        "peak_arrow_pool_mib": round(pa.default_memory_pool().max_memory() / 2**20),
        "anomalies": {name: len(cases) for name, cases in result.anomalies.items()},
        "rpo_records": result.rpo.records,
        "rto_seconds": result.rto.seconds,
        "digest": digest(result),
    }


def digest(result) -> str:
    """sha256 (first 16 hex digits) of the full result, every case included: equal digests
    before and after a change of the checker mean identical results on this history."""
    text = json.dumps(result.to_dict(full=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
                "cpu {cpu_seconds} s ({user_seconds} user + {sys_seconds} sys, "
                "{page_faults} page faults), {records_per_second} records/s, "
                "peak RSS {peak_rss_mib} MiB, result digest {digest}".format(**samples[-1]),
                file=sys.stderr,
            )
    median = sorted(samples, key=lambda f: f["seconds"])[len(samples) // 2]
    figures = dict(median)
    figures["runs"] = runs
    for name in ("seconds", "cpu_seconds", "records_per_second", "peak_rss_mib"):
        figures[f"{name}_all_runs"] = [f[name] for f in samples]
    figures["median_cpu_seconds"] = statistics.median(f["cpu_seconds"] for f in samples)
    figures["best_records_per_second"] = max(f["records_per_second"] for f in samples)
    figures["bytes_per_record"] = round(median["peak_rss_mib"] * 2**20 / records)
    figures["bound_mib"] = round(bound_mib(records))
    figures["bound_held"] = max(f["peak_rss_mib"] for f in samples) <= bound_mib(records)
    figures["digests"] = sorted({f["digest"] for f in samples})  # one: every run agreed
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
    before = machine()
    results = [run(n, args.keys, args.runs) for n in sizes]
    print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    print(f"machine at start: {before}")
    print(f"machine at end:   {machine()}")
    print(
        f"median of {args.runs} runs; memory bound: peak RSS <= {BOUND_BYTES_PER_RECORD} B/record"
        f" + {BOUND_CONSTANT_MIB} MiB"
    )
    print(
        f"{'records':>10} {'seconds':>8} {'read s':>7} {'check s':>8} {'cpu s':>7} {'user':>6} "
        f"{'sys':>6} {'records/s':>10} {'best r/s':>9} {'peak RSS MiB':>13} {'B/record':>9} "
        f"{'bound MiB':>10} {'held':>5}"
    )
    for f in results:
        print(
            f"{f['records']:>10} {f['seconds']:>8} {f['read_seconds']:>7} {f['check_seconds']:>8} "
            f"{f['cpu_seconds']:>7} {f['user_seconds']:>6} {f['sys_seconds']:>6} "
            f"{f['records_per_second']:>10} {f['best_records_per_second']:>9} "
            f"{f['peak_rss_mib']:>13} {f['bytes_per_record']:>9} {f['bound_mib']:>10} "
            f"{'yes' if f['bound_held'] else 'NO':>5}"
        )
    for f in results:
        if f["records"] == 1_000_000:
            fast = f["records_per_second"] >= TARGET_RECORDS_PER_SECOND
            small = f["peak_rss_mib"] <= TARGET_PEAK_RSS_MIB
            print(
                f"1M target (>= {TARGET_RECORDS_PER_SECOND} records/s end to end, peak RSS <= "
                f"{TARGET_PEAK_RSS_MIB} MiB): {'met' if fast and small else 'NOT met'} "
                f"({f['records_per_second']} records/s, {f['peak_rss_mib']} MiB)"
            )


if __name__ == "__main__":
    main()

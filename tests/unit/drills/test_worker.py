"""drills/worker.py without a broker: the control channel, stopping, shards, leftovers.

A real `kdrill worker` process is started; its producer points at an address nothing
listens on, so every send stays unacknowledged (indeterminate): what is tested here is
the channel and the process's life, not Kafka (tests/integration/test_workers.py is)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from components.wait import wait_until
from drills.history import DrillMeta, read_history
from drills.shapes import RateSchedule
from drills.spec import SpecError, parse_spec
from drills.worker import (
    WORKER_ARGV,
    WorkerPool,
    _Outcomes,
    leftovers,
    plan,
    producer_entry,
    reap_leftovers,
)
from drills.workload import Placement, ProducerConfig, clock
from tests.unit.drills.test_spec import raw

TIMEOUTS = {"message_timeout_ms": 1000, "request_timeout_ms": 500,
            "socket_connection_setup_timeout_ms": 1000, "metadata_max_age_ms": 1000}  # fmt: skip
NOWHERE = "127.0.0.1:9"  # the discard port: nothing listens there


def _pool(tmp_path, n=1):
    schedule = RateSchedule(100.0)
    cfg = ProducerConfig(100.0, 4, 64, "all", True, TIMEOUTS, schedule)
    place = Placement("east", NOWHERE, {"t": "t"})
    pool = WorkerPool(n, tmp_path / "history")
    pool.spawn()
    meta = DrillMeta(primary="east", standby="west", topics=("t",))
    pids = [f"p{i}" for i in range(n)]
    pool.start(plan(meta, schedule, "start", clock(), pids, [], []),
               [producer_entry(p, cfg, place, None) for p in pids], [])  # fmt: skip
    return pool


def test_workers_stop_on_request_write_their_shards_and_estimate_their_clocks(tmp_path):
    pool = _pool(tmp_path, 2)
    try:
        wait_until(lambda: all(len(p.offered) > 2 for p in pool.producers), 30,
                   "the workers' offered-rate samples")  # fmt: skip
        assert [p.pid for p in pool.producers] == ["p0", "p1"]
        assert all(p.error is None for p in pool.producers)
        pool.stop(30)
    finally:
        pool.kill()
    facts = pool.facts()
    assert [f["exit_code"] for f in facts] == [0, 0]
    for f, p in zip(facts, pool.producers, strict=True):
        assert f["same_clock"] and f["clock_offset_applied_s"] == 0.0
        assert (
            f["round_trips"] >= 3 and abs(f["clock_offset_s"]) <= f["clock_offset_error_s"] + 0.05
        )
        shard = read_history(tmp_path / "history" / "shards" / f"worker-{f['index']}")
        # nothing listens: every send is in the shard, none acknowledged
        assert shard.writes.num_rows == f["rows"]["writes"] > 0
        assert shard.writes["ack_time"].null_count == shard.writes.num_rows
        assert set(shard.writes["producer"].to_pylist()) == {p.pid}


def test_a_worker_whose_channel_closes_stops_by_itself_and_a_dead_one_is_an_error(tmp_path):
    pool = _pool(tmp_path, 2)
    try:
        lost, killed = pool.handles
        wait_until(lambda: all(len(p.offered) > 2 for p in pool.producers), 30,
                   "the workers running")  # fmt: skip
        lost.chan.close()  # the engine's side goes, no `stop`
        killed.proc.kill()
        lost.proc.wait(20)
        assert lost.proc.returncode == 0
        assert read_history(tmp_path / "history" / "shards" / "worker-0").writes.num_rows > 0
        killed.proc.wait(10)
        assert pool.producers[1].error == f"worker 1 exited with {killed.proc.returncode}"
    finally:
        pool.kill()


def test_outcomes_keep_failures_in_order_and_the_last_success_of_each_run():
    o = _Outcomes()
    for t in (1.0, 2.0, 3.0):
        o.success(t)
    o.failure(4.0, "timed out")
    o.failure(5.0, "timed out")
    o.success(6.0)
    o.success(7.0)
    assert o.take() == [[3.0, None], [4.0, "timed out"], [5.0, "timed out"], [7.0, None]]
    assert o.take() == []


def test_recover_kills_a_worker_whose_drill_is_gone():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    sleeper = "import time; time.sleep(60)"
    orphan = subprocess.Popen([sys.executable, "-c", sleeper, *WORKER_ARGV, "--engine-pid",
                               str(gone.pid)])  # fmt: skip
    kept = subprocess.Popen([sys.executable, "-c", sleeper, *WORKER_ARGV, "--engine-pid",
                             str(os.getpid())])  # fmt: skip
    try:
        wait_until(lambda: orphan.pid in [p for p, _ in leftovers()], 10, "the orphan seen")
        assert kept.pid not in [p for p, _ in leftovers()]  # its drill is alive
        done = reap_leftovers()
        assert f"killed worker {orphan.pid} left by drill process {gone.pid}" in done
        assert orphan.wait(10) == -9
        assert kept.poll() is None
    finally:
        for p in (orphan, kept):
            p.kill()
            p.wait()


def test_workers_are_refused_for_failback_and_dual_write():
    d = raw()
    d["workload"]["workers"] = 2
    assert parse_spec(d).workload.workers == 2
    d["rollback"] = {"rule": "failback"}
    with pytest.raises(SpecError, match="workload.workers: worker processes run"):
        parse_spec(d, "x.yaml")
    d = raw()
    d["workload"]["workers"] = 0
    with pytest.raises(SpecError, match="workload.workers"):
        parse_spec(d, "x.yaml")


ENGINE = """
import sys, time
from pathlib import Path
from components.console import install_signal_handlers
from tests.unit.drills.test_worker import _pool
install_signal_handlers()  # as `kdrill run`: SIGTERM is an interrupt, clean-up runs
pool = None
try:
    pool = _pool(Path(sys.argv[1]), 2)
    print(" ".join(str(h.proc.pid) for h in pool.handles), flush=True)
    while True:
        time.sleep(0.1)
finally:
    if pool is not None:
        pool.stop(10)
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_no_worker_outlives_its_drill_process(tmp_path, sig):
    """SIGTERM: the drill process stops and kills its workers in its clean-up; SIGKILL (no
    clean-up at all): each worker sees its channel break and stops by itself."""
    import signal

    engine = subprocess.Popen([sys.executable, "-c", ENGINE, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd())  # fmt: skip
    try:
        pids = [int(x) for x in engine.stdout.readline().split()]
        assert len(pids) == 2
        engine.send_signal(getattr(signal, sig))
        engine.wait(30)
        wait_until(lambda: not any(os.path.exists(f"/proc/{p}") and _running(p) for p in pids),
                   30, "the workers to end")  # fmt: skip
    finally:
        engine.kill()
        engine.wait()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended (its parent, the test, reaps it or not)

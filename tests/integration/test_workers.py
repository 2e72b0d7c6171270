"""The workload as worker processes (drills/worker.py): real producers in `kdrill worker`
processes against the session pair.

- a worker that loses its control channel stops producing: the engine's side of the
  channel is closed, and the primary's end offsets stop moving while the worker exits
  with its shard written;
- a drill with `workload.workers: 2` gives the same verdict as the suite's default drill
  (one process), with each worker's clock offset in the evidence and no worker left.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from components.local.kafka import end_offsets
from components.wait import wait_until
from drills.history import DrillMeta, read_history
from drills.shapes import RateSchedule
from drills.targets import LocalTarget
from drills.worker import WorkerPool, leftovers, plan, producer_entry
from drills.workload import Placement, ProducerConfig, clock

TIMEOUTS = {"message_timeout_ms": 5000, "request_timeout_ms": 3000,
            "socket_connection_setup_timeout_ms": 3000, "metadata_max_age_ms": 5000}  # fmt: skip


def _total(bootstrap: str, topic: str) -> int:
    return sum(end_offsets(bootstrap, [topic]).values())


def test_a_worker_that_loses_the_channel_stops_producing(pair, tmp_path):
    target = LocalTarget(pair)
    topic = f"w-{uuid.uuid4().hex[:8]}"
    target.create_topics(target.primary, {topic: 1})
    bootstrap = target.bootstrap(target.primary)
    place = Placement(target.primary, bootstrap, {topic: topic})
    schedule = RateSchedule(300.0)
    cfg = ProducerConfig(300.0, 8, 100, "all", True, TIMEOUTS, schedule)
    meta = DrillMeta(primary=target.primary, standby=target.standby, topics=(topic,))
    pool = WorkerPool(1, tmp_path / "history")
    try:
        pool.spawn()
        h = pool.handles[0]
        assert h.same_clock and h.offset == 0.0 and len(h.samples) >= 3
        pool.start(plan(meta, schedule, "start", clock(), ["w-p0"], [bootstrap], ["producer"]),
                   [producer_entry("w-p0", cfg, place, None)], [])  # fmt: skip
        wait_until(lambda: pool.rec.ack_count() > 100, 30, "the worker's first acks")
        assert _total(bootstrap, topic) > 100
        h.chan.close()  # the engine's side of the channel is gone (no `stop` was sent)
        h.proc.wait(TIMEOUTS["message_timeout_ms"] / 1000 + 10)  # it stops on its own
        after = _total(bootstrap, topic)
        t = clock() + 2
        wait_until(lambda: clock() >= t, 3, "2 s to pass")
        assert _total(bootstrap, topic) == after, "the worker kept producing"
        assert after > 100
        shard = read_history(tmp_path / "history" / "shards" / "worker-0")
        # every acknowledged record of the topic is in its shard, none beyond
        assert shard.writes.filter(shard.writes["ack_time"].is_valid()).num_rows == after
    finally:
        pool.kill()
    assert pool.handles[0].proc.poll() is not None


def test_two_workers_give_the_default_drills_verdict(pair, default_drill, tmp_path):
    from drills.runner import run_drill
    from tests.integration.test_drill import spec

    out = run_drill(spec(**{"cost": {"budget_usd": 5.0}, "workload.workers": 2}),
                    LocalTarget(pair), tmp_path / "run")  # fmt: skip
    ev = json.loads((out.run_dir / "evidence.json").read_text())
    one = json.loads((default_drill.run_dir / "evidence.json").read_text())
    assert out.exit_code == default_drill.exit_code, ev["verdict"]
    assert ev["verdict"]["passed"] == one["verdict"]["passed"]
    assert [c["objective"] for c in ev["verdict"]["checks"]] == [
        c["objective"] for c in one["verdict"]["checks"]
    ]
    assert [c["met"] for c in ev["verdict"]["checks"]] == [
        c["met"] for c in one["verdict"]["checks"]
    ]
    workers = ev["workers"]
    assert [w["index"] for w in workers] == [0, 1]
    for w in workers:
        assert w["same_clock"] and w["exit_code"] == 0, w
        assert w["round_trips"] >= 3 and abs(w["clock_offset_s"]) < 0.5, w
        assert w["clock_offset_applied_s"] == 0.0
    assert sorted(c for w in workers for c in w["clients"]) == sorted(
        ["group-analytics", "group-billing", f"producer-{out.record.run_id}-p0"]
    )
    history = Path(out.run_dir) / "history"
    meta = json.loads((history / "meta.json").read_text())
    assert meta["shards"] == ["worker-0", "worker-1", "engine"]
    merged = read_history(history)
    assert merged.writes.num_rows == sum(w["rows"]["writes"] for w in workers)
    assert merged.reads.num_rows == sum(w["rows"]["reads"] for w in workers)
    assert out.record.result.rto.seconds is not None
    assert not [p for p, _ in leftovers()], "a worker outlived its drill"
    assert all(w["exit_code"] is not None for w in workers)

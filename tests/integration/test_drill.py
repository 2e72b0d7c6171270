"""Drills end to end on the real local pair (the session's `pair`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from confluent_kafka import TopicPartition

from components.faults import FaultSpec
from components.local import faults, network
from components.local.faults import kernel
from drills.engine import EXIT_PASS
from drills.hooks import Callbacks
from drills.runner import run_drill
from drills.spec import load_spec
from drills.targets import LocalTarget
from tests.integration.conftest import consumer, wait_for

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "drills" / "scenarios" / "region-loss.yaml"


def on_own_topic(path: Path, **changes):
    """The spec at `path` on a topic of its own, with a few fields changed (dotted paths)."""
    data = load_spec(path).to_dict()
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    data["workload"]["topics"] = [{"name": topic, "partitions": 3}]
    for g in data["workload"]["groups"]:
        g["topics"] = [topic]
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for k in parents:
            node = node[k]
        node[last] = value
    from drills.spec import parse_spec

    return parse_spec(data)


def spec(**changes):
    """The default drill on a topic of its own, with a few fields changed (dotted paths).
    The steady window and the serving window are 5 s instead of 8 and 10 (a thousand records
    each at 200/s is plenty to judge; the suite runs a dozen of these drills)."""
    return on_own_topic(
        DEFAULT, **{"steady_state.duration_s": 5, "cutover.run_after_s": 5, **changes}
    )


def assert_pair_healthy(pair) -> None:
    assert faults.leftovers(pair) == [], "a fault is still applied"
    for r in pair.regions:
        assert kernel.fault_tables(r.namespace) == []
    assert pair.find("mirrormaker2", pair.standby.name) is not None


def test_default_drill_passes_with_consistent_figures(pair, default_drill):
    out = default_drill
    ev = json.loads((out.run_dir / "evidence.json").read_text())
    assert out.exit_code == EXIT_PASS, ev["verdict"]
    assert ev["status"] == "completed" and ev["verdict"]["passed"]
    assert out.record.failover and out.record.serving == pair.standby.name  # failed over

    rto = ev["measurements"]["rto"]
    parts = [rto["detect"], rto["decide"], rto["cutover"], rto["first_consume"]]
    assert None not in parts and rto["seconds"] is not None
    assert sum(parts) == pytest.approx(rto["seconds"], abs=1e-6), "RTO parts do not add up"

    # detection comes from client timeouts: never sooner than message.timeout.ms allows
    timeout = out.record.spec.clients.message_timeout_ms / 1000
    # (a record sent a few ms before T_fault times out that much earlier; 50 ms covers it)
    assert rto["detect"] >= timeout - 0.05, (
        f"detected {rto['detect']:.3f}s after the fault, timeout {timeout}s"
    )

    rpo = ev["measurements"]["rpo"]
    assert rpo["split_brain"] == 0 and rpo["acknowledged"] > 1000
    cont = ev["measurements"]["continuity"]
    assert {c["group"] for c in cont} == {"billing", "analytics"}
    assert all(c["skipped"] == 0 for c in cont)
    assert ev["timeline"]["t_fault"]["monotonic"] < ev["timeline"]["t_cut"]["monotonic"]
    assert (out.run_dir / "history" / "meta.json").exists()
    assert ev["uploaded_to"].startswith("s3://kdrill-west-evidence/")
    steps = [s["phase"] for s in ev["journal"]["steps"]]
    assert steps[:3] == ["preflight", "steady-state", "inject"] and steps[-1] == "teardown"
    assert all(s["status"] == "completed" for s in ev["journal"]["steps"])
    assert_pair_healthy(pair)


@pytest.mark.parametrize("k", [pytest.param(25, marks=pytest.mark.extended), 120])
def test_rpo_equals_a_loss_known_by_construction(pair, tmp_path, k):
    """MM2 paused once its lag is zero, then K more records acknowledged by the primary, then
    region loss: the drill must report RPO = K exactly. K and the standby's contents are
    established here, by this test's own reads of both clusters, not from the engine's ledger."""
    s = spec(
        **{
            "workload.producers": 1,
            "objectives.max_rpo_records": None,
            "objectives.max_rpo_seconds": None,
        }
    )
    topic = s.workload.topics[0].name
    remote = pair.remote_topic(topic)
    seen: dict[str, int] = {}

    def watermarks(bootstrap: str, name: str) -> int:
        c = consumer(bootstrap)
        try:
            parts = c.list_topics(name, timeout=5).topics[name].partitions
            return sum(
                c.get_watermark_offsets(TopicPartition(name, p), timeout=5, cached=False)[1]
                for p in parts
            )
        finally:
            c.close()

    def before(drill) -> None:
        for p in drill.producers:
            p.budget = 0  # stop sending
        wait_for(
            lambda: all(not p.pending for p in drill.producers), 30, "in-flight sends to settle"
        )
        primary_end = watermarks(pair.primary.bootstrap, topic)
        wait_for(
            lambda: watermarks(pair.standby.bootstrap, remote) == primary_end,
            30,
            "MM2 lag to reach zero",
        )
        seen["paused"] = faults.apply(pair, FaultSpec("replication-pause")).id
        drill.producers[0].budget = k
        wait_for(
            lambda: watermarks(pair.primary.bootstrap, topic) == primary_end + k,
            30,
            f"{k} more acks",
        )
        seen["unreplicated"] = watermarks(pair.primary.bootstrap, topic) - watermarks(
            pair.standby.bootstrap, remote
        )

    def after(drill) -> None:
        for p in drill.producers:
            p.budget = None  # resume: these sends meet a lost region (indeterminate, not lost)

    try:
        out = run_drill(s, LocalTarget(pair), tmp_path / "run",
                        Callbacks(before_inject=before, after_inject=after))  # fmt: skip
    finally:
        if "paused" in seen:
            faults.clear(pair, seen["paused"])
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert ev["status"] == "completed", ev["journal"]["steps"][-3:]
    assert seen["unreplicated"] == k, "the construction itself failed"
    assert ev["measurements"]["rpo"]["records"] == k
    assert ev["measurements"]["rpo"]["split_brain"] == 0
    assert out.exit_code in (0, 1)
    assert_pair_healthy(pair)


def run_cli_and_interrupt(pair, tmp_path, when, sig=signal.SIGINT) -> tuple[subprocess.Popen, dict]:
    stack = tmp_path / "Pulumi.kt.yaml"
    stack.write_text(yaml.safe_dump({"config": pair.cfg.raw}))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drills.cli", "run", str(DEFAULT), "--stack", str(stack), "--out", str(out)],
        cwd=REPO, env={**os.environ, "KDRILL_STATE_DIR": str(pair.dir.parent)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def journal() -> dict | None:
        files = list(out.glob("*/journal.json"))
        try:
            return json.loads(files[0].read_text()) if files else None
        except json.JSONDecodeError:
            return None

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        j = journal()
        if j and when(j["steps"]):
            proc.send_signal(sig)
            break
        time.sleep(0.005)
    else:
        proc.kill()
        pytest.fail("the drill never reached the point to interrupt")
    output, _ = proc.communicate(timeout=180)
    return proc, json.loads(next(out.glob("*/evidence.json")).read_text()) | {"_output": output}


def running(phase: str):
    return lambda steps: any(s["phase"] == phase and s["status"] == "running" for s in steps)


@pytest.mark.parametrize(
    "phase,when",
    [
        # the fault applied, detection under way: out of CI's budget (`-m extended`); the
        # cutover variant also interrupts a drill whose region-loss fault is applied
        pytest.param("detect", running("detect"), marks=pytest.mark.extended),
        ("cutover", running("cutover")),
    ],
)
def test_sigint_leaves_no_fault_applied_and_an_interrupted_journal(pair, tmp_path, phase, when):
    proc, ev = run_cli_and_interrupt(pair, tmp_path, when)
    assert proc.returncode == 2, ev["_output"][-2000:]
    j = ev["journal"]
    assert j["status"] == "interrupted"
    interrupted = [s for s in j["steps"] if s["status"] == "interrupted"]
    assert interrupted and interrupted[0]["phase"] == phase, [
        (s["phase"], s["status"]) for s in j["steps"]
    ]
    assert j["steps"][-1]["phase"] == "teardown" and j["steps"][-1]["status"] == "completed"
    assert_pair_healthy(pair)
    assert network.links()  # the pair itself stays up: the drill did not own it


def test_sigterm_during_teardown_waits_for_the_journal_and_the_evidence(pair, tmp_path):
    """SIGTERM while the drill clears its faults (restarting the lost region's brokers):
    clean-up runs to the end, the journal is finished, the evidence written."""
    proc, ev = run_cli_and_interrupt(pair, tmp_path, running("teardown"), signal.SIGTERM)
    assert proc.returncode in (0, 1), ev["_output"][-2000:]
    j = ev["journal"]
    assert j["status"] == "completed" and j["ended"] is not None
    assert j["steps"][-1]["phase"] == "teardown" and j["steps"][-1]["status"] == "completed"
    assert ev["status"] == "completed" and ev["measurements"] is not None
    assert "SIGTERM received during clean-up" in ev["_output"]
    assert_pair_healthy(pair)


def test_blackholed_endpoint_drill_resumes_from_checkpoints(pair, tmp_path):
    """The shipped blackhole scenario: no-acks detection, a decision delay, consumers resumed
    by MM2 checkpoint translation while the old coordinator is unreachable (not refused)."""
    s = load_spec(REPO / "drills" / "scenarios" / "blackhole-endpoint.yaml")
    data = s.to_dict()
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    data["workload"]["topics"] = [{"name": topic, "partitions": 3}]
    for g in data["workload"]["groups"]:
        g["topics"] = [topic]
    from drills.spec import parse_spec

    out = run_drill(parse_spec(data), LocalTarget(pair), tmp_path / "run")
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    m = ev["measurements"]
    assert m["rto"]["seconds"] is not None, m["notes"]
    assert m["rto"]["decide"] >= data["decision"]["delay_s"]
    replicated = [c for c in m["continuity"] if c["role"] == "replicated"]
    assert replicated and all(c["resume_source"] == "checkpoint" for c in replicated)
    assert all(c["skipped"] == 0 for c in m["continuity"])
    assert out.exit_code == EXIT_PASS, ev["verdict"]
    assert_pair_healthy(pair)

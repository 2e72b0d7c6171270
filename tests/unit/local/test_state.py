"""The state file and the process registry, without root: what one kdrill process
records another reads, and the LocalPair facade keeps its public members on it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from components.local import config, processes
from components.local.env import STATE_ROOT, LocalPair, Proc
from components.local.errors import LocalEnvError
from components.local.state import ProcessRegistry

CFG = config.load("local")


def sleeper() -> int:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]).pid


@pytest.fixture
def registry(tmp_path):
    d = tmp_path / CFG.prefix
    d.mkdir()
    r = ProcessRegistry(d, CFG)
    yield r
    processes.kill_all([p.pid for p in r.procs])


def test_what_one_process_records_another_reads(registry):
    registry.procs = [Proc("s3", "east", sleeper(), "/dev/null")]
    registry.write("creating")
    other = ProcessRegistry(registry.dir, CFG)  # as another kdrill process sees it
    assert [p.label for p in other.procs] == ["s3 east"] and other.phase == "creating"

    other.set_policy("identity")  # recorded at once: a record() re-reads the file under its lock
    other.record(Proc("broker", "east", sleeper(), "/dev/null", node=0))
    assert other.phase == "creating", "recording a daemon keeps the phase"
    found = registry.find("broker", "east", 0)  # lookups re-read the file first
    assert found is not None and found.pid == other.procs[-1].pid
    assert registry.policy == "identity"

    state = json.loads(registry.path.read_text())
    assert set(state) == {"phase", "stack", "policy", "config", "processes"}
    assert state["config"] == CFG.raw


def test_record_replaces_a_dead_daemon_of_the_same_label(registry):
    registry.write("up")
    registry.record(Proc("broker", "east", 1, "/dev/null", node=0))
    registry.record(Proc("broker", "east", sleeper(), "/dev/null", node=0))
    assert len(registry.procs) == 1 and registry.running("broker", "east", 0)


def test_kill_forgets_the_daemon_as_recorded_now(registry):
    registry.write("up")
    first = Proc("mirrormaker2", "west", sleeper(), "/dev/null")
    registry.record(first)
    restarted = ProcessRegistry(registry.dir, CFG)  # another process restarted it
    restarted.record(Proc("mirrormaker2", "west", sleeper(), "/dev/null"))
    registry.kill(first)  # the label is what counts: the running one is killed
    assert not processes.alive(restarted.procs[-1].pid)
    assert registry.find("mirrormaker2", "west") is None and registry.phase == "up"
    processes.kill_all([first.pid])


def test_a_dead_daemon_fails_the_wait_with_its_last_log_line(registry, tmp_path):
    log = tmp_path / "broker.log"
    log.write_text("starting\nboom: bad config\n\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    registry.write("creating")
    registry.record(Proc("broker", "east", dead.pid, str(log), node=0))
    with pytest.raises(
        LocalEnvError, match=r"broker east/0 exited while starting: boom: bad config"
    ):
        registry.check_alive()
    log.write_text("java.net.BindException: Address already in use\n")
    with pytest.raises(LocalEnvError, match="a port it needs is taken; stop what holds it"):
        registry.check_alive()


def test_facade_members_read_the_registry(tmp_path):
    pair = LocalPair(CFG, state_root=tmp_path)
    assert pair.state_file == tmp_path / "kd" / "state.json" and not pair.dir.exists()
    assert LocalPair.from_state("kd", tmp_path) is None and not pair.is_up()
    pair.dir.mkdir()
    pair.policy = "identity"
    pair.registry.write("up")
    again = LocalPair.from_state("kd", tmp_path)
    assert again is not None and again.is_up() and again.policy == "identity"
    assert again.remote_topic("orders") == "orders"
    assert pair.remote_topic("orders") == "orders"
    assert pair.region("east") is pair.primary and pair.region("west") is pair.standby
    with pytest.raises(LocalEnvError, match="unknown region 'mars'; this stack has: east, west"):
        pair.region("mars")
    assert pair.replication_proxies() == ["replication-0"]
    assert STATE_ROOT.name  # re-exported for callers that pick the default root


def test_start_broker_records_the_broker_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "start", lambda ns, group, argv, log: sleeper())
    monkeypatch.setattr("components.local.kafka.broker_argv", lambda props, log4j: ["broker"])
    pair = LocalPair(CFG, state_root=tmp_path)
    pair.dir.mkdir()
    pair.registry.write("up")
    try:
        proc = pair.start_broker(pair.primary, 0)
        seen = LocalPair.from_state("kd", tmp_path)
        assert seen is not None and seen.find("broker", "east", 0) == proc
        assert proc.log.endswith("east/broker-0/broker.log")
    finally:
        processes.kill_all([p.pid for p in pair.procs])

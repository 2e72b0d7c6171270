"""Faults as stack state on the real pair and the real Pulumi engine.

A drill's fault is an entry of the stack's drill-time config (in the state dir) applied by a
targeted update of the fault switch (components/local/faultswitch.py); T_fault comes from the
update's outputs. The crash tests SIGKILL (a) the kdrill process while the fault is applied,
(b) the `pulumi` CLI in the middle of the fault's update, (c) the dynamic provider mid-apply;
after `kdrill recover` nothing pair-named is left applied and the stack shows no changes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.faults import FaultSpec
from components.local import cgroups, faults, faultswitch, kernel, processes
from components.local.stack import session_members
from drills.targets import LocalTarget
from tests.integration.conftest import killed_after_applying, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def target(pair):
    t = LocalTarget(pair)
    t.prepare()
    try:
        yield t
    finally:
        t.recover()


def assert_nothing_applied(pair) -> None:
    assert not (pair.dir / "faults.json").exists(), "the old fault ledger file reappeared"
    assert faults.leftovers(pair) == []
    for r in pair.regions:
        assert kernel.tables(r.namespace) == ["kdrill_counters"], f"nft tables left in {r.name}"
        for dev in ("client", "backbone"):
            assert "tbf" not in kernel.qdisc(r.namespace, dev), f"qdisc left on {r.name}/{dev}"
        for suffix in ("c", "b"):
            link = f"{pair.cfg.prefix}-{r.name}-{suffix}"
            assert kernel.link_is_up(link), f"link {link} left down"
        for pid in cgroups.procs(r.cgroup):
            assert processes._state(pid) != "T", f"process {pid} in {r.name} still stopped"
    assert pair.stack.faults() == {}


def assert_stack_clean(pair) -> None:
    st = pair.stack
    p = st.preview(expect_no_changes=True)
    assert p.returncode == 0, f"preview shows changes: {p.stdout[-400:]} {p.stderr[-400:]}"
    r = st.run(["refresh", "--preview-only", "--expect-no-changes", *st._cfg()])
    assert r.returncode == 0, f"refresh shows drift: {r.stdout[-400:]} {r.stderr[-400:]}"
    assert not st.locked(), "the stack is still locked"


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True
    ).stdout


BEFORE = git_status()  # empty in a clean checkout (CI); a developer's own edits are theirs


def git_clean() -> None:
    assert git_status() == BEFORE, f"the work tree changed: {git_status()}"


def test_fault_is_a_stack_update_and_t_fault_its_output(pair, target):
    st = pair.stack
    versions = len(st.history())
    fid, t_fault = target.apply_fault(FaultSpec("partition"))
    try:
        u = target.fault_update(fid)
        assert u["update_started"] < t_fault < u["update_returned"], u
        assert fid in st.faults(), "the fault is an entry of the drill-time config"
        table = kernel.table_name(fid)  # named for the fault's key
        assert all(table in kernel.tables(r.namespace) for r in pair.regions)
        assert u["t_fault"] == t_fault
        assert u["stack_version"] == versions + 1
        assert st.config_file.parent == pair.dir
    finally:
        target.clear_fault(fid)
    assert_nothing_applied(pair)
    assert_stack_clean(pair)
    history = st.history()
    assert len(history) == versions + 2, "apply and clear are each an update in the history"
    git_clean()


def test_fence_stays_direct_and_recover_clears_it(pair, target):
    versions = len(pair.stack.history())
    fid, _ = target.fence(pair.primary.name)
    sid, _ = target.stop_replication()
    assert len(pair.stack.history()) == versions, "the fence is not a stack update"
    assert {fid, sid} <= set(target.open_faults(os.getpid()))
    assert kernel.table_name(fid) in kernel.tables(pair.primary.namespace)
    assert kernel.table_name(fid).startswith("kdrill_direct_"), "direct tables stand apart"
    # a stack update meanwhile leaves the direct faults alone: the fence stays, and
    # replication stays stopped
    key, _ = target.apply_fault(FaultSpec("partition"))
    target.clear_fault(key)
    assert kernel.table_name(fid) in kernel.tables(pair.primary.namespace)
    assert pair.find("mirrormaker2", pair.standby.name) is None
    target.recover()
    assert pair.find("mirrormaker2", pair.standby.name) is not None, "replication restarted"
    assert_nothing_applied(pair)
    assert_stack_clean(pair)


def test_a_stack_update_leaves_direct_faults_alone(pair, target):
    """A direct fault is marked on the pair by a table named for its key: a stack update's
    sweep keeps what it did (here MirrorMaker 2 stopped by SIGSTOP, a region's quota)."""
    paused = faults.apply(pair, FaultSpec("replication-pause"))
    squeezed = faults.apply(pair, FaultSpec("cpu-squeeze", region=pair.standby.name,
                                            params={"cores": 0.5}))  # fmt: skip
    mm2 = pair.find("mirrormaker2", pair.standby.name)
    try:
        key, _ = target.apply_fault(FaultSpec("partition"))
        target.clear_fault(key)
        assert processes._state(mm2.pid) == "T", "the update's sweep continued a direct pause"
        assert cgroups.quota_cores(pair.standby.cgroup) == 0.5
    finally:
        faults.clear(pair, squeezed.id)
        faults.clear(pair, paused.id)
    assert_nothing_applied(pair)


def kdrill_recover(pair, tmp_path) -> subprocess.CompletedProcess:
    stack = tmp_path / f"Pulumi.{pair.cfg.stack}.yaml"
    stack.write_text(yaml.safe_dump({"config": pair.cfg.raw}))
    out = subprocess.run(
        [sys.executable, "-m", "drills.cli", "recover", "--stack", str(stack)],
        cwd=REPO, env={**os.environ, "KDRILL_STATE_DIR": str(pair.dir.parent)},
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out


def kdrill(pair, tmp_path, *args: str) -> subprocess.CompletedProcess:
    stack = tmp_path / f"Pulumi.{pair.cfg.stack}.yaml"
    stack.write_text(yaml.safe_dump({"config": pair.cfg.raw}))
    return subprocess.run(
        [sys.executable, "-m", "drills.cli", "local", *args, "--stack", str(stack)],
        cwd=REPO, env={**os.environ, "KDRILL_STATE_DIR": str(pair.dir.parent)},
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_local_fault_command_is_a_stack_fault(pair, target, tmp_path):
    versions = pair.stack.update_count()
    got = kdrill(pair, tmp_path, "fault", "packet-loss", "--param", "percent=5")
    assert got.returncode == 0, got.stderr
    (key,) = pair.stack.faults()
    assert f"applied {key}" in got.stdout + got.stderr
    assert kernel.table_name(key) in kernel.tables(pair.primary.namespace)
    assert pair.stack.update_count() == versions + 1
    listed = kdrill(pair, tmp_path, "faults")
    assert key in listed.stdout and "yes" in listed.stdout, listed.stdout
    cleared = kdrill(pair, tmp_path, "fault", "--clear", "all")
    assert cleared.returncode == 0, cleared.stderr
    assert f"cleared {key}" in cleared.stdout + cleared.stderr
    assert_nothing_applied(pair)
    assert_stack_clean(pair)


APPLIER = """
import sys, time
from components.faults import FaultSpec
from components.local.env import LocalPair
from drills.targets import LocalTarget
from pathlib import Path
t = LocalTarget(LocalPair.from_state(sys.argv[1], Path(sys.argv[2])))
t.prepare()
t.apply_fault(FaultSpec("region-loss", region=t.primary))
print("applied", flush=True)
time.sleep(600)
"""


def test_crash_a_kdrill_killed_while_the_fault_is_applied(pair, target, tmp_path):
    killed_after_applying(APPLIER, pair)
    assert not kernel.link_is_up(f"{pair.cfg.prefix}-{pair.primary.name}-c"), "still in effect"
    out = kdrill_recover(pair, tmp_path)
    assert "region-loss" in out.stderr
    assert_nothing_applied(pair)
    assert_stack_clean(pair)
    git_clean()


def provider_pids(sid: int) -> list[int]:
    found = []
    for pid in session_members(sid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"pulumi.dynamic" in cmd:
            found.append(pid)
    return found


def applying(pair) -> bool:
    """The provider started acting on region loss: the primary's client link is down."""
    return not kernel.link_is_up(f"{pair.cfg.prefix}-{pair.primary.name}-c")


def start_switch_update(pair, spec: FaultSpec) -> subprocess.Popen:
    st = pair.stack
    st.add_fault("s99", {k: v for k, v in spec.to_dict().items() if v is not None})
    args = ["up", "--yes", "--skip-preview", *st._cfg(), "--target", faultswitch.switch_urn(pair)]
    return st.start(args)


@pytest.mark.parametrize("victim", ["cli", "provider"])
def test_crash_b_c_engine_killed_mid_update(pair, target, tmp_path, victim):
    """(b) SIGKILL of the pulumi CLI, (c) SIGKILL of the dynamic provider, while the switch's
    update is applying region loss (the provider is up: it is applying or about to)."""
    p = start_switch_update(pair, FaultSpec("region-loss", region=pair.primary.name))
    try:
        pids = wait_for(lambda: provider_pids(p.pid), 60, "the dynamic provider to start", 0.01)
        if victim == "provider":  # mid-apply: links going down, processes not yet killed
            wait_for(lambda: applying(pair), 60, "the provider to start applying", 0.002)
        os.kill(p.pid if victim == "cli" else pids[0], signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert pair.stack.recorded_sessions(), "the killed engine session stays recorded"
    out = kdrill_recover(pair, tmp_path)
    assert not session_members(p.pid), "a process of the engine session survived recover"
    assert pair.stack.recorded_sessions() == []
    assert "refreshed" in out.stderr
    assert_nothing_applied(pair)
    assert_stack_clean(pair)
    git_clean()

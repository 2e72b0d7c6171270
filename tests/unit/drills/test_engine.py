"""The engine on a fake target: phase order, teardown on every failure path, budget
refusal, interrupts, signals during clean-up -- no root, no Kafka.

`PaperTarget` keeps a ledger of the faults the engine applied and a log of every call;
`PaperProducer` / `PaperGroup` stand in for the Kafka clients and write the same
Recorder the real ones do (acks from whichever region serves, failures while the
primary is lost). Nothing here imitates Kafka or replication: the target answers end
offsets from a counter and the history check runs on what the stand-ins recorded.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from components import faults as registry
from components.local import config as local_config
from drills.cost.model import inventory_local
from drills.engine import EXIT_NOT_RUN, Drill
from drills.evidence import EvidenceHooks
from drills.hooks import Callbacks, Hooks
from drills.runner import run_drill
from drills.spec import load_spec, parse_spec
from drills.targets import TargetFacts
from drills.workload import Clients, clock

REPO = Path(__file__).resolve().parents[3]
SCENARIO = REPO / "drills" / "scenarios" / "region-loss.yaml"

# The top-level fields of evidence.json before the seams were cut: they must all stay.
EVIDENCE_FIELDS = {
    "schema_version", "drill", "run_id", "status", "exit_code", "verdict", "spec", "timeline",
    "steady_state", "measurements", "anomalies", "capacity", "inter_region_bytes", "approver",
    "cost", "environment", "journal",
}  # fmt: skip


def spec(**changes):
    """The default drill, shortened to fractions of a second."""
    d = load_spec(SCENARIO).to_dict()
    d["steady_state"].update(duration_s=0.3, min_throughput_rps=0)
    d["cutover"]["run_after_s"] = 0.2
    d["clients"].update(message_timeout_ms=500, request_timeout_ms=500)  # the least allowed
    d["detection"]["timeout_s"] = 5
    for path, value in changes.items():
        node = d
        *parents, last = path.split(".")
        for k in parents:
            node = node[k]
        node[last] = value
    return parse_spec(d)


class PaperTarget:
    """A target on paper: answers from counters, applies faults to a dict."""

    primary, standby, policy = "east", "west", "prefixed"

    def __init__(self, fail: dict[str, BaseException] | None = None):
        self.fail = fail or {}  # method name -> exception raised there (after recording a fault)
        self.calls: list[str] = []
        self.faults: dict[str, registry.FaultSpec] = {}  # applied, not cleared
        self.region_lost = threading.Event()
        self.next_id = 0
        self.on_clear = lambda: None

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail and name not in ("apply_fault", "fence"):
            raise self.fail[name]

    def facts(self):
        return TargetFacts("paper", "paper", "east", "west", "prefixed", versions={"kafka": "x"})

    def resolve_fault(self, fault):
        return registry.resolve(fault, regions=["east", "west"], primary="east",
                                standby="west", brokers={"east": 1, "west": 1})  # fmt: skip

    def bootstrap(self, region):
        return f"{region}:9092"

    def remote_topic(self, topic):
        return f"east.{topic}"

    def set_policy(self, policy):
        self._call("set_policy")

    def create_topics(self, region, topics):
        self._call("create_topics")

    def inventory(self, region):
        self._call("inventory")
        return {"topics": {}, "configs": {}, "groups": [], "acls": []}

    def end_offsets(self, region, topics):
        return {(t, 0): 0 for t in topics}

    def checkpoints(self):
        return {}

    def _apply(self, name: str, spec) -> tuple[str, float]:
        self.calls.append(name)
        self.next_id += 1
        fid = f"f{self.next_id}"
        self.faults[fid] = spec  # recorded before acting, as the ledger is
        if name in self.fail:
            raise self.fail[name]
        if spec.kind == "region-loss":
            self.region_lost.set()
        return fid, clock()

    def apply_fault(self, spec):
        return self._apply("apply_fault", spec)

    def fence(self, region):
        return self._apply(
            "fence", registry.FaultSpec("blackhole", region, None, {"endpoint": "kafka"})
        )

    def stop_replication(self):
        return self._apply("stop_replication", registry.FaultSpec("replication-stop"))

    def clear_fault(self, fault_id):
        self.calls.append("clear_fault")
        self.faults.pop(fault_id, None)

    def clear_faults(self, ids, final=False):
        self.calls.append("clear_faults")
        self.on_clear()
        for fid in ids:
            self.faults.pop(fid, None)
        self.region_lost.clear()

    def open_faults(self, pid):
        return list(self.faults)

    def fault_update(self, fid):
        return {}

    def recover(self):
        return []

    def region_out_bytes(self):
        return {"east": 0, "west": 0}

    def cost_inventory(self):
        return inventory_local(local_config.load("local"))

    def upload_evidence(self, run_dir):
        self.calls.append("upload_evidence")
        return f"paper://{run_dir.name}/"


class PaperProducer(threading.Thread):
    """Stands in for InstrumentedProducer: acks from the region it is placed in, delivery
    failures while that region is the lost primary."""

    def __init__(self, pid, cfg, place, rec, det, *, target: PaperTarget, standby=None):
        super().__init__(name=f"paper-{pid}", daemon=True)
        self.pid, self.place, self.rec, self.det, self.target = pid, place, rec, det, target
        self.standby = standby
        self.pending: dict = {}
        self.stop_flag, self.paused = threading.Event(), threading.Event()
        self.budget, self.error, self.gseq = None, None, 0

    def move_to(self, place):
        self.place = place

    def run(self):
        while not self.stop_flag.wait(0.01):
            if self.paused.is_set() or self.budget == 0:
                continue
            self.gseq += 1
            now, region = clock(), self.place.cluster
            if region == "east" and self.target.region_lost.is_set():
                self.rec.unacked.append(
                    (self.pid, "k0", self.gseq, self.gseq, region, "orders", now, "timed out")
                )
                self.det.failure(now, "Local: Message timed out")
            else:
                self.rec.acknowledged(
                    self.pid, "k0", self.gseq, self.gseq, region, "orders", 0, self.gseq, now, now
                )
                self.det.success(now)  # fmt: skip


class PaperGroup(threading.Thread):
    def __init__(self, cfg, place, rec, standby=None):
        super().__init__(name=f"paper-{cfg.name}", daemon=True)
        self.cfg, self.place, self.rec, self.standby = cfg, place, rec, standby
        self.stop_flag, self.error, self.producers = threading.Event(), None, None

    def move_to(self, place, topics, position):
        self.place = place

    def run(self):
        self.stop_flag.wait()


def paper_clients(target: PaperTarget) -> Clients:
    return Clients(
        producer=lambda *a, **kw: PaperProducer(*a, target=target, **kw),
        group=PaperGroup,
        read_log=lambda *a, **k: [],
    )


def drill(the_spec, target, run_dir, *hooks: Hooks) -> tuple[Drill, EvidenceHooks]:
    from drills.cost import CostHooks

    evidence = EvidenceHooks()
    d = Drill(the_spec, target, run_dir, [CostHooks(), evidence, *hooks], paper_clients(target))
    return d, evidence


def phases(run_dir: Path) -> list[tuple[str, str]]:
    j = json.loads((run_dir / "journal.json").read_text())
    return [(s["phase"], s["status"]) for s in j["steps"]]


def test_phases_run_in_order_and_teardown_clears_every_fault(tmp_path):
    target = PaperTarget()
    seen: list[str] = []
    d, ev = drill(spec(), target, tmp_path / "run", Callbacks(phase=lambda p, w: seen.append(p)))
    record = d.run()
    assert record.status == "completed", phases(tmp_path / "run")
    assert [p for p, _ in phases(tmp_path / "run")] == [
        "preflight", "steady-state", "inject", "detect", "decide",
        "cutover", "cutover", "cutover", "cutover", "serve", "verify", "teardown",
    ]  # fmt: skip
    assert seen[-1] == "teardown" and seen[0] == "preflight"
    assert target.faults == {}, "a fault is still applied"
    # the fault, then the fence, then replication stopped; cleared together at the end
    order = [
        c for c in target.calls if c in ("apply_fault", "fence", "stop_replication", "clear_faults")
    ]
    assert order == ["apply_fault", "fence", "stop_replication", "clear_faults"]
    assert target.calls[-1] == "upload_evidence"
    ins = record.instants
    assert ins["t_fault"] < ins["t_detect"] <= ins["t_decide"] <= ins["t_fence"] < ins["t_cut"]
    assert record.serving == "west" and record.failover
    series = record.steady_before["lag_series"]  # the samples behind max_replication_lag_s
    assert series and all(t < ins["t_fault"] and lag >= 0 for t, lag in series)
    assert max(lag for _, lag in series) == pytest.approx(
        record.steady_before["max_replication_lag_s"], abs=1e-3
    )
    doc = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert set(doc) >= EVIDENCE_FIELDS, EVIDENCE_FIELDS - set(doc)
    assert doc["uploaded_to"] == "paper://run/" and doc["status"] == "completed"
    assert doc["spec"]["fault"]["region"] == "east"
    assert doc["environment"]["kafka"] == "x"
    assert doc["cost"]["final"]["total_usd"] > 0 and doc["cost"]["exports"]
    assert record.acknowledged > record.result.rpo.acknowledged > 0  # + the standby's acks
    assert json.loads(json.dumps(ev.document, default=str)) == doc


@pytest.mark.parametrize("warm", [True, False])
def test_only_the_clients_that_move_get_a_warm_standby_client(tmp_path, warm):
    the_spec = spec(**{"workload.producers": 3, "cutover.producers": [0, 2],
                       "cutover.groups": ["analytics"], "cutover.warm_standby": warm})  # fmt: skip
    d, _ = drill(the_spec, PaperTarget(), tmp_path / "run")
    assert d.run().status == "completed", phases(tmp_path / "run")
    standby = [p.standby for p in d.producers] + [g.standby for g in d.groups]
    if not warm:
        assert standby == [None] * 5
        return
    assert [s and (s.cluster, s.bootstrap) for s in standby] == [
        ("west", "west:9092"), None, ("west", "west:9092"),  # producers 0, 1, 2
        None, ("west", "west:9092"),  # billing stays, analytics moves
    ]  # fmt: skip
    moved = json.loads((tmp_path / "run" / "journal.json").read_text())["steps"]
    facts = next(s for s in moved if s["phase"] == "serve")["output"]["moved_clients"]
    assert sorted(facts) == sorted(
        [*(f"paper-{p.pid}" for p in d.producers if p.standby), "paper-analytics"]
    )


def test_a_region_less_fault_gets_the_primary_before_anything_runs(tmp_path):
    target = PaperTarget()
    d, _ = drill(spec(**{"fault.region": None}), target, tmp_path / "run")
    assert d.fault.region == "east" and d.spec.fault.region == "east"
    assert target.calls == []


@pytest.mark.parametrize(
    "where,phase",
    [
        ("create_topics", "preflight"),
        ("apply_fault", "inject"),  # the fault was recorded, then applying it failed
        ("fence", "cutover"),
        ("stop_replication", "cutover"),
    ],
)
def test_every_failure_path_tears_down_and_writes_evidence(tmp_path, where, phase):
    target = PaperTarget(fail={where: RuntimeError(f"{where} broke")})
    said: list[str] = []
    d, _ = drill(spec(), target, tmp_path / "run", Callbacks(info=said.append))
    record = d.run()
    assert record.status == "failed" and record.exit_code == EXIT_NOT_RUN
    steps = phases(tmp_path / "run")
    assert (phase, "failed") in steps
    assert steps[-1] == ("teardown", "completed")
    assert target.faults == {}, f"{where}: a fault was left applied"
    assert any(f"{where} broke" in m for m in said)
    doc = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert doc["status"] == "failed" and doc["journal"]["status"] == "failed"


def test_a_failing_teardown_is_recorded_and_the_evidence_still_lands(tmp_path):
    target = PaperTarget(fail={"clear_faults": RuntimeError("nft gone")})
    target.clear_faults = lambda ids, final=False: (_ for _ in ()).throw(RuntimeError("nft gone"))
    d, _ = drill(spec(), target, tmp_path / "run")
    record = d.run()
    assert record.status == "failed"
    assert phases(tmp_path / "run")[-1] == ("teardown", "failed")
    assert json.loads((tmp_path / "run" / "evidence.json").read_text())["status"] == "failed"


def test_budget_refusal_touches_nothing(tmp_path):
    target = PaperTarget()
    said: list[str] = []
    out = run_drill(spec(**{"cost": {"budget_usd": 0.000001}}), target, tmp_path / "run",
                    Callbacks(info=said.append))  # fmt: skip
    assert out.status == "refused" and out.exit_code == EXIT_NOT_RUN
    assert said[0].startswith("refused: projected cost $")
    mutating = {"create_topics", "set_policy", "apply_fault", "fence", "stop_replication"}
    assert not mutating & set(target.calls), target.calls
    assert out.evidence["cost"]["refused"] is True
    assert phases(tmp_path / "run") == [("teardown", "completed")]


def test_an_interrupt_before_the_fault_lands_is_cleared(tmp_path):
    """KeyboardInterrupt after the ledger write, before the engine learned the id."""
    target = PaperTarget(fail={"apply_fault": KeyboardInterrupt()})
    d, _ = drill(spec(), target, tmp_path / "run")
    record = d.run()
    assert record.status == "interrupted" and record.exit_code == EXIT_NOT_RUN
    assert ("inject", "interrupted") in phases(tmp_path / "run")
    assert target.faults == {}
    assert json.loads((tmp_path / "run" / "journal.json").read_text())["status"] == "interrupted"


def test_an_interrupt_during_detection_clears_the_fault(tmp_path):
    target = PaperTarget()

    def interrupt(drill):
        raise KeyboardInterrupt

    d, _ = drill_with_after(target, tmp_path, interrupt)
    record = d.run()
    assert record.status == "interrupted"
    assert target.faults == {} and "clear_faults" in target.calls


def drill_with_after(target, tmp_path, after):
    return drill(spec(), target, tmp_path / "run", Callbacks(after_inject=after))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_no_signal_cuts_teardown_short(tmp_path, sig):
    """A signal delivered while faults are being cleared waits: the faults are cleared, the
    journal finished and the evidence written; the handler in place before is back after."""
    from components import console

    before = {s: signal.getsignal(s) for s in console.INTERRUPTS}
    console.install_signal_handlers()  # as the CLI does: each signal raises KeyboardInterrupt
    try:
        target = PaperTarget()
        target.on_clear = lambda: os.kill(os.getpid(), sig)
        said: list[str] = []
        d, _ = drill(spec(), target, tmp_path / "run", Callbacks(info=said.append))
        record = d.run()
        time.sleep(0)  # let a pending handler run, if any were still installed
        assert record.status == "completed"
        assert target.faults == {}
        assert phases(tmp_path / "run")[-1] == ("teardown", "completed")
        assert json.loads((tmp_path / "run" / "journal.json").read_text())["status"] == "completed"
        assert (tmp_path / "run" / "evidence.json").exists()
        assert any(signal.Signals(sig).name in m and "clean-up" in m for m in said), said
        assert signal.getsignal(sig) is console._interrupt
    finally:
        console._signals.clear()
        for s, h in before.items():
            signal.signal(s, h)


def test_nothing_detected_means_no_failover(tmp_path):
    """A fault the clients never notice: no decision, no cutover, the primary serves."""
    target = PaperTarget()
    s = spec(**{"fault.kind": "latency", "fault.region": None, "fault.params": {"ms": 100},
                "detection.timeout_s": 0.6})  # fmt: skip
    d, _ = drill(s, target, tmp_path / "run")
    record = d.run()
    assert record.status == "completed", phases(tmp_path / "run")
    names = [p for p, _ in phases(tmp_path / "run")]
    assert "cutover" not in names and "decide" not in names
    assert not record.failover and record.serving == "east"
    assert "fence" not in target.calls and target.faults == {}

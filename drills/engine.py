"""The drill engine: phases from preflight to teardown, each a journal step.

    preflight -> steady state -> inject -> detect -> decide -> cutover -> serve
    -> verify -> (rollback) -> teardown -> evidence

The engine talks to a `Target` (drills/target.py) and to the workload threads
(drills/workload.py); it never reads the fault ledger to learn when the fault
happened: detection comes from what clients see. Every fault the drill applies
(the fault itself, the fence, stopping replication) is cleared in teardown on
every exit path, Ctrl-C included, and the journal then says "interrupted".
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from components.local.faults import FaultSpec
from drills import cost
from drills.history import (
    DUPLICATE,
    LATE,
    LOST_TAIL,
    REORDERED,
    CheckPolicy,
    CheckResult,
    DrillMeta,
    Instants,
    ReplicationPolicy,
    ResumeSource,
    TopicMapping,
    check,
    write_history,
)
from drills.journal import DrillInterrupted, Journal, SteadyStateFailed, StepFailed
from drills.target import Target
from drills.workload import (
    LOG,
    Detector,
    GroupConfig,
    GroupConsumer,
    InstrumentedProducer,
    Placement,
    ProducerConfig,
    Recorder,
    clock,
    decode,
    synced_position,
)

EXIT_PASS, EXIT_MISSED, EXIT_NOT_RUN = 0, 1, 2


@dataclass
class Hooks:
    """Lifecycle callbacks (progress display, reporters); the engine does not know who listens."""

    phase: Callable[[str, str], None] = lambda phase, what: None
    info: Callable[[str], None] = lambda msg: None
    # Around the fault (tests use them to build a drill whose loss is known by construction).
    before_inject: Callable[[Drill], None] = lambda drill: None
    after_inject: Callable[[Drill], None] = lambda drill: None


@dataclass
class DrillOutcome:
    exit_code: int
    status: str
    run_dir: Path
    evidence: dict[str, Any] = field(default_factory=dict)


class Drill:
    def __init__(self, spec, target: Target, run_dir: Path, hooks: Hooks | None = None):
        self.spec, self.target, self.dir = spec, target, run_dir
        self.hooks = hooks or Hooks()
        self.run_id = secrets.token_hex(3)
        self.journal = Journal(drill=spec.name, spec=spec.to_dict(), path=run_dir / "journal.json")
        self.rec = Recorder()
        c = spec.detection
        self.detector = Detector(c.rule, c.threshold, c.window_s)
        self.applied: list[str] = []  # fault ids this drill applied, in order
        self.fault_id: str | None = None
        self.instants: dict[str, float | None] = dict.fromkeys(
            ("t_fault", "t_detect", "t_decide", "t_fence", "t_cut")
        )
        self.producers: list[InstrumentedProducer] = []
        self.groups: list[GroupConsumer] = []
        self.failover = spec.cutover.failover
        self.end_offsets: dict[tuple[str, int], int] = {}
        self.steady: dict[str, Any] = {}
        self.result: CheckResult | None = None
        self.verdict: dict[str, Any] = {}
        self.serving = target.primary
        self.approver: str | None = None
        self.bytes_start = 0
        self.fault_ends: float | None = None
        self.evidence: dict[str, Any] = {}

    # --- the run ---------------------------------------------------------------------

    def run(self) -> DrillOutcome:
        self.dir.mkdir(parents=True, exist_ok=True)
        status, code = "completed", EXIT_NOT_RUN
        try:
            cost.guard(self)  # project the cost; BudgetExceeded over the spec's cost.budget_usd
            self._preflight()
            self._steady_state()
            self._inject()
            self._detect()
            if self.instants["t_detect"] is not None:
                self._decide()
                if self.failover:
                    self._cutover()
                else:
                    self._recover_in_place()
            self._serve()
            self._stop_workload()
            self._verify()
            code = EXIT_PASS if self.verdict["passed"] else EXIT_MISSED
            self.journal.deviated = not self.verdict["passed"]
        except cost.BudgetExceeded as e:
            status = "refused"  # nothing was touched
            self.hooks.info(str(e))
        except SteadyStateFailed:
            status = "aborted"
        except (KeyboardInterrupt, DrillInterrupted):
            status = "interrupted"
        except Exception as e:
            status = "failed"
            self.hooks.info(f"drill failed: {type(e).__name__}: {e}")
        finally:
            with _no_interrupts():  # a second Ctrl-C must not cut teardown short
                for action in (self._stop_workload, self._rollback, self._teardown):
                    try:
                        action()
                    except Exception as e:  # recorded in the journal; the rest still runs
                        self.hooks.info(f"{action.__name__.strip('_')} failed: {e}")
                        status = "failed" if status == "completed" else status
                self.journal.finish(status)
                self._evidence(status, code)
        return DrillOutcome(
            code if status == "completed" else EXIT_NOT_RUN, status, self.dir, self.evidence
        )

    def _step(self, phase: str, name: str, rollback: bool = False):
        self.hooks.phase(phase, name)
        return self.journal.step(phase, name, rollback)

    # --- phases -------------------------------------------------------------------------

    def _preflight(self) -> None:
        t = self.target
        with self._step("preflight", "inventory both regions") as s:
            wanted = {x.name: x.partitions for x in self.spec.workload.topics}
            t.create_topics(t.primary, wanted)
            policy = self.spec.replication.policy
            if policy and policy != t.policy:
                self.hooks.info(f"restarting MirrorMaker 2 under the {policy} policy")
                t.set_policy(policy)
            # Replication must cover the workload's topics before steady state is judged.
            remote = {t.remote_topic(x) for x in wanted}
            self._wait(
                lambda: remote <= {topic for topic, _ in t.end_offsets(t.standby, sorted(remote))},
                60,
                f"MirrorMaker 2 to create {sorted(remote)} in {t.standby}",
            )
            prim, stby = t.inventory(t.primary), t.inventory(t.standby)
            s.output = {
                "primary": prim,
                "standby": stby,
                "diff": parity(prim, stby, t.remote_topic),
            }

    def _workload(self) -> None:
        w, c = self.spec.workload, self.spec.clients
        timeouts = c.model_dump()
        pcfg = ProducerConfig(w.rate, w.keys, w.record_bytes, w.acks, w.idempotence, timeouts)
        place = self._placement(self.target.primary)
        pids = {f"{self.run_id}-p{i}" for i in range(w.producers)}
        self.producers = [
            InstrumentedProducer(pid, pcfg, place, self.rec, self.detector) for pid in sorted(pids)
        ]
        for g in w.groups:
            topics = g.topics or [x.name for x in w.topics]
            cfg = GroupConfig(g.name, f"kdrill-{self.run_id}-{g.name}", topics, g.process_rate,
                              g.commit_interval_ms, c.session_timeout_ms)  # fmt: skip
            consumer = GroupConsumer(cfg, place, self.rec)
            consumer.producers = pids
            self.groups.append(consumer)
        for th in [*self.groups, *self.producers]:
            th.start()

    def _placement(self, region: str) -> Placement:
        names = {x.name: x.name for x in self.spec.workload.topics}
        return Placement(region, self.target.bootstrap(region), names)

    def _steady_state(self) -> None:
        ss = self.spec.steady_state
        with self._step("steady-state", f"workload for {ss.duration_s:g}s within bounds") as s:
            self._workload()
            self._wait(
                lambda: self.rec.acks_between(0, clock() + 1) > 0, 30, "the first acknowledgement"
            )
            self.bytes_start = self.target.bytes_between_regions()
            start = clock()
            lag = self._replication_lag(ss.duration_s)
            acks = self.rec.acks_between(start, clock())
            rps = acks / (clock() - start)
            self.steady = {"throughput_rps": round(rps, 1), "max_replication_lag_s": round(lag, 3),
                           "duration_s": round(clock() - start, 2)}  # fmt: skip
            s.output = dict(self.steady)
            self._check_threads()
            if lag > ss.max_replication_lag_s:
                raise SteadyStateFailed(
                    f"steady_state.max_replication_lag_s: replication lag reached {lag:.1f}s "
                    f"(bound {ss.max_replication_lag_s:g}s); is MirrorMaker 2 running?"
                )
            if rps < ss.min_throughput_rps:
                raise SteadyStateFailed(
                    f"steady_state.min_throughput_rps: {rps:.0f} records/s acknowledged (bound {ss.min_throughput_rps:g})"
                )

    def _replication_lag(self, duration: float) -> float:
        """Max over the window of: how long the standby took to reach the primary's end offsets as
        sampled at each instant. A standby that never catches up counts until the window ends."""
        topics = [x.name for x in self.spec.workload.topics]
        remote = {t: self.target.remote_topic(t) for t in topics}
        samples: list[tuple[float, dict]] = []
        lags: list[float] = []
        end = clock() + duration
        while clock() < end:
            now = clock()
            prim = self.target.end_offsets(self.target.primary, topics)
            stby = self.target.end_offsets(self.target.standby, list(remote.values()))
            samples.append((now, prim))
            for t0, p in list(samples):
                if all(stby.get((remote[t], part), 0) >= off for (t, part), off in p.items()):
                    lags.append(now - t0)
                    samples.remove((t0, p))
            time.sleep(0.25)
        lags += [clock() - t0 for t0, _ in samples]  # never caught up within the window
        return max(lags, default=0.0)

    def _inject(self) -> None:
        f = self.spec.fault
        region = f.region or (self.target.primary if f.kind in ("region-loss", "blackhole", "broker-kill",
                                                                 "broker-pause", "cpu-squeeze") else None)  # fmt: skip
        spec = FaultSpec(f.kind, region, f.link, dict(f.params), f.duration_s)
        with self._step("inject", spec.describe()) as s:
            if f.after_s:
                time.sleep(f.after_s)
            self.hooks.before_inject(self)
            self.detector.arm()  # from here on, client failures count
            self.fault_id, t_fault = self.target.apply_fault(spec)
            self.applied.append(self.fault_id)
            self.hooks.after_inject(self)
            self.instants["t_fault"] = t_fault
            self.fault_ends = t_fault + f.duration_s if f.duration_s else None
            s.output = {"fault_id": self.fault_id, "t_fault": t_fault}

    def _detect(self) -> None:
        d = self.spec.detection
        with self._step("detect", f"rule {d.rule}") as s:
            deadline = clock() + d.timeout_s
            while self.detector.t_detect is None and clock() < deadline:
                self._tick()
                time.sleep(0.02)
            self.instants["t_detect"] = self.detector.t_detect
            s.output = {"t_detect": self.detector.t_detect, "evidence": self.detector.evidence}
            if self.detector.t_detect is None:
                s.output["result"] = f"nothing detected in {d.timeout_s:g}s: no failover"
                self.failover = False
            self.detector.disarm()

    def _tick(self) -> None:
        outstanding = sum(len(p.pending) for p in self.producers)
        self.detector.tick(clock(), outstanding)
        if (
            self.fault_ends is not None
            and clock() >= self.fault_ends
            and self.fault_id in self.applied
        ):
            self.target.clear_fault(self.fault_id)  # a fault with a duration ends on its own
            self.applied.remove(self.fault_id)
        self._check_threads()

    def _decide(self) -> None:
        dec = self.spec.decision
        with self._step("decide", dec.mode) as s:
            if dec.mode == "delay":
                time.sleep(dec.delay_s)
            elif dec.mode == "approval":
                path = Path(dec.approval_file)
                self.hooks.info(
                    f"waiting for approval: create {path} (its content names the approver)"
                )
                self._wait(path.exists, dec.approval_timeout_s, f"approval file {path}")
                self.approver = path.read_text().strip()[:200] or "(empty approval file)"
                s.output["approver"] = self.approver
            self.instants["t_decide"] = clock()
            s.output["t_decide"] = self.instants["t_decide"]

    def _cutover(self) -> None:
        t = self.target
        cut = self.spec.cutover
        moving = (
            self.producers if cut.producers == "all" else [self.producers[i] for i in cut.producers]
        )
        with self._step("cutover", f"fence {t.primary}") as s:
            for p in moving:
                p.paused.set()
            fid, self.instants["t_fence"] = t.fence(t.primary)
            self.applied.append(fid)
            s.output = {"fault_id": fid, "t_fence": self.instants["t_fence"]}
        with self._step("cutover", "stop replication") as s:
            fid, _ = t.stop_replication()
            self.applied.append(fid)
            s.output = {"fault_id": fid}
        topics = [x.name for x in self.spec.workload.topics]
        remote = {x: t.remote_topic(x) for x in topics}
        with self._step("cutover", "snapshot standby end offsets") as s:
            self.end_offsets = t.end_offsets(t.standby, list(remote.values()))
            for (topic, part), off in self.end_offsets.items():
                self.rec.end_offset(cluster=t.standby, topic=topic, partition=part, end_offset=off)
            s.output = {f"{k[0]}[{k[1]}]": v for k, v in self.end_offsets.items()}
        with self._step("cutover", f"move clients to {t.standby} (resume: {cut.resume})") as s:
            t.create_topics(t.standby, {x.name: x.partitions for x in self.spec.workload.topics})
            self.serving = t.standby
            place = self._placement(t.standby)
            position = self._resume_rule(cut.resume)
            for p in moving:
                p.move_to(place)
                p.budget = None
                p.paused.clear()
            moving_groups = (
                self.groups
                if cut.groups == "all"
                else [g for g in self.groups if g.cfg.name in cut.groups]
            )
            for g in moving_groups:
                serving = sorted({n for x in g.cfg.topics for n in (remote[x], x)})
                g.move_to(place, serving, position)
            moved_at = clock()
            self._wait(
                lambda: self.rec.first_ack(t.standby, moved_at) is not None,
                60,
                f"a first ack from {t.standby}",
            )
            self.instants["t_cut"] = self.rec.first_ack(t.standby, moved_at)
            s.output = {"t_cut": self.instants["t_cut"]}

    def _resume_rule(self, mode: str):
        if mode == "synced":
            return synced_position
        if mode == "reset":
            return lambda group_id, consumer, tp: (None, ResumeSource.RESET.value)
        translated = self.target.checkpoints()

        def from_checkpoint(group_id, consumer, tp):
            off = translated.get((group_id, tp.topic, tp.partition))
            return (
                (off, ResumeSource.CHECKPOINT.value)
                if off is not None
                else (None, ResumeSource.RESET.value)
            )

        return from_checkpoint

    def _recover_in_place(self) -> None:
        with self._step("recover", "clear the fault; the primary keeps serving") as s:
            if self.fault_id in self.applied:
                self.target.clear_fault(self.fault_id)
                self.applied.remove(self.fault_id)
            cleared = clock()
            self._wait(lambda: self.rec.first_ack(self.target.primary, cleared) is not None, 120,
                       "a first ack after recovery")  # fmt: skip
            self.instants["t_cut"] = self.rec.first_ack(self.target.primary, cleared)
            s.output = {"t_cut": self.instants["t_cut"]}

    def _serve(self) -> None:
        run = self.spec.cutover.run_after_s
        with self._step("serve", f"workload on {self.serving} for {run:g}s") as s:
            start = clock()
            while clock() - start < run:
                self._tick()
                time.sleep(0.1)
            s.output = {"throughput_rps": round(self.rec.acks_between(start, clock()) / run, 1),
                        "pre_fault_throughput_rps": self.steady.get("throughput_rps")}  # fmt: skip

    def _stop_workload(self) -> None:
        for th in [*self.producers, *self.groups]:
            th.stop_flag.set()
        for th in [*self.producers, *self.groups]:
            if th.is_alive():
                th.join(self.spec.clients.message_timeout_ms / 1000 + 10)

    def _verify(self) -> None:
        with self._step("verify", "read back the serving region and check the history") as s:
            self._read_back()
            ins = Instants(**self.instants)
            meta = DrillMeta(
                primary=self.target.primary,
                standby=self.target.standby,
                topics=tuple(x.name for x in self.spec.workload.topics),
                groups=tuple(g.cfg.name for g in self.groups),
                failover=self.failover,
                mapping=TopicMapping(
                    ReplicationPolicy(self.target.policy), source_alias=self.target.primary
                ),
                instants=ins,
                drill_id=self.run_id,
            )
            history = self.rec.build(meta)
            write_history(history, self.dir / "history")
            self.result = check(
                history, CheckPolicy(tolerate=frozenset({LOST_TAIL, LATE, DUPLICATE}), sample=5)
            )
            self.verdict = judge(self.spec.objectives, self.result)
            s.output = {"verdict": self.verdict}

    def _read_back(self) -> None:
        """Every record of this drill in the serving region's topics, as stored (the log)."""
        region = self.serving
        names = {x.name for x in self.spec.workload.topics}
        topics = sorted(
            {self.target.remote_topic(x) for x in names} | (names if self.failover else set())
        )
        if not self.failover:
            topics = sorted(names)
        ends = {k: v for k, v in self.target.end_offsets(region, topics).items() if v > 0}
        c = Consumer({"bootstrap.servers": self.target.bootstrap(region), "group.id": f"kdrill-{self.run_id}-log",
                      "enable.auto.commit": False}, logger=LOG)  # fmt: skip
        mine = {p.pid for p in self.producers}
        try:
            c.assign([TopicPartition(t, p, 0) for (t, p) in ends])
            left = dict(ends)
            deadline = clock() + 120
            while left and clock() < deadline:
                for m in c.consume(num_messages=1000, timeout=1):
                    if m.error() is not None:
                        continue
                    k = (m.topic(), m.partition())
                    if m.offset() + 1 >= left.get(k, 0):
                        left.pop(k, None)
                    ident = decode(m.value())
                    if ident and ident[0] in mine:
                        pid, key, seq, gseq, _ = ident
                        self.rec.logged(pid, key, seq, gseq, cluster=region, topic=m.topic(),
                                        partition=m.partition(), offset=m.offset())  # fmt: skip
            if left:
                raise StepFailed(f"could not read back {sorted(left)} from {region}")
        finally:
            c.close()

    def _rollback(self) -> None:
        rule = self.spec.rollback.rule
        if rule == "none" or not self.failover or self.instants["t_fence"] is None:
            return
        with self._step("rollback", "failback: restore the primary", rollback=True) as s:
            s.output = {"result": "failback restores the primary by clearing the drill's faults in teardown; "
                        "clients stay on the standby (moving them back is not implemented yet)"}  # fmt: skip

    def _teardown(self) -> None:
        with self._step("teardown", "clear every fault this drill applied") as s:
            mine = self.target.open_faults(os.getpid())
            applied, self.applied = list(dict.fromkeys([*self.applied, *mine])), []
            s.output = {"clearing": applied}
            # raises after trying them all; `kdrill recover` finishes what is left
            self.target.clear_faults(applied, teardown=self.teardown_fast)

    teardown_fast = False  # set when the environment is removed right after: skip restarts

    def _evidence(self, status: str, code: int) -> None:
        from drills.evidence import write_evidence

        self.evidence = write_evidence(self, status, code)

    # --- helpers ----------------------------------------------------------------------

    def _wait(self, cond: Callable[[], object], timeout: float, what: str) -> None:
        deadline = clock() + timeout
        while not cond():
            if clock() > deadline:
                raise StepFailed(f"timed out after {timeout:g}s waiting for {what}")
            self._check_threads()
            time.sleep(0.05)

    def _check_threads(self) -> None:
        for th in [*self.producers, *self.groups]:
            if th.error is not None:
                raise StepFailed(f"{th.name} failed: {th.error}")


def parity(prim: dict, stby: dict, remote: Callable[[str], str]) -> dict[str, Any]:
    """Control-state differences between the regions that a failover would expose."""
    missing, partitions, configs = [], {}, {}
    for topic, n in prim["topics"].items():
        if topic.startswith("mm2-") or topic.endswith(".internal") or topic == "heartbeats":
            continue
        r = remote(topic)
        if r not in stby["topics"]:
            missing.append(topic)
            continue
        if stby["topics"][r] != n:
            partitions[topic] = {"primary": n, "standby": stby["topics"][r]}
        a, b = prim["configs"].get(topic, {}), stby["configs"].get(r, {})
        diff = {
            k: {"primary": a.get(k), "standby": b.get(k)}
            for k in set(a) | set(b)
            if a.get(k) != b.get(k)
        }
        if diff:
            configs[topic] = diff
    groups = sorted(set(prim["groups"]) - set(stby["groups"]))
    return {"topics_missing_in_standby": missing, "partition_mismatch": partitions, "config_mismatch": configs,
            "groups_missing_in_standby": groups}  # fmt: skip


def judge(obj, result: CheckResult) -> dict[str, Any]:
    """Compare the measurements with the spec's objectives: one line per objective."""
    dup = sum(c.duplicates for c in result.continuity)
    skipped = sum(c.skipped for c in result.continuity)
    checks = []

    def add(name: str, value, bound, ok: bool) -> None:
        checks.append({"objective": name, "value": value, "bound": bound, "met": ok})

    rto, rpo = result.rto.seconds, result.rpo
    if obj.max_rto_seconds is not None:
        add(
            "max_rto_seconds",
            rto,
            obj.max_rto_seconds,
            rto is not None and rto <= obj.max_rto_seconds,
        )
    if obj.max_rpo_records is not None:
        add("max_rpo_records", rpo.records, obj.max_rpo_records, rpo.records <= obj.max_rpo_records)
    if obj.max_rpo_seconds is not None:
        secs = rpo.seconds or 0.0
        add("max_rpo_seconds", rpo.seconds, obj.max_rpo_seconds, secs <= obj.max_rpo_seconds)
    if obj.max_duplicates is not None:
        add("max_duplicates", dup, obj.max_duplicates, dup <= obj.max_duplicates)
    add("max_skipped", skipped, obj.max_skipped, skipped <= obj.max_skipped)
    add("max_split_brain_writes", rpo.split_brain, obj.max_split_brain_writes,
        rpo.split_brain <= obj.max_split_brain_writes)  # fmt: skip
    if obj.ordering_per_key:
        n = len(result.anomalies.get(REORDERED, ()))
        add("ordering_per_key", n, 0, n == 0)
    untolerated = [a for a in result.found if a not in result.tolerated]
    add("no untolerated anomalies", untolerated, [], not untolerated)
    return {"passed": all(c["met"] for c in checks), "checks": checks}


@contextmanager
def _no_interrupts():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)

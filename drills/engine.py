"""The drill engine: phases from preflight to teardown, each a journal step.

    preflight -> steady state -> inject -> detect -> decide -> cutover -> serve
    -> (rollback: a failback, drills/failback.py, while the workload runs) -> verify
    -> teardown -> finish

The engine talks to a `Target` (drills/targets/) and to the workload threads
(drills/workload.py), and fills a `RunRecord` (drills/record.py); what is made
of the record -- evidence, cost, the summary -- plugs in through `Hooks`
(drills/hooks.py) and is unknown here. It never reads the fault record (the stack) to learn
when the fault happened: detection comes from what clients see. Every fault the
drill applies (the fault itself, the fence, stopping replication) is cleared in
teardown on every exit path, and no signal cuts that short: SIGINT, SIGTERM and
SIGHUP are held until the journal is finished and the evidence written.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.clientconf import PRODUCER_ROLE, client_config, group_role, settings_for
from components.faults import FaultSpec
from components.wait import wait_until
from drills import activeactive, backup, controlstate, dualwrite, failback, worker
from drills.detection import CANARY_TOPIC, ClientWatch, Detector, Endpoints
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
from drills.history.coverage import COVERAGE_FINDING, coverage_gaps
from drills.history.coverage import finding_detail as coverage_detail
from drills.history.coverage import section as coverage_section
from drills.hooks import HookList, Hooks
from drills.journal import (
    DrillInterrupted,
    DrillRefused,
    Journal,
    SteadyStateFailed,
    StepFailed,
)
from drills.record import RunRecord
from drills.shapes import RateSchedule
from drills.targets.base import Target
from drills.workload import (
    LOG,
    Clients,
    GroupConfig,
    GroupConsumer,
    InstrumentedProducer,
    Placement,
    ProducerConfig,
    Recorder,
    clock,
    synced_position,
)

EXIT_PASS, EXIT_MISSED, EXIT_NOT_RUN = 0, 1, 2
TEARDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# the evidence's capacity.offered_series, one row per second
OFFERED_COLUMNS = ("since_fault_s", "scheduled_rps", "sent_rps", "acked_rps")


@dataclass
class Scheduled:
    """One fault of the drill's timeline: what, when it was due and when it acted. Instants
    are on the drill's monotonic clock; `applied` is the fault's own T (from the target)."""

    index: int
    spec: Any  # drills.spec.TimelineFault
    fault: FaultSpec  # resolved against the target
    fault_id: str | None = None
    due: float | None = None  # t0 + at_s
    started: float | None = None  # when applying began (the stack update's start)
    applied: float | None = None
    clear_due: float | None = None
    cleared: float | None = None
    cleared_by: str | None = None  # "duration" (its own end), "recover" or "teardown"

    def facts(self, t_fault: float | None, update: dict) -> dict[str, Any]:
        def rel(t: float | None) -> float | None:
            return round(t - t_fault, 3) if t is not None and t_fault is not None else None

        out = {
            "index": self.index, "kind": self.fault.kind, "describe": self.fault.describe(),
            "region": self.fault.region, "incident": bool(self.spec.incident),
            "at_s": self.spec.at_s, "duration_s": self.spec.duration_s, "fault_id": self.fault_id,
            "due": self.due, "started": self.started, "applied": self.applied,
            "cleared": self.cleared, "cleared_by": self.cleared_by,
            "late_s": round(self.applied - self.due, 3) if self.applied and self.due else None,
            "applied_since_incident_s": rel(self.applied), "cleared_since_incident_s": rel(self.cleared),
        }  # fmt: skip
        if update:
            out["stack_update"] = update
        return out


class Drill:
    """One run of a drill spec against a target; `run()` fills and returns its record.

    The fault is checked against the target when the drill is made (a bad region
    or parameter raises TargetError before anything exists); the run directory,
    the journal and the record are created up front, as in Chaos Toolkit.
    """

    def __init__(
        self,
        spec,
        target: Target,
        run_dir: Path,
        hooks: Hooks | Iterable[Hooks] = (),
        clients: Clients | None = None,
    ):
        self.spec, self.target, self.dir = spec, target, run_dir
        self.clients = clients or Clients()
        self.hooks = hooks if isinstance(hooks, Hooks) else HookList(hooks)
        # Every fault of the timeline checked against the target before anything exists; the
        # evidence shows the region each one hit (a region-less one acts on the primary).
        resolved = [target.resolve_fault(f.fault_spec()) for f in spec.faults]
        if any(f.region != r.region for f, r in zip(spec.faults, resolved, strict=True)):
            timeline = [f.model_copy(update={"region": r.region})
                        for f, r in zip(spec.faults, resolved, strict=True)]  # fmt: skip
            incident = spec.fault.model_copy(
                update={"region": resolved[spec.incident_index].region}
            )
            spec = spec.model_copy(update={"faults": timeline, "fault": incident})
            self.spec = spec
        self.incident = spec.incident_index
        self.fault = resolved[self.incident]  # the incident: T_fault, RTO and RPO are its
        self.timeline = [
            Scheduled(i, f, r) for i, (f, r) in enumerate(zip(spec.faults, resolved, strict=True))
        ]
        run_id = secrets.token_hex(3)
        self.journal = Journal(drill=spec.name, spec=spec.to_dict(), path=run_dir / "journal.json")
        self.record = RunRecord(run_id, spec, run_dir, self.journal, target.facts())
        self.record.failover = spec.cutover.failover
        self.record.serving = target.primary
        self.rec = Recorder()
        self.detector = Detector(spec.detection)
        self.watch: ClientWatch | None = None  # the probe and lag readers, when a rule needs them
        self.t0: float | None = None  # the timeline's start: the steady-state check
        self.applied: list[str] = []  # fault ids this drill applied, in order
        self.producers: list[InstrumentedProducer] = []
        self.groups: list[GroupConsumer] = []
        self.moved_clients: list[InstrumentedProducer | GroupConsumer] = []
        self.end_offsets: dict[tuple[str, int], int] = {}
        self.failback: failback.FailbackRun | None = None  # set once rollback ran
        self.reverse_on = False  # active-active: reverse replication declared (clean-up: off)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def instants(self) -> dict[str, float | None]:
        return self.record.instants

    # --- the run ---------------------------------------------------------------------

    def run(self) -> RunRecord:
        """Every phase, then -- whatever happened -- rollback, teardown and the finish."""
        self.dir.mkdir(parents=True, exist_ok=True)
        record = self.record
        status, code = "completed", EXIT_NOT_RUN
        try:
            failback.validate(self)  # a failback this target cannot do: refused, untouched
            dualwrite.validate(self)  # a dual-write this target cannot do: refused, untouched
            backup.validate(self)  # a backup-restore this target cannot do: refused, untouched
            activeactive.validate(self)  # likewise an active-active
            self._start()
            self._preflight()
            self._steady_state()
            self._inject()
            self._detect()
            if record.instants["t_detect"] is not None:
                self._decide()
                if record.failover:
                    self._cutover()
                else:
                    self._recover_in_place()
            self._serve()
            self._rollback()  # a failback runs here, while the workload still runs
            self._stop_workload()
            self._verify()
            code = EXIT_PASS if record.verdict["passed"] else EXIT_MISSED
            self.journal.deviated = not record.verdict["passed"]
        except DrillRefused as e:
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
            # No signal cuts clean-up short: SIGINT, SIGTERM and SIGHUP wait until the
            # faults are cleared, the journal is finished and the evidence is written.
            with _signals_deferred() as deferred:
                for action in (self._stop_workload, self._rollback, self._teardown):
                    try:
                        action()
                    except Exception as e:  # recorded in the journal; the rest still runs
                        self.hooks.info(f"{action.__name__.strip('_')} failed: {e}")
                        status = "failed" if status == "completed" else status
                self.journal.finish(status)
                self._finish(status, code)
            if deferred:
                names = ", ".join(signal.Signals(n).name for n in deferred)
                self.hooks.info(f"{names} received during clean-up; it ran to the end first")
        return record

    def _start(self) -> None:
        """Before anything is touched: the counters the cost needs, then the listeners
        (the cost guard may refuse here)."""
        record = self.record
        try:
            record.cost_inventory = self.target.cost_inventory()
        except Exception as e:  # the cost section says so; the drill itself can still run
            record.cost_inventory_error = f"{type(e).__name__}: {_first_line(e)}"
        record.out_bytes_start = self.target.region_out_bytes()
        self.hooks.started(record)

    def _finish(self, status: str, code: int) -> None:
        """Fill the record's last fields, let the listeners write, upload, tell them."""
        record = self.record
        record.status = status
        record.exit_code = code if status == "completed" else EXIT_NOT_RUN
        if record.result is None:  # stopped before verify: the acks are still in the recorder
            record.acknowledged = self.rec.acks_between(0, float("inf"))
        try:
            record.out_bytes_end = self.target.region_out_bytes()
        except Exception as e:
            self.hooks.info(f"inter-region byte counters unreadable: {_first_line(e)}")
        self._notify("finishing")
        try:
            record.uploaded_to = self.target.upload_evidence(self.dir)
        except Exception as e:  # the evidence is on disk either way
            record.upload_error = f"{type(e).__name__}: {_first_line(e)[:200]}"
        self._notify("finished")

    def _notify(self, event: str) -> None:
        try:
            getattr(self.hooks, event)(self.record)
        except Exception as e:  # one listener failing must not stop the evidence
            self.hooks.info(f"{event} hook failed: {type(e).__name__}: {_first_line(e)}")

    def _step(self, phase: str, name: str, rollback: bool = False):
        self.hooks.phase_started(phase, name)
        return self.journal.step(phase, name, rollback)

    # --- phases -------------------------------------------------------------------------

    def _preflight(self) -> None:
        t = self.target
        with self._step("preflight", "inventory both regions") as s:
            wanted = {x.name: x.partitions for x in self.spec.workload.topics}
            policy = self.spec.replication.policy
            if policy and policy != t.policy:
                self.hooks.info(f"restarting MirrorMaker 2 under the {policy} policy")
                t.set_policy(policy)
            # After the policy switch: the grants a new topic gets in the standby follow the
            # name it has there under the policy in force (identity: the topic written after
            # cutover, whose WRITE MirrorMaker 2 never copies).
            t.create_topics(t.primary, wanted)
            # Replication must cover the workload's topics before steady state is judged
            # (dual-write: the application writes the standby's copies, nothing to wait for).
            remote = {t.remote_topic(x) for x in wanted}
            if not dualwrite.active(self.spec):
                self._wait(
                    lambda: (
                        remote <= {topic for topic, _ in t.end_offsets(t.standby, sorted(remote))}
                    ),
                    60,
                    f"MirrorMaker 2 to create {sorted(remote)} in {t.standby}",
                )
            # The topics producers write in the standby after cutover, made ready now (under
            # a prefixed policy they are not the replicas): a topic created at cutover would
            # cost its leader elections inside the RTO.
            t.create_topics(t.standby, {x: n for x, n in wanted.items() if t.remote_topic(x) != x})
            prim, stby = t.inventory(t.primary), t.inventory(t.standby)
            diff = controlstate.parity(
                prim, stby, lambda x: dualwrite.standby_copy(self, x), self._scope()
            )
            s.output = {"primary": prim, "standby": stby, "diff": diff}
            self.control["parity"] = diff
            self._authorize_preflight(s)
        backup.preflight(self)  # backup-restore: the restored topics and the backup sink
        if activeactive.active(self.spec):  # replication the other way too, as a stack part
            activeactive.preflight(self)

    # --- control state (drills/controlstate.py) --------------------------------------

    @property
    def control(self) -> dict[str, Any]:
        """What the verdict judges of the control state: parity (preflight), authorization
        (after cutover)."""
        return self.__dict__.setdefault("_control", {})

    def _group_ids(self) -> dict[str, tuple[str, list[str]]]:
        """Group name -> (its Kafka group id in this run, the workload topics it reads)."""
        names = [x.name for x in self.spec.workload.topics]
        return {g.name: (f"kdrill-{self.run_id}-{g.name}", g.topics or names)
                for g in self.spec.workload.groups}  # fmt: skip

    def _needs(self, region: str) -> list[controlstate.Need]:
        """The workload's needs in `region` (preflight: both regions; after cutover: the
        standby). In the standby a group reads the standby's copy of each topic as the
        pattern makes it (`dualwrite.standby_copy`): MirrorMaker 2's replica, or under
        dual-write the application's own copy, the topic itself -- a dual-write group never
        reads `<source>.<topic>`, which MirrorMaker 2 may not have created yet (the preflight
        does not wait for it under dual-write)."""
        t = self.target
        standby = region == t.standby
        return controlstate.needs([x.name for x in self.spec.workload.topics], self._group_ids(),
                                  lambda x: dualwrite.standby_copy(self, x), standby)  # fmt: skip

    def _scope(self) -> controlstate.Scope:
        t = self.target
        principals = set()
        for n in self._needs(t.primary):
            user = client_config(t.bootstrap(t.primary), principal=n.role).get("sasl.username")
            if user:
                principals.add(f"User:{user}")
        return controlstate.Scope(frozenset(x.name for x in self.spec.workload.topics),
                                  frozenset(principals))  # fmt: skip

    def _authorize_preflight(self, step) -> None:
        """Each workload principal, as the brokers see it, in both regions (the preflight
        step's `authorization`). Denied in the primary, or in the standby for a principal the
        cutover moves there: one line naming what to fix, before anything runs (a standby
        gap found only after cutover is a failover that failed)."""
        t = self.target
        found = {r: [controlstate.authorize(t.bootstrap(r), r, n, logger=LOG)
                     for n in self._needs(r)] for r in (t.primary, t.standby)}  # fmt: skip
        step.output["authorization"] = found
        moving = self._moving_roles() if self.spec.cutover.failover else set()
        first = controlstate.preflight_denial(found[t.primary], found[t.standby], moving,
                                              t.primary, t.standby)  # fmt: skip
        if first:
            raise StepFailed(first)

    def _moving_roles(self) -> set[str]:
        """The client roles the cutover moves to the standby (cutover.producers / groups)."""
        cut = self.spec.cutover
        roles = {PRODUCER_ROLE} if cut.producers == "all" or cut.producers else set()
        names = [g.name for g in self.spec.workload.groups]
        return roles | {group_role(g) for g in (names if cut.groups == "all" else cut.groups)}

    def _authorize_serving(self) -> None:
        """After cutover: each moved principal may still produce or consume in the serving
        region (asked of its brokers; nothing written), recorded as evidence and judged."""
        t = self.target
        if not settings_for(t.bootstrap(t.standby)):
            return  # an open cluster (no credentials registered): no principal to check
        with self._step("cutover", f"authorization check in {t.standby}") as s:
            clients = getattr(self, "moved_clients", [])
            moved = {
                g.cfg.name for g in clients if isinstance(getattr(g, "cfg", None), GroupConfig)
            }
            producers = any(isinstance(getattr(c, "cfg", None), ProducerConfig) for c in clients)
            found = [controlstate.authorize(t.bootstrap(t.standby), t.standby, n, logger=LOG)
                     for n in self._needs(t.standby)
                     if (n.role == PRODUCER_ROLE and producers) or n.role.split(":", 1)[-1] in moved]  # fmt: skip
            s.output = {"checks": found}
            self.control["authorization"] = found

    def _start_schedule(self) -> ProducerConfig:
        """The workload's start (now), its rate schedule and the producers' config, for every
        pattern's workload: the shape is anchored at T_fault once the engine records it, or at
        the workload's start."""
        w, c = self.spec.workload, self.spec.clients
        self.workload_started = started = clock()
        anchor = (
            (lambda: self.instants["t_fault"])
            if w.shape.relative_to == "fault"
            else (lambda: started)
        )
        self.schedule = RateSchedule(w.rate, w.shape.shape(), anchor)
        return ProducerConfig(w.rate, w.keys, w.record_bytes, w.acks, w.idempotence,
                              c.model_dump(), self.schedule)  # fmt: skip

    def _workload(self) -> None:
        if dualwrite.active(self.spec):  # the application writes both regions itself
            return dualwrite.workload(self)
        if activeactive.active(self.spec):  # producers and groups in both regions
            return activeactive.workload(self)
        w, c = self.spec.workload, self.spec.clients
        pcfg = self._start_schedule()
        place = self._placement(self.target.primary)
        pids = {f"{self.run_id}-p{i}" for i in range(w.producers)}
        cut = self.spec.cutover
        # the clients that will move get a warm client to the standby from the start
        standby = (
            self._placement(self.target.standby) if cut.failover and cut.warm_standby else None
        )
        if w.workers > 1:  # the same clients in worker processes, driven through proxies
            return worker.start_pool(self, pcfg, place, standby, sorted(pids))
        self.producers = [
            self.clients.producer(pid, pcfg, place, self.rec, self.detector,
                                  standby=standby if cut.producers == "all" or i in cut.producers else None)
            for i, pid in enumerate(sorted(pids))
        ]  # fmt: skip
        for g in w.groups:
            topics = g.topics or [x.name for x in w.topics]
            cfg = GroupConfig(g.name, f"kdrill-{self.run_id}-{g.name}", topics, g.process_rate,
                              g.commit_interval_ms, c.session_timeout_ms, c.fetch_wait_max_ms)  # fmt: skip
            moves = cut.groups == "all" or g.name in cut.groups
            consumer = self.clients.group(cfg, place, self.rec, standby=standby if moves else None)
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
            self._start_watch()
            self._wait(
                lambda: self.rec.acks_between(0, clock() + 1) > 0, 30, "the first acknowledgement"
            )
            start = clock()
            lag, series = self._replication_lag(ss.duration_s)
            # dual-write: each record is acknowledged twice; active-active: both regions take
            # writes. Count the primary's.
            both = dualwrite.active(self.spec) or activeactive.active(self.spec)
            one = self.target.primary if both else None
            acks = self.rec.acks_between(start, clock(), cluster=one)
            rps = acks / (clock() - start)
            self.record.steady_before = {"throughput_rps": round(rps, 1), "max_replication_lag_s": round(lag, 3),
                                         "duration_s": round(clock() - start, 2)}  # fmt: skip
            s.output = dict(self.record.steady_before)
            self.record.steady_before["lag_series"] = series  # [monotonic instant, lag s]
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

    def _replication_lag(self, duration: float) -> tuple[float, list[list[float]]]:
        """Max over the window of: how long the standby took to reach the primary's end offsets as
        sampled at each instant (a standby that never catches up counts until the window ends),
        and the series itself: [sample instant (monotonic), lag s] per sample, for the report."""
        topics = [x.name for x in self.spec.workload.topics]
        remote = {t: dualwrite.standby_copy(self, t) for t in topics}
        samples: list[tuple[float, dict]] = []
        series: list[list[float]] = []
        end = clock() + duration
        while clock() < end:
            now = clock()
            prim = self.target.end_offsets(self.target.primary, topics)
            stby = self.target.end_offsets(self.target.standby, list(remote.values()))
            samples.append((now, prim))
            for t0, p in list(samples):
                if all(stby.get((remote[t], part), 0) >= off for (t, part), off in p.items()):
                    series.append([round(t0, 4), round(now - t0, 4)])
                    samples.remove((t0, p))
            time.sleep(0.25)
        series += [[round(t0, 4), round(clock() - t0, 4)] for t0, _ in samples]  # never caught up
        series.sort()
        return max((lag for _, lag in series), default=0.0), series

    def _inject(self) -> None:
        """The timeline up to the incident: each earlier fault applied when due (and cleared
        when its duration is over), then the incident, whose instant is T_fault. Faults after
        the incident are applied by `_tick` while the drill detects and serves."""
        inc = self.timeline[self.incident]
        what = inc.fault.describe()
        if len(self.timeline) > 1:
            what = f"timeline of {len(self.timeline)} faults, incident {what}"
        with self._step("inject", what) as s:
            if self.detector.probes:  # a probe that never worked would detect nothing
                self._wait(
                    self.detector.probes_ready, 60, "the detection probe's first round trips"
                )
            self.t0 = clock()
            for item in self.timeline[: self.incident]:
                self._until(self.t0 + item.spec.at_s)
                self._apply(item)
            self._until(self.t0 + inc.spec.at_s)
            self.hooks.before_inject(self)
            self.detector.arm()  # from here on, client failures count
            self._apply(inc)
            t_fault = inc.applied
            # What clients saw before T_fault (e.g. stalls in a stack update's CPU burst, an
            # earlier fault of the timeline) does not count toward detection.
            self.detector.since(t_fault)
            self.record.fault_id = inc.fault_id
            self.hooks.after_inject(self)
            self.instants["t_fault"] = t_fault
            self.record.faults = self._timeline_facts()  # now with times since the incident
            s.output = {"fault_id": inc.fault_id, "t_fault": t_fault}
            if update := self.target.fault_update(inc.fault_id):
                s.output["stack_update"] = update
            if len(self.timeline) > 1:
                s.output["timeline"] = self._timeline_facts()

    def _until(self, t: float) -> None:
        """Wait for a fault's moment on the timeline, clearing faults whose time is up."""
        while (left := t - clock()) > 0:
            self._timeline_due(apply=False)
            time.sleep(min(0.05, left))
        self._timeline_due(apply=False)

    def _apply(self, item: Scheduled) -> None:
        item.due = self.t0 + item.spec.at_s
        item.started = clock()
        # the target records it before it acts (the stack's config): an interrupt still clears it
        item.fault_id, item.applied = self.target.apply_fault(item.fault)
        self.applied.append(item.fault_id)
        if item.spec.duration_s:
            item.clear_due = item.applied + item.spec.duration_s
        self.record.faults = self._timeline_facts()

    def _timeline_due(self, apply: bool = True) -> None:
        """Apply the faults after the incident whose moment has come (in order: one stack
        update at a time), clear those whose duration is over."""
        now = clock()
        for item in self.timeline:
            if item.clear_due is not None and item.cleared is None and now >= item.clear_due:
                if item.fault_id in self.applied:
                    self.target.clear_fault(
                        item.fault_id
                    )  # a fault with a duration ends on its own
                    self.applied.remove(item.fault_id)
                item.cleared, item.cleared_by = clock(), "duration"
                self.record.faults = self._timeline_facts()
        if not apply or self.t0 is None:
            return
        for item in self.timeline[self.incident + 1 :]:
            if item.applied is None and clock() >= self.t0 + item.spec.at_s:
                self._apply(item)

    def _timeline_cleared(self) -> None:
        """After teardown: the timeline's faults it cleared get its end as their instant
        (one call clears them all, in dependency order); one still open keeps none."""
        still = set(self.target.open_faults(os.getpid()))
        now = clock()
        for item in self.timeline:
            if item.fault_id and item.cleared is None and item.fault_id not in still:
                item.cleared, item.cleared_by = now, "teardown"
        self.record.faults = self._timeline_facts()

    def _timeline_facts(self) -> list[dict[str, Any]]:
        return [x.facts(self.instants.get("t_fault"), self.target.fault_update(x.fault_id)
                        if x.fault_id else {}) for x in self.timeline]  # fmt: skip

    def _start_watch(self) -> None:
        """The probe's canaries and the lag readers, when the detection rule needs them:
        started with the workload, so they have worked before the fault (a check that never
        worked does not declare). They get bootstrap addresses and names, nothing else."""
        if not ClientWatch.needed(self.detector):
            return
        t = self.target
        canary = {"primary": CANARY_TOPIC, "standby": CANARY_TOPIC,
                  "replication": t.remote_topic(CANARY_TOPIC)}  # fmt: skip
        checks = {c for p in self.detector.probes for c in p.checks}
        if checks & {"primary", "replication"}:
            t.create_topics(t.primary, {CANARY_TOPIC: 1})
        if "standby" in checks and canary["replication"] != CANARY_TOPIC:
            t.create_topics(t.standby, {CANARY_TOPIC: 1})
        names = [x.name for x in self.spec.workload.topics]
        self.watch = ClientWatch(self.detector, Endpoints(
            primary=t.primary, standby=t.standby,
            bootstrap={r: t.bootstrap(r) for r in (t.primary, t.standby)},
            topics={n: t.remote_topic(n) for n in names},
            groups={g.cfg.name: g.cfg.group_id for g in self.groups},
            canary=canary, run_id=self.run_id,
        ))  # fmt: skip
        self.watch.start()

    def _stop_watch(self) -> None:
        if self.watch is not None:
            self.watch.stop()
            self.record.detection["watch_errors"] = list(self.watch.errors)
            self.watch = None

    def _detect(self) -> None:
        d = self.spec.detection
        with self._step("detect", f"rule {d.rule}") as s:
            try:
                deadline = clock() + d.timeout_s
                while self.detector.t_detect is None and clock() < deadline:
                    self._tick()
                    self.detector.declared.wait(0.02)  # woken the moment a client's report declares
            finally:
                self.detector.disarm()
                self.record.detection.update(self.detector.report())
                self.record.faults = self._timeline_facts()
                self._stop_watch()
            self.instants["t_detect"] = self.detector.t_detect
            s.output = {"t_detect": self.detector.t_detect, "evidence": self.detector.evidence}
            if self.detector.fired is not None:
                s.output["fired"] = self.detector.fired.to_dict()
            if self.detector.t_detect is None:
                s.output["result"] = f"nothing detected in {d.timeout_s:g}s: no failover"
                self.record.failover = False

    def _tick(self) -> None:
        outstanding = sum(len(p.pending) for p in self.producers)
        self.detector.tick(clock(), outstanding)
        self._timeline_due()
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
                self.record.approver = path.read_text().strip()[:200] or "(empty approval file)"
                s.output["approver"] = self.record.approver
            self.instants["t_decide"] = clock()
            s.output["t_decide"] = self.instants["t_decide"]

    def _fence_and_stop_replication(self, moving: list) -> None:
        """A cutover's first two steps wherever clients leave the primary for the standby
        (active-passive, backup-restore): the moving producers paused, the primary fenced
        (T_fence), replication stopped; both recorded as applied, so teardown lifts them."""
        t = self.target
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

    def _cutover(self) -> None:
        if dualwrite.active(self.spec):  # the application's cutover: drop the lost region
            return dualwrite.cutover(self)
        if backup.active(self.spec):  # fence, restore from the bucket, resume by timestamp
            return backup.cutover(self)
        t = self.target
        cut = self.spec.cutover
        moving = (
            self.producers if cut.producers == "all" else [self.producers[i] for i in cut.producers]
        )
        self._fence_and_stop_replication(moving)
        topics = [x.name for x in self.spec.workload.topics]
        remote = {x: t.remote_topic(x) for x in topics}
        with self._step("cutover", "snapshot standby end offsets") as s:
            self.end_offsets = t.end_offsets(t.standby, list(remote.values()))
            for (topic, part), off in self.end_offsets.items():
                self.rec.end_offset(cluster=t.standby, topic=topic, partition=part, end_offset=off)
            s.output = {f"{k[0]}[{k[1]}]": v for k, v in self.end_offsets.items()}

        def positions() -> Callable[[str], Any]:
            rule = self._resume_rule(cut.resume)  # in the move step: checkpoints read there
            return lambda _group: rule

        self._move_clients(moving, remote, cut.resume, positions)
        self._authorize_serving()

    def _move_clients(
        self,
        moving: list,
        replicas: dict[str, str],
        resume: str,
        positions: Callable[[], Callable[[str], Any]],
    ) -> None:
        """A cutover's last step wherever clients leave the primary for the standby
        (active-passive, backup-restore): the `moving` producers (paused by the fence) move
        to the standby and resume; each group the cutover moves reads, in the standby, its
        topics' replicas (`replicas`: topic -> the standby's copy of it) and the topics
        written after cutover, positioned by `positions()(group name)` (`positions` is called
        once, inside the step: the rule's own reads -- checkpoints -- are the step's);
        T_cut = the standby's first ack after the move. `resume` only names the rule."""
        t, cut = self.target, self.spec.cutover
        with self._step("cutover", f"move clients to {t.standby} (resume: {resume})") as s:
            self.record.serving = t.standby
            place = self._placement(t.standby)
            position = positions()
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
                serving = sorted({n for x in g.cfg.topics for n in (replicas[x], x)})
                g.move_to(place, serving, position(g.cfg.name))
            moved_at = clock()
            self._wait(
                lambda: self.rec.first_ack(t.standby, moved_at) is not None,
                60,
                f"a first ack from {t.standby}",
            )
            self.instants["t_cut"] = self.rec.first_ack(t.standby, moved_at)
            s.output = {"t_cut": self.instants["t_cut"]}
        self.moved_clients = [*moving, *moving_groups]  # their switch facts: in the serve step

    def _move_facts(self, clients: list) -> dict[str, dict]:
        """Per moved client: whether it switched to its warm standby client, when that was ready
        (seconds before the fault) and how long its own switch took: where cutover time goes."""
        t_fault = self.instants["t_fault"]
        out = {}
        for th in clients:
            tm = getattr(th, "timings", {})
            facts: dict[str, Any] = {"warm": getattr(th, "moved_warm", None)}
            if "warm_ready" in tm and t_fault is not None:
                facts["warm_ready_before_fault_s"] = round(t_fault - tm["warm_ready"], 3)
            if "move_seen" in tm and "move_ready" in tm:
                facts["switch_s"] = round(tm["move_ready"] - tm["move_seen"], 4)
                for k in ("assigned", "positioned", "first_read_after_move"):  # groups: the rejoin
                    if k in tm:
                        facts[f"{k}_s"] = round(tm[k] - tm["move_ready"], 4)
            out[th.name] = facts
        return out

    def _resume_rule(self, mode: str):
        if mode == "synced":
            return synced_position
        if mode == "reset":
            return lambda group_id, consumer, tps: [(None, ResumeSource.RESET.value)] * len(tps)
        translated = self.target.checkpoints()

        def from_checkpoint(group_id, consumer, tps):
            offs = [translated.get((group_id, tp.topic, tp.partition)) for tp in tps]
            return [
                (off, ResumeSource.CHECKPOINT.value)
                if off is not None
                else (None, ResumeSource.RESET.value)
                for off in offs
            ]

        from_checkpoint.translated = translated  # what a worker process is sent (drills/worker.py)
        return from_checkpoint

    def _recover_in_place(self) -> None:
        if activeactive.active(self.spec):  # the lost region returns, reverse replication too
            return activeactive.recover(self)
        with self._step("recover", "clear the fault; the primary keeps serving") as s:
            fault_id = self.record.fault_id
            if fault_id in self.applied:
                self.target.clear_fault(fault_id)
                self.applied.remove(fault_id)
            cleared = clock()
            inc = self.timeline[self.incident]
            if inc.cleared is None:  # cleared here, not by its duration (nor by teardown)
                inc.cleared, inc.cleared_by = cleared, "recover"
                self.record.faults = self._timeline_facts()
            self._wait(lambda: self.rec.first_ack(self.target.primary, cleared) is not None, 120,
                       "a first ack after recovery")  # fmt: skip
            self.instants["t_cut"] = self.rec.first_ack(self.target.primary, cleared)
            s.output = {"t_cut": self.instants["t_cut"]}

    def _serve(self) -> None:
        run = self.spec.cutover.run_after_s
        with self._step("serve", f"workload on {self.record.serving} for {run:g}s") as s:
            start = clock()
            while clock() - start < run:
                self._tick()
                time.sleep(0.1)
            s.output = self._capacity(start, clock())
            self.record.steady_after = dict(s.output)
            self.record.steady_after["offered_series"] = self._offered_series(clock())
            self.record.steady_after["offered_series_columns"] = list(OFFERED_COLUMNS)
            if self.moved_clients:
                s.output["moved_clients"] = self._move_facts(self.moved_clients)

    def _capacity(self, start: float, end: float) -> dict[str, Any]:
        """What the serving region absorbed over the serve window [start, end]: the records it
        acknowledged (ack time in the window) against the records the workload's shape offered
        in it (the schedule integrated, times the producers writing to that region). The
        drop, 1 - acknowledged / offered (0 when a backlog makes it more), is what
        `objectives.max_throughput_drop` bounds."""
        serving, dur = self.record.serving, max(end - start, 1e-9)
        acked = self.rec.acks_between(start, end, cluster=serving)
        writers = sum(1 for p in self.producers if p.place.cluster == serving)
        offered = self.schedule.offered(start, end) * writers
        t0 = self.instants["t_fault"]
        out: dict[str, Any] = {
            "region": serving,
            "throughput_rps": round(acked / dur, 1),
            "offered_rps": round(offered / dur, 1),
            "pre_fault_throughput_rps": self.record.steady_before.get("throughput_rps"),
            "throughput_drop": round(max(0.0, 1 - acked / offered), 4) if offered > 0 else None,
            "acknowledged": acked,
            "offered": round(offered),
            "window_s": round(dur, 3),
            "window_since_fault_s": None if t0 is None else [round(start - t0, 3), round(end - t0, 3)],
            "shape": self.schedule.shape.describe(),
            "shape_relative_to": self.spec.workload.shape.relative_to,
        }  # fmt: skip
        return out

    def _offered_series(self, end: float, step: float = 1.0) -> list[list[float | None]]:
        """The offered rate over time, per `step` seconds from the workload's start to `end`:
        [seconds since T_fault (since the start when no fault), records/s the shape scheduled
        (all producers), records/s the producers sent, records/s acknowledged (any region)]."""
        t0 = self.instants["t_fault"]
        origin = self.workload_started if t0 is None else t0
        n = int((end - self.workload_started) // step)  # whole buckets only
        edges = [self.workload_started + k * step for k in range(n + 1)]
        acked = sorted(self.rec.ack_times())
        samples = [getattr(p, "offered", [])[:] for p in self.producers]

        def sent_by(at: float) -> float:  # records sent by `at`, all producers (interpolated)
            total = 0.0
            for ss in samples:
                k = bisect.bisect_right(ss, (at, float("inf")))
                if k == 0:
                    continue
                (t1, n1), (t2, n2) = ss[k - 1], ss[k] if k < len(ss) else ss[k - 1]
                total += n1 + (n2 - n1) * (at - t1) / (t2 - t1) if t2 > t1 else n1
            return total

        series: list[list[float | None]] = []
        for a, b in itertools.pairwise(edges):
            dt = b - a
            if dt <= 0:
                continue
            scheduled = self.schedule.offered(a, b) * len(self.producers) / dt
            sent = (sent_by(b) - sent_by(a)) / dt if any(samples) else None
            n_acked = bisect.bisect_left(acked, b) - bisect.bisect_left(acked, a)
            series.append([round(a - origin, 3), round(scheduled, 1),
                           None if sent is None else round(sent, 1), round(n_acked / dt, 1)])  # fmt: skip
        return series

    def _stop_workload(self) -> None:
        self._stop_watch()
        for th in [*self.producers, *self.groups]:
            th.stop_flag.set()
        for th in [*self.producers, *self.groups]:
            if th.is_alive():
                th.join(self.spec.clients.message_timeout_ms / 1000 + 10)

    def _verify(self) -> None:
        if dualwrite.active(self.spec):  # both regions' logs, the dual-write checker
            return dualwrite.verify(self, judge)
        if backup.active(self.spec):  # the restored topics, read back and checked
            return backup.verify(self, judge)
        if activeactive.active(self.spec):  # both flows caught up, four topics, its checker
            return activeactive.verify(self, judge)
        with self._step("verify", "read back the serving region and check the history") as s:
            self._read_back()
            ins = Instants(**self.instants)
            meta = DrillMeta(
                primary=self.target.primary,
                standby=self.target.standby,
                topics=tuple(x.name for x in self.spec.workload.topics),
                groups=tuple(g.cfg.name for g in self.groups),
                failover=self.record.failover,
                mapping=TopicMapping(
                    ReplicationPolicy(self.target.policy), source_alias=self.target.primary
                ),
                instants=ins,
                drill_id=self.run_id,
            )
            self.record.acknowledged = self.rec.acks_between(0, float("inf"))  # build() drains them
            history = failback.failover_part(self, self.rec.build(meta))  # without a failback
            if not getattr(self.rec, "sharded", False):  # workers: build() wrote the shards
                write_history(history, self.dir / "history")
            result = check(
                history, CheckPolicy(tolerate=frozenset({LOST_TAIL, LATE, DUPLICATE}), sample=5)
            )
            self.record.result = result
            self.record.verdict = judge(
                self.spec.objectives, result, self.record.steady_after, self.control
            )
            gaps = coverage_gaps(history)  # partitions MirrorMaker 2 never replicated
            self.record.sections["coverage"] = coverage_section(gaps)
            if gaps:
                self.record.verdict.setdefault("findings", []).append(
                    {"kind": COVERAGE_FINDING, "objective": "max_rpo_records",
                     "detail": coverage_detail(gaps, self.target.primary, self.target.standby)}
                )  # fmt: skip
            for f in self.record.verdict.get("findings", ()):  # the capacity section says so too
                if f["kind"] == CAPACITY_FINDING and self.record.steady_after is not None:
                    self.record.steady_after["finding"] = f["detail"]
            failback.verify(self)  # the failback window, when there was one
            s.output = {"verdict": self.record.verdict}

    def _read_back(self) -> None:
        """Every record of this drill in the serving region's topics, as stored (the log)."""
        region, failover = self.record.serving, self.record.failover
        names = {x.name for x in self.spec.workload.topics}
        topics = sorted(
            {self.target.remote_topic(x) for x in names} | (names if failover else set())
        )
        if not failover:
            topics = sorted(names)
        ends = self.target.end_offsets(region, topics)
        mine = {p.pid for p in self.producers}
        left = self.clients.read_log(self.target.bootstrap(region), ends, mine, self.rec, region,
                                     f"kdrill-{self.run_id}-log")  # fmt: skip
        if left:
            raise StepFailed(f"could not read back {left} from {region}")

    def _rollback(self) -> None:
        """rollback.rule failback (drills/failback.py): called once from `run` while the
        workload runs (back to the old primary, measured), and again in clean-up, where it
        only makes sure reverse replication is off (a failback never reached says so).
        A backup-restore drill's sink part is removed here too, if still declared."""
        backup.clean_up(self)
        if not failback.wanted(self):
            return
        if self.failback is None:
            self.failback = failback.switch_back(self)
        else:
            failback.clean_up(self, self.failback)

    def _teardown(self) -> None:
        try:
            activeactive.clean_up(self)  # reverse replication off, whatever happened
        finally:
            try:
                self._clear_applied()
            finally:  # once the region is back: the pair's own MirrorMaker 2 restarted
                activeactive.restart_forward(self)

    def _clear_applied(self) -> None:
        with self._step("teardown", "clear every fault this drill applied") as s:
            mine = self.target.open_faults(os.getpid())
            applied, self.applied = list(dict.fromkeys([*self.applied, *mine])), []
            s.output = {"clearing": applied}
            # raises after trying them all; `kdrill recover` finishes what is left
            try:
                self.target.clear_faults(applied, final=True)
            finally:
                self._timeline_cleared()

    # --- helpers ----------------------------------------------------------------------

    def _wait(self, cond: Callable[[], object], timeout: float, what: str) -> None:
        wait_until(cond, timeout, what, check=self._check_threads, error=StepFailed)

    def _check_threads(self) -> None:
        for th in [*self.producers, *self.groups]:
            if th.error is not None:
                raise StepFailed(f"{th.name} failed: {th.error}")


def parity(prim: dict, stby: dict, remote: Callable[[str], str]) -> dict[str, Any]:
    """Control-state differences between the regions (drills/controlstate.py)."""
    return controlstate.parity(prim, stby, remote)


def judge(
    obj, result: CheckResult, capacity: dict[str, Any] | None = None, control: dict | None = None
) -> dict[str, Any]:
    """Compare the measurements with the spec's objectives: one line per objective.

    `capacity` is what the serve phase measured (`Drill._capacity`); a missed
    `max_throughput_drop` adds a `standby-capacity` finding to `findings`, saying what
    the serving region absorbed of what was offered. `control`: the control state the
    drill recorded (parity, authorization after cutover)."""
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
    findings: list[dict[str, str]] = []
    bound = getattr(obj, "max_throughput_drop", None)  # objectives made before it existed
    if bound is not None:
        cap = capacity or {}
        drop = cap.get("throughput_drop")
        ok = drop is not None and drop <= bound
        add("max_throughput_drop", drop, bound, ok)
        if not ok:
            findings.append({"kind": CAPACITY_FINDING, "objective": "max_throughput_drop",
                             "detail": capacity_finding(cap, bound)})  # fmt: skip
    untolerated = [a for a in result.found if a not in result.tolerated]
    add("no untolerated anomalies", untolerated, [], not untolerated)
    checks += controlstate.checks(obj, control)
    verdict: dict[str, Any] = {"passed": all(c["met"] for c in checks), "checks": checks}
    if findings:
        verdict["findings"] = findings
    return verdict


CAPACITY_FINDING = "standby-capacity"


def capacity_finding(cap: dict[str, Any], bound: float) -> str:
    """One line: what the serving region absorbed of the offered load, against the bound."""
    if cap.get("throughput_drop") is None:
        return "serving throughput not measured (the drill offered no load to a serving region)"
    region = cap.get("region") or "the serving region"
    return (
        f"{region} cannot absorb the offered load ({cap.get('shape', 'steady')}): it acknowledged "
        f"{cap['throughput_rps']:g} of {cap['offered_rps']:g} records/s offered after cutover, "
        f"a drop of {cap['throughput_drop']:.1%} (bound {bound:.1%})"
    )


@contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT, SIGTERM and SIGHUP while clean-up runs; yields the signals that came.

    Only the main thread can set handlers; elsewhere (a drill run in a worker
    thread) clean-up runs as it is."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {sig: signal.signal(sig, lambda n, _frame: got.append(n)) for sig in TEARDOWN_SIGNALS}
    try:
        yield got
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0][:300] if str(e) else ""


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)

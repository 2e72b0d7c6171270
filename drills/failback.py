"""Failback as a drill: back to the old primary while the workload runs, measured like the failover.

`switch_back(drill)` runs from the engine's `_rollback` (rollback.rule: failback) after the
cutover and `rollback.window_s` of serving on the standby, each step a rollback step of the
journal:

    wait out the window
    -> bring the old primary back: clear the incident fault and its fence through the target
    -> rebuild (rollback.rebuild): delete and recreate the old primary's workload topics and
       the reverse copies, so reverse replication fills them from the standby alone
    -> reverse replication on: the stack's reverse MirrorMaker 2 part (standby -> old primary)
    -> zero lag (rollback.require_zero_lag, bounded by rollback.lag_timeout_s)
    -> switch: pause the producers (T_fault of the failback), let the standby's last acks
       come back, zero lag again, fence the standby (T_fence), snapshot the old primary's
       end offsets (E), move producers and groups back (T_cut: the first ack there)
    -> reverse replication off; the standby's fence lifted (the read-back reads it; no
       producer writes there any more, and an ack after T_fence still counts as split-brain)
    -> serve on the old primary until every group consumed there, then rollback.run_after_s

`verify(drill)` runs inside the engine's verify step: it reads the old primary back and
checks the failback window with the same checker (drills/history/window.py swaps the roles:
the standby is the primary the old primary must hold every acknowledged record of), so
failback RTO, RPO, continuity and split-brain have the failover's definitions; then it lists
the *resurrected* records. `failover_part` gives the engine the failover window of the
history, so the failover's figures ignore what happened after the switch back.

What consumers read after the failback (the old primary's topics, per workload topic `t`,
standby `S`):
- prefixed, no rebuild: `S.t` (what the standby took, copied back) and `t`, where the
  producers write again; the groups resume `t` from the offsets they committed there before
  the fault, so they read the old primary's lost tail again: *resurrected* records.
- prefixed, rebuild: `S.t` and `t`; `t` was recreated empty, nothing is resurrected.
- identity, rebuild: `t` alone: the standby's whole copy, then the new writes.
- identity without rebuild is refused before anything runs: reverse replication into the
  same names would append the standby's copy after the old primary's own records.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from components.wait import WaitTimeout, wait_until
from drills.history import (
    DUPLICATE,
    LATE,
    LOST_TAIL,
    CheckPolicy,
    CheckResult,
    DrillMeta,
    History,
    Instants,
    ReplicationPolicy,
    Resurrected,
    TopicMapping,
    check,
    failback_window,
    failover_window,
    resurrected,
    write_history,
)
from drills.journal import DrillRefused, StepFailed
from drills.targets.base import TargetError
from drills.workload import clock, synced_position

if TYPE_CHECKING:
    from drills.engine import Drill

PHASE = "failback"


@dataclass
class FailbackRun:
    """What the failback did and when (monotonic instants), for verify and the evidence."""

    t_switch: float | None = None  # producers paused on the standby: the failback's T_fault
    t_fence: float | None = None  # the standby fenced
    t_cut: float | None = None  # the first ack from the old primary after the move
    t_primary_back: float | None = None
    t_reverse: float | None = None  # reverse replication proven running
    moved_at: float | None = None
    consumed_at_move: dict[str, int] = field(default_factory=dict)  # per group
    fence_id: str | None = None
    reverse_on: bool = False
    rebuilt: list[str] = field(default_factory=list)
    starts: dict[tuple[str, int], int] = field(default_factory=dict)  # local topics at the switch
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # E in the old primary
    lag_waits: list[dict[str, Any]] = field(default_factory=list)
    not_run: str | None = None  # why the failback did not run
    result: CheckResult | None = None
    resurrected: Resurrected | None = None


# --- before anything is touched --------------------------------------------------------


def validate(drill: Drill) -> None:
    """Refuse (one line, nothing touched) a failback this target or policy cannot do."""
    rb = drill.spec.rollback
    if rb.rule != "failback":
        return
    t = drill.target
    policy = drill.spec.replication.policy or t.policy
    try:
        t.reverse_topic("orders")
    except TargetError as e:
        raise DrillRefused(str(e)) from None
    if policy == "identity" and not rb.rebuild:
        raise DrillRefused(
            "rollback.rebuild: false under the identity replication policy would append the "
            "standby's whole copy to the old primary's topics; set rollback.rebuild: true "
            "or use the prefixed policy"
        )


# --- the switch back ---------------------------------------------------------------------


def wanted(drill: Drill) -> bool:
    return (
        drill.spec.rollback.rule == "failback"
        and drill.record.failover
        and drill.instants["t_fence"] is not None
    )


def switch_back(drill: Drill) -> FailbackRun:
    """Every step up to serving on the old primary again; reverse replication is off again
    on every exit path (the faults, the standby's fence included, are teardown's)."""
    fb = FailbackRun()
    drill.failback = fb
    if not any(th.is_alive() for th in drill.producers):
        fb.not_run = "the drill stopped before the failback (it needs the workload running)"
        drill.record.sections["failback"] = {"completed": False, "why": fb.not_run}
        with drill._step(PHASE, "failback not run", rollback=True) as s:
            s.output = {"result": fb.not_run}
        return fb
    # until verify replaces it: what the evidence says of a failback that did not finish
    drill.record.sections["failback"] = {"completed": False, "why": "the failback did not finish"}
    try:
        _window(drill)
        _restore_primary(drill, fb)
        if drill.spec.rollback.rebuild:
            _rebuild(drill, fb)
        _reverse_on(drill, fb)
        _switch(drill, fb)
        _after_switch(drill, fb)
        _serve(drill, fb)
    except BaseException as e:
        why = str(e).splitlines()[0][:300] if str(e) else ""
        drill.record.sections["failback"]["why"] = f"{type(e).__name__}: {why}"
        raise
    finally:
        clean_up(drill, fb)
    return fb


def clean_up(drill: Drill, fb: FailbackRun | None) -> None:
    """Reverse replication off (idempotent): a drill never leaves it running."""
    t = drill.target
    if fb is not None and (fb.reverse_on or t.reverse_running()):
        with drill._step(PHASE, "reverse replication off", rollback=True) as s:
            s.output = {"t_off": t.stop_reverse_replication()}
            fb.reverse_on = False


def _window(drill: Drill) -> None:
    rb = drill.spec.rollback
    until = (drill.instants["t_cut"] or clock()) + rb.window_s
    with drill._step(
        PHASE, f"serve on {drill.target.standby} for rollback.window_s", rollback=True
    ) as s:
        while clock() < until:
            drill._check_threads()
            time.sleep(min(0.1, max(0.0, until - clock())))
        s.output = {"window_s": rb.window_s, "waited_until": until}


def _restore_primary(drill: Drill, fb: FailbackRun) -> None:
    """The incident fault (region loss, ...) and the failover's fence on the old primary are
    cleared through the target, as the stack does (a region brought back keeps MirrorMaker 2
    stopped: the drill's replication stop is still in force)."""
    t = drill.target
    with drill._step(PHASE, f"bring {t.primary} back", rollback=True) as s:
        fence = _failover_fence(drill)
        clearing = [f for f in (drill.record.fault_id, fence) if f and f in drill.applied]
        t.clear_faults(clearing)  # in dependency order: the fence is lifted first
        for f in clearing:
            drill.applied.remove(f)
        fb.t_primary_back = clock()
        s.output = {"cleared": clearing, "t_primary_back": fb.t_primary_back}


def _failover_fence(drill: Drill) -> str | None:
    for step in drill.journal.steps:
        if step.phase == "cutover" and step.name.startswith("fence"):
            return step.output.get("fault_id")
    return None


def _topics(drill: Drill) -> dict[str, int]:
    return {x.name: x.partitions for x in drill.spec.workload.topics}


def _rebuild(drill: Drill, fb: FailbackRun) -> None:
    """The old primary's workload topics and their reverse copies deleted and recreated
    empty (with reverse MirrorMaker 2's stored positions): the lost tail is gone and
    reverse replication copies the standby's topics from their start."""
    t = drill.target
    topics = _topics(drill)
    with drill._step(PHASE, f"rebuild the workload topics of {t.primary}", rollback=True) as s:
        names = {**topics, **{t.reverse_topic(x): n for x, n in topics.items()}}
        t.rebuild_topics(t.primary, names, reverse_state=True)
        fb.rebuilt = sorted(names)
        s.output = {"rebuilt": fb.rebuilt}


def _reverse_on(drill: Drill, fb: FailbackRun) -> None:
    t, rb = drill.target, drill.spec.rollback
    with drill._step(PHASE, f"reverse replication {t.standby} -> {t.primary}", rollback=True) as s:
        fb.reverse_on = True  # from here on, clean-up stops it whatever happens
        fb.t_reverse = t.start_reverse_replication()
        s.output = {"t_reverse": fb.t_reverse,
                    "topics": {x: t.reverse_topic(x) for x in _topics(drill)}}  # fmt: skip
        if rb.require_zero_lag:
            s.output["lag"] = _zero_lag(drill, fb, "before the switch")


def _lag(drill: Drill) -> int:
    """Records in the standby's workload topics (where producers wrote after the cutover)
    not yet in their reverse copies in the old primary, by end offsets."""
    t = drill.target
    topics = list(_topics(drill))
    rev = {x: t.reverse_topic(x) for x in topics}
    src = t.end_offsets(t.standby, topics)
    dst = t.end_offsets(t.primary, sorted(set(rev.values())))
    return sum(max(0, off - dst.get((rev[x], p), 0)) for (x, p), off in src.items())


def _zero_lag(drill: Drill, fb: FailbackRun, when: str) -> dict[str, Any]:
    """Wait (bounded) for reverse replication's lag to reach zero; a clear failure if not."""
    timeout = drill.spec.rollback.lag_timeout_s
    start = clock()
    left = {"lag": None}

    def caught_up() -> bool:
        left["lag"] = _lag(drill)
        return left["lag"] == 0

    try:
        wait_until(caught_up, timeout, "reverse replication at zero lag", interval=0.2,
                   check=drill._check_threads)  # fmt: skip
    except WaitTimeout:
        raise StepFailed(
            f"rollback.require_zero_lag: reverse replication into {drill.target.primary} was "
            f"still {left['lag']} records behind after rollback.lag_timeout_s={timeout:g}s "
            f"({when}); see the reverse MirrorMaker 2's log"
        ) from None
    out = {"when": when, "waited_s": round(clock() - start, 3)}
    fb.lag_waits.append(out)
    return out


def _switch(drill: Drill, fb: FailbackRun) -> None:
    t, rb = drill.target, drill.spec.rollback
    moving = [p for p in drill.producers if p.place.cluster == t.standby]
    groups = [g for g in drill.groups if g.place.cluster == t.standby]
    with drill._step(PHASE, f"fence {t.standby}", rollback=True) as s:
        fb.t_switch = clock()
        for p in moving:
            p.paused.set()
        drain = drill.spec.clients.message_timeout_ms / 1000 + 2
        with contextlib.suppress(WaitTimeout):  # what is still unacknowledged: indeterminate
            wait_until(lambda: not any(p.pending for p in moving), drain,
                       "the standby's last acknowledgements", interval=0.01)  # fmt: skip
        if rb.require_zero_lag:
            s.output["lag"] = _zero_lag(drill, fb, "after the producers paused")
        fb.fence_id, fb.t_fence = t.fence(t.standby)
        drill.applied.append(fb.fence_id)
        s.output.update({"t_switch": fb.t_switch, "fault_id": fb.fence_id, "t_fence": fb.t_fence})
    topics = list(_topics(drill))
    rev = {x: t.reverse_topic(x) for x in topics}
    with drill._step(PHASE, f"snapshot {t.primary} end offsets", rollback=True) as s:
        fb.end_offsets = t.end_offsets(t.primary, sorted(set(rev.values())))
        for (topic, part), off in fb.end_offsets.items():
            drill.rec.end_offset(cluster=t.primary, topic=topic, partition=part, end_offset=off)
        # where the old primary's own topics stand: below, its records from before the fault
        fb.starts = t.end_offsets(t.primary, [x for x in topics if rev[x] != x])
        s.output = {f"{k[0]}[{k[1]}]": v for k, v in fb.end_offsets.items()}
        s.output["local_starts"] = {f"{k[0]}[{k[1]}]": v for k, v in fb.starts.items()}
    with drill._step(PHASE, f"move clients to {t.primary} (resume: synced)", rollback=True) as s:
        place = drill._placement(t.primary)
        fb.consumed_at_move = {g.cfg.name: g.consumed for g in groups}
        for p in moving:
            p.move_to(place)
            p.budget = None
            p.paused.clear()
        for g in groups:
            serving = sorted({n for x in g.cfg.topics for n in (rev[x], x)})
            g.move_to(place, serving, synced_position)
        fb.moved_at = clock()
        drill._wait(lambda: drill.rec.first_ack(t.primary, fb.moved_at) is not None, 60,
                    f"a first ack from {t.primary} after the failback")  # fmt: skip
        fb.t_cut = drill.rec.first_ack(t.primary, fb.moved_at)
        s.output = {"t_cut": fb.t_cut, "producers": [p.name for p in moving],
                    "groups": {g.cfg.name: sorted({n for x in g.cfg.topics for n in (rev[x], x)})
                               for g in groups}}  # fmt: skip


def _after_switch(drill: Drill, fb: FailbackRun) -> None:
    t = drill.target
    clean_up(drill, fb)
    with drill._step(PHASE, f"lift the fence on {t.standby}", rollback=True) as s:
        if fb.fence_id in drill.applied:
            t.clear_fault(fb.fence_id)
            drill.applied.remove(fb.fence_id)
        s.output = {"cleared": fb.fence_id}


def _serve(drill: Drill, fb: FailbackRun) -> None:
    t, run = drill.target, drill.spec.rollback.run_after_s
    moved = [g for g in drill.groups if g.place.cluster == t.primary]
    before = fb.consumed_at_move
    with drill._step(
        PHASE, f"workload on {t.primary} for rollback.run_after_s", rollback=True
    ) as s:
        with contextlib.suppress(WaitTimeout):  # a group that never does: failback RTO says so
            wait_until(
                lambda: all(g.consumed > before.get(g.cfg.name, 0) for g in moved),
                60, "every group reading on the old primary", check=drill._check_threads,
            )  # fmt: skip
        start = clock()
        while clock() - start < run:
            drill._check_threads()
            time.sleep(0.1)
        s.output = {"throughput_rps": round(drill.rec.acks_between(start, clock()) / run, 1)}


# --- the checks ---------------------------------------------------------------------------


def failover_part(drill: Drill, history: History) -> History:
    """The failover's window of the drill's history (everything, without a failback)."""
    fb = drill.failback
    if fb is None or fb.t_switch is None:
        return history
    return failover_window(history, drill.target.primary, fb.t_switch)


def verify(drill: Drill) -> None:
    """Read the old primary back, check the failback window, list the resurrected records;
    the evidence's `failback` section and the verdict's failback lines."""
    fb = drill.failback
    if fb is None or drill.spec.rollback.rule != "failback":
        return
    if fb.t_cut is None:
        drill.record.sections["failback"] = {"completed": False,
                                             "why": fb.not_run or "the switch back did not finish"}  # fmt: skip
        return
    t = drill.target
    drill.record.serving = t.primary  # from here on (the failover's read-back is done)
    topics = list(_topics(drill))
    rev = {x: t.reverse_topic(x) for x in topics}
    names = sorted(set(rev.values()) | set(topics))
    ends = t.end_offsets(t.primary, names)
    mine = {p.pid for p in drill.producers}
    left = drill.clients.read_log(t.bootstrap(t.primary), ends, mine, drill.rec, t.primary,
                                  f"kdrill-{drill.run_id}-failback-log")  # fmt: skip
    if left:
        raise StepFailed(f"could not read back {left} from {t.primary}")
    policy = ReplicationPolicy(t.policy)
    meta = DrillMeta(
        primary=t.standby,
        standby=t.primary,
        topics=tuple(topics),
        groups=tuple(g.cfg.name for g in drill.groups),
        failover=True,
        mapping=TopicMapping(policy, source_alias=t.standby),
        instants=Instants(fb.t_switch, fb.t_switch, fb.t_switch, fb.t_fence, fb.t_cut),
        drill_id=drill.run_id,
    )
    full = drill.rec.build(meta)
    history = failback_window(full, meta, fb.t_switch, fb.starts)
    write_history(history, drill.dir / "failback-history")
    fb.result = check(
        history, CheckPolicy(tolerate=frozenset({LOST_TAIL, LATE, DUPLICATE}), sample=5)
    )
    if drill.record.result is not None:
        fb.resurrected = resurrected(drill.record.result, full, t.primary, set(names), fb.t_switch)
    drill.record.sections["failback"] = section(drill, fb, rev)
    drill.record.sections["failback"]["reread_below_window"] = _reread(full, t.primary, fb)
    _judge(drill, fb)


def section(drill: Drill, fb: FailbackRun, rev: dict[str, str]) -> dict[str, Any]:
    """The evidence's `failback` section."""
    t, rb = drill.target, drill.spec.rollback
    r = fb.result
    full = r.to_dict(full=False)
    policy = t.policy
    read_after = {x: sorted({rev[x], x}, key=lambda n: n != rev[x]) for x in rev}
    return {
        "completed": True,
        "from": t.standby,
        "to": t.primary,
        "policy": policy,
        "rebuild": rb.rebuild,
        "rebuilt_topics": fb.rebuilt,
        "require_zero_lag": rb.require_zero_lag,
        "lag_waits": fb.lag_waits,
        "topics_read_after_failback": read_after,
        "instants": {
            "t_switch": fb.t_switch,
            "t_fence": fb.t_fence,
            "t_cut": fb.t_cut,
            "t_primary_back": fb.t_primary_back,
            "t_reverse": fb.t_reverse,
        },  # fmt: skip
        "rto": full["rto"],
        "rpo": full["rpo"],
        "continuity": full["continuity"],
        "anomalies_found": full["found"],
        "anomalies": full["anomalies"],
        "notes": full["notes"],
        "split_brain": {
            # both directions: the old primary after the failover's fence, the standby after
            # the failback's
            "old_primary_after_failover_fence": _split(drill.record.result),
            "standby_after_failback_fence": r.rpo.split_brain,
        },
        "resurrected": fb.resurrected.to_dict() if fb.resurrected is not None else None,
        "end_offsets": {f"{k[0]}[{k[1]}]": v for k, v in fb.end_offsets.items()},
    }


def _reread(full: History, old_primary: str, fb: FailbackRun) -> dict[str, int]:
    """Per group: records read after the failback from the old primary's own topics below
    where the failback window starts (its records from before the fault: the resurrected
    ones and those the group had consumed before the fault and consumed again). The
    checker's duplicates do not count these: that part of the log is not the window's."""
    out: dict[str, int] = {}
    for r in full.reads.to_pylist():
        if r["cluster"] != old_primary or r["poll_time"] < fb.t_switch:
            continue
        start = fb.starts.get((r["topic"], r["partition"]))
        if start is not None and r["offset"] < start:
            out[r["group"]] = out.get(r["group"], 0) + 1
    return dict(sorted(out.items()))


def _split(result: CheckResult | None) -> int | None:
    return None if result is None else result.rpo.split_brain


def _judge(drill: Drill, fb: FailbackRun) -> None:
    """The failback's lines in the verdict, against the same objectives as the failover."""
    obj, rb, r = drill.spec.objectives, drill.spec.rollback, fb.result
    checks = drill.record.verdict.setdefault("checks", [])

    def add(name: str, value, bound, ok: bool) -> None:
        checks.append({"objective": f"failback {name}", "value": value, "bound": bound, "met": ok})

    rto = r.rto.seconds
    add("completed (every group consumed on the old primary)", rto is not None, True,
        rto is not None)  # fmt: skip
    if obj.max_rto_seconds is not None:
        add("max_rto_seconds", rto, obj.max_rto_seconds,
            rto is not None and rto <= obj.max_rto_seconds)  # fmt: skip
    bound = 0 if rb.require_zero_lag else obj.max_rpo_records
    if bound is not None:
        add("max_rpo_records", r.rpo.records, bound, r.rpo.records <= bound)
    add("max_split_brain_writes", r.rpo.split_brain, obj.max_split_brain_writes,
        r.rpo.split_brain <= obj.max_split_brain_writes)  # fmt: skip
    skipped = sum(c.skipped for c in r.continuity)
    add("max_skipped", skipped, obj.max_skipped, skipped <= obj.max_skipped)
    if rb.rebuild and fb.resurrected is not None:
        add("resurrected after rebuild", fb.resurrected.count, 0, fb.resurrected.count == 0)
    untolerated = [a for a in r.found if a not in r.tolerated]
    add("no untolerated anomalies", untolerated, [], not untolerated)
    drill.record.verdict["passed"] = all(c["met"] for c in checks)

"""Active-active (`replication.engine: active-active`): the workload mode and its drill phases.

Both regions take writes of the same keys. MirrorMaker 2 runs both ways under the prefixed
policy (DefaultReplicationPolicy): the pair's own MirrorMaker 2 copies east's `orders` into
west as `east.orders`, and the stack's reverse MirrorMaker 2 part (the one failback uses,
components/local/parts.py `ReverseMirrorMakerProvider`, declared through the drill-time
config by `Target.start_reverse_replication`) copies west's `orders` into east as
`west.orders`. Neither copies a replica back: MirrorMaker 2's default policy knows a
topic's origin from its prefix and never replicates a topic into the cluster it came from,
which is what the checker's no-loop figures verify (drills/history/activeactive.py).

The workload: per spec producer, one instrumented producer in each region, writing that
region's local topic with the same key set (`k0..k<keys-1>`), so keys overlap; producers
never move. Per spec group, one member group in each region (history name
`<group>@<region>`, its own group id), reading the local topic and the other region's
replica. Only the lost region's producers feed the detector: the survivor's successes
must not reset a count of the lost region's failures.

The phases the engine hands over: `validate` (before anything is touched: a prefixed
policy, a target with reverse replication), `preflight` (after the engine's: reverse
replication on, its replica topic created), `workload`, `recover` (instead of the engine's
recover-in-place: snapshot the survivor's replica end offsets E while the region is away,
bring the region back, wait for its first ack (T_cut), then reverse replication back on --
a region loss kills the processes of the region, the reverse MirrorMaker 2 among them),
`verify` (both flows caught up, the four topics read back, the checker), `clean_up`
(reverse replication off; the engine calls it in teardown, on every exit path) and
`restart_forward` (after the faults are cleared: the pair's own MirrorMaker 2 restarted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.wait import WaitTimeout, wait_until
from drills.detection import Detector
from drills.history import DrillMeta, Instants, ReplicationPolicy, TopicMapping, write_history
from drills.history.activeactive import PATTERN, check_active_active, group_name, replica
from drills.journal import DrillRefused, StepFailed
from drills.workload import GroupConfig, Placement, Recorder, clock

if TYPE_CHECKING:
    from drills.engine import Drill

CATCH_UP_S = 60.0  # bound on waiting for both flows to reach the sources' end offsets


def active(spec) -> bool:
    return spec.replication.engine == PATTERN


def regions(drill: Drill) -> tuple[str, str]:
    """(the lost region, the survivor): the incident's region and the other one."""
    t = drill.target
    lost = drill.fault.region or t.primary
    return lost, (t.standby if lost == t.primary else t.primary)


def _names(drill: Drill) -> list[str]:
    return sorted(x.name for x in drill.spec.workload.topics)


def _partitions(drill: Drill) -> dict[str, int]:
    return {x.name: x.partitions for x in drill.spec.workload.topics}


def validate(drill: Drill) -> None:
    """Refused before anything is touched: what an active-active drill cannot be."""
    if not active(drill.spec):
        return
    t = drill.target
    policy = drill.spec.replication.policy or t.policy
    if policy != "prefixed":
        raise DrillRefused(
            f"replication.engine: active-active needs the prefixed policy on stack "
            f"{t.facts().stack} (it runs {policy}: each region's copies would land in the "
            "topic the other region writes, and copy back); set replication.policy: prefixed"
        )
    if drill.fault.region not in (None, t.primary):
        raise DrillRefused(
            f"fault.region: active-active loses the region whose MirrorMaker 2 is the reverse "
            f"one ({t.primary}); got {drill.fault.region}"
        )


def preflight(drill: Drill) -> None:
    """Reverse replication on (a stack part; from here on clean-up removes it), and its
    replica of each workload topic present in the primary before the workload starts."""
    t = drill.target
    with drill._step("preflight", f"reverse MirrorMaker 2 {t.standby} -> {t.primary} "
                                  "(active-active)") as s:  # fmt: skip
        drill.reverse_on = True  # whatever happens next, clean-up removes it
        t_on = t.start_reverse_replication(exactly_once=True)
        want = {t.reverse_topic(x) for x in _names(drill)}
        drill._wait(
            lambda: want <= {topic for topic, _ in t.end_offsets(t.primary, sorted(want))},
            60,
            f"the reverse MirrorMaker 2 to create {sorted(want)} in {t.primary}",
        )
        s.output = {"t_reverse": t_on, "topics": {x: t.reverse_topic(x) for x in _names(drill)}}


def workload(drill: Drill) -> None:
    """The engine's workload, active-active: producers in both regions, groups in both."""
    spec, t = drill.spec, drill.target
    w, c = spec.workload, spec.clients
    lost, _ = regions(drill)
    pcfg = drill._start_schedule()
    names = _names(drill)
    both = (t.primary, t.standby)
    other = {t.primary: t.standby, t.standby: t.primary}
    pids = {r: [f"{drill.run_id}-{r}-p{i}" for i in range(w.producers)] for r in both}
    mine = {p for r in both for p in pids[r]}
    quiet = Detector(spec.detection)  # never armed: the survivor's deliveries count nowhere
    drill.producers = [
        drill.clients.producer(pid, pcfg, Placement(r, t.bootstrap(r), {x: x for x in names}),
                               drill.rec, drill.detector if r == lost else quiet)
        for r in both for pid in pids[r]
    ]  # fmt: skip
    for g in w.groups:
        topics = g.topics or names
        for r in both:
            read = [*topics, *(replica(x, other[r]) for x in topics)]
            cfg = GroupConfig(group_name(g.name, r), f"kdrill-{drill.run_id}-{g.name}-{r}", read,
                              g.process_rate, g.commit_interval_ms, c.session_timeout_ms,
                              c.fetch_wait_max_ms)  # fmt: skip
            place = Placement(r, t.bootstrap(r), {x: x for x in read})
            consumer = drill.clients.group(cfg, place, drill.rec)
            consumer.producers = mine
            drill.groups.append(consumer)
    for th in [*drill.groups, *drill.producers]:
        th.start()


def recover(drill: Drill) -> None:
    """The lost region returns (nothing moves under active-active): E snapshotted first,
    then the fault cleared, T_cut = the region's first ack, then reverse replication back."""
    t, rec = drill.target, drill.rec
    lost, survivor = regions(drill)
    rep = [replica(x, lost) for x in _names(drill)]
    with drill._step("recover", f"snapshot {survivor}'s replica of {lost} (E)") as s:
        drill.end_offsets = t.end_offsets(survivor, rep)
        for (topic, part), off in drill.end_offsets.items():
            rec.end_offset(cluster=survivor, topic=topic, partition=part, end_offset=off)
        s.output = {f"{k[0]}[{k[1]}]": v for k, v in drill.end_offsets.items()}
    with drill._step("recover", f"{lost} returns; its clients write there again") as s:
        inc = drill.timeline[drill.incident]
        if inc.fault_id in drill.applied:
            t.clear_fault(inc.fault_id)  # its brokers restart on the data they had
            drill.applied.remove(inc.fault_id)
        cleared = clock()
        if inc.cleared is None:
            inc.cleared, inc.cleared_by = cleared, "recover (the region returned)"
            drill.record.faults = drill._timeline_facts()
        # T_cut: the region's first ack after the decision. Not after `cleared`: its clients'
        # queued records are acknowledged while the clear still waits for the brokers.
        since = drill.instants["t_decide"] or cleared
        drill._wait(lambda: rec.first_ack(lost, since) is not None, 120,
                    f"a first ack from {lost} after its return")  # fmt: skip
        drill.instants["t_cut"] = rec.first_ack(lost, since)
        s.output = {"t_cut": drill.instants["t_cut"]}
    with drill._step("recover", f"reverse MirrorMaker 2 {t.standby} -> {t.primary} back") as s:
        s.output = {"t_reverse": t.restart_reverse_replication()}


def verify(drill: Drill, judge) -> None:
    """Both flows caught up, the four topics read back, the active-active checker."""
    t, record = drill.target, drill.record
    lost, survivor = regions(drill)
    names = _names(drill)
    other = {lost: survivor, survivor: lost}
    with drill._step("verify", "both MirrorMaker 2 flows caught up; read all four topics") as s:
        mine = {p.pid for p in drill.producers}
        local = {r: _ids(drill, r, t.end_offsets(r, names), mine) for r in (lost, survivor)}
        ends: dict[str, dict] = {}

        def caught_up() -> bool:
            """Every record of each region's topic in the other region's replica (read, not
            compared by offsets: the reverse flow's transaction markers take offsets too)."""
            for r in (lost, survivor):
                ends[r] = t.end_offsets(r, [*names, *(replica(x, other[r]) for x in names)])
            behind = any(ends[other[r]].get((replica(x, r), p), -1) < off  # cheap, necessary
                         for r in (lost, survivor) for (x, p), off in ends[r].items() if x in names)  # fmt: skip
            if behind:
                return False
            return all(
                local[r] <= _ids(drill, other[r], {k: v for k, v in ends[other[r]].items()
                                                   if k[0] not in names}, mine)
                for r in (lost, survivor)
            )  # fmt: skip

        try:
            wait_until(caught_up, CATCH_UP_S, "both flows to copy every record", interval=0.5)
            s.output["caught_up"] = True
        except WaitTimeout:  # what never crossed is the checker's `lost`
            s.output["caught_up"] = False
        for r in (lost, survivor):
            left = drill.clients.read_log(t.bootstrap(r), ends[r], mine, drill.rec, r,
                                          f"kdrill-{drill.run_id}-log-{r}")  # fmt: skip
            if left:
                raise StepFailed(f"could not read back {left} from {r}")
        loops = [f"{r}: {n}" for r in (lost, survivor)
                 for n in {topic for topic, _ in t.end_offsets(r, _loop_names(names, lost, survivor))}]  # fmt: skip
        s.output["ends"] = {
            r: {f"{k[0]}[{k[1]}]": v for k, v in e.items()} for r, e in ends.items()
        }
        s.output["loop_topics"] = loops
    with drill._step("verify", "check the active-active history") as s:
        meta = DrillMeta(
            primary=lost, standby=survivor, topics=tuple(names),
            groups=tuple(g.cfg.name for g in drill.groups), failover=False,
            mapping=TopicMapping(ReplicationPolicy.PREFIXED, source_alias=lost),
            instants=Instants(**drill.instants), drill_id=drill.run_id,
        )  # fmt: skip
        record.acknowledged = drill.rec.acks_between(0, float("inf"))
        history = drill.rec.build(meta)
        write_history(history, drill.dir / "history")
        window = float((record.steady_before or {}).get("max_replication_lag_s") or 0.0)
        aa = check_active_active(history, lost, survivor, names, window, loops)
        record.result = aa.check_result()
        record.sections["active_active"] = aa.to_dict()
        verdict = judge(drill.spec.objectives, record.result, record.steady_after, drill.control)
        verdict["checks"] += aa.checks()
        verdict["passed"] = all(c["met"] for c in verdict["checks"])
        record.verdict = verdict
        s.output = {"verdict": verdict, "active_active": record.sections["active_active"]}


def _ids(drill: Drill, region: str, ends: dict, mine: set[str]) -> set[tuple]:
    """(producer, key, seq) of this drill's records below `ends` in `region` (a scratch read:
    the history's log is read once, after both flows caught up)."""
    scratch = Recorder()
    drill.clients.read_log(drill.target.bootstrap(region), ends, mine, scratch, region,
                           f"kdrill-{drill.run_id}-scan-{region}", 30)  # fmt: skip
    log = scratch.builder.tables()["log"].to_pydict()
    return set(zip(log["producer"], log["key"], log["seq"], strict=True))


def _loop_names(names: list[str], a: str, b: str) -> list[str]:
    """Topic names only a loop makes: a replica replicated again (either prefix order)."""
    return sorted({f"{x}.{y}.{n}" for n in names for x in (a, b) for y in (a, b)})


def clean_up(drill: Drill) -> None:
    """Reverse replication off (idempotent): a drill never leaves it declared or running."""
    if not active(drill.spec):
        return
    t = drill.target
    if getattr(drill, "reverse_on", False) or t.reverse_running():
        with drill._step("teardown", "reverse MirrorMaker 2 off (active-active)",
                         rollback=True) as s:  # fmt: skip
            s.output = {"t_off": t.stop_reverse_replication()}
            drill.reverse_on = False


def restart_forward(drill: Drill) -> None:
    """After the faults are cleared, when the region was lost: the pair's own MirrorMaker 2
    restarted. Through the outage its MirrorSourceConnector (topic discovery) can wedge
    ("failed to properly shut down, has become unresponsive" in its log, measured on this
    pair) while its tasks keep copying the topics they had, so a later drill's new topic
    would never be replicated. Verify has read everything by then; a restart's re-copies
    land above the end offsets it read to."""
    if not active(drill.spec) or drill.instants.get("t_fault") is None:
        return
    t = drill.target
    with drill._step("teardown", f"restart MirrorMaker 2 {t.primary} -> {t.standby}",
                     rollback=True) as s:  # fmt: skip
        s.output = {"t_restarted": t.restart_replication()}

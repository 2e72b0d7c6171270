"""The fault switch: the local stack's faults as one Pulumi resource (a Python dynamic provider).

Its input `faults` is the drill-time config's `kdrill:faults` (fault key -> fault spec as a
dict): that entry is the fault's only record. create/update make the live pair match it:
first a sweep clears every fault effect no wanted fault accounts for (nft tables named for
keys no longer wanted, links down, tbf qdiscs, CPU quotas, stopped processes, toxiproxy
latency, dead daemons -- components.local.faults.sweep; the direct faults' tables, the
drill's fence and replication stop, are left alone), then each wanted key that is not
`present` on the live system is applied through the fault registry. What is applied is
always worked out from the pair, never from the resource's old outputs (stale after the
CLI was killed in the middle of an update) and never from a file.

Output `applied`: key -> {t_fault, t_fault_wall}, where t_fault is CLOCK_MONOTONIC at the
instant the provider finished applying the fault (one clock for every process on the
machine), so a drill reads T_fault from the update's outputs, not from the engine's start.
A key applied by an earlier update keeps the instants that update reported.

The switch manages only faults: it never builds or removes the pair. Its delete clears
what the faults did but starts nothing (the parts, destroyed alongside, are theirs).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.dynamic import (
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from components.local.errors import LocalEnvError

if TYPE_CHECKING:  # only its methods are called
    from components.local.env import LocalPair

TYPE = "pulumi-python:dynamic:Resource"


def _pair(props: dict[str, Any]):
    from components.local.env import LocalPair

    pair = LocalPair.from_state(props["prefix"], Path(props["state_root"]))
    if pair is None:
        raise RuntimeError(f"local pair {props['prefix']!r} has no state; run `kdrill local up`")
    return pair


def _wanted(pair, props: dict[str, Any]) -> dict[str, Any]:
    """Key -> Placed for the switch's `faults` input (resolved against the pair)."""
    from components.local import faults

    return {k: faults.place(pair, dict(v), k) for k, v in (props.get("faults") or {}).items()}


def live(props: dict[str, Any]) -> set[str]:
    """The wanted keys whose faults are in effect now, seen on the pair."""
    from components.local import faults

    try:
        pair = _pair(props)
    except RuntimeError:
        return set()
    return {k for k, f in _wanted(pair, props).items() if faults.present(pair, f)}


def sync(
    props: dict[str, Any], before: dict[str, Any] | None = None, restart: bool = True
) -> dict[str, dict[str, Any]]:
    """Sweep what is not wanted, apply the wanted keys not present; return `applied`.
    `before`: the `applied` reported earlier (instants of keys still in effect are kept)."""
    from components.local import faults

    try:
        pair = _pair(props)
    except RuntimeError:
        if props.get("faults"):
            raise
        return {}  # no pair, nothing wanted: nothing to do
    wanted = _wanted(pair, props)
    faults.sweep(pair, list(wanted.values()), keep_direct=True, restart=restart)
    applied: dict[str, dict[str, Any]] = {}
    for key, f in sorted(wanted.items(), key=lambda kv: faults.lifecycle.rank(kv[1])):
        if faults.present(pair, f):
            if key in (before or {}):
                applied[key] = dict(before[key])
            continue
        a = faults.apply(pair, f.spec, key=key)
        applied[key] = {"t_fault": a.t_fault, "t_fault_wall": a.t_fault_wall}
    return applied


def _outs(props: dict[str, Any], applied: dict[str, Any], t_synced: float | None) -> dict[str, Any]:
    """`t_synced`: CLOCK_MONOTONIC when the provider finished (applying and clearing); kept
    as it was by `read`, so a refresh finds no drift in it."""
    return {
        "prefix": props["prefix"],
        "state_root": props["state_root"],
        "faults": dict(props.get("faults") or {}),
        "applied": applied,
        "t_synced": t_synced,
    }


class FaultSwitchProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        applied = sync(props)
        return CreateResult(f"{props['prefix']}-faults", _outs(props, applied, time.monotonic()))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Compared with the live pair, not with the old outputs (stale after a killed CLI).
        wanted = set((news.get("faults") or {}).keys())
        changed = wanted != live(news) or (olds.get("faults") or {}) != (news.get("faults") or {})
        replaces = [k for k in ("prefix", "state_root") if olds.get(k) != news.get(k)]
        return DiffResult(
            changes=changed or bool(replaces), replaces=replaces, delete_before_replace=True
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        applied = sync(news, before=olds.get("applied"))
        return UpdateResult(_outs(news, applied, time.monotonic()))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        sync({**props, "faults": {}}, restart=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # `faults` as seen live: refresh reports drift when a fault was applied or cleared
        # outside the stack (the wanted specs are kept only for the keys still in effect).
        now = live(props)
        wanted = dict(props.get("faults") or {})
        before = dict(props.get("applied") or {})
        faults = {k: wanted[k] for k in now}
        applied = {k: before[k] for k in now if k in before}
        outs = _outs({**props, "faults": faults}, applied, props.get("t_synced"))
        # The inputs follow: later diffs (and a refresh's own, which diffs the inputs against
        # the live pair) compare against what is in effect, not what was once asked for.
        inputs = {"prefix": props["prefix"], "state_root": props["state_root"], "faults": faults}
        return ReadResult(id_, outs, inputs)


class FaultSwitch(Resource):
    """`faults`: key -> fault spec dict (kind, region, link, params, duration)."""

    applied: pulumi.Output[dict]
    t_synced: pulumi.Output[float]

    def __init__(
        self,
        name: str,
        prefix: str,
        state_root: str,
        faults: dict[str, dict[str, Any]],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            FaultSwitchProvider(),
            name,
            {
                "prefix": prefix,
                "state_root": state_root,
                "faults": faults,
                "applied": None,
                "t_synced": None,
            },
            opts,
        )


# --- driving the switch (kdrill's side of the engine) ------------------------------------


def switch_urn(pair: LocalPair) -> str:
    return pair.stack.urn(TYPE, f"{pair.cfg.prefix}-faults")


def deploy(pair: LocalPair) -> bool:
    """Create the pair's stack if needed and `pulumi up` it when the switch is not in its
    state (a new stack, or one `down` destroyed). True if an update ran."""
    pair.stack.ensure()
    if switch_urn(pair) in pair.stack.resource_urns():
        return False
    pair.stack.up()
    return True


def update(pair: LocalPair) -> dict[str, Any]:
    """A targeted update of the pair's fault switch; returns its `applied` output."""
    pair.stack.up(targets=[switch_urn(pair)])
    # read from the checkpoint the update just wrote: `pulumi stack output` would cost ~0.7 s
    return pair.stack.stack_outputs().get("faults_applied") or {}


def clear_keys(pair: LocalPair, keys: list[str], teardown: bool = False) -> list[str]:
    """Clear stack faults: each is cleared here, from its config entry (spec and key), in
    clearing order; then the entries leave the drill-time config and one update of the
    switch reconciles (finding nothing left to clear, it is in the history). Clearing may
    restart brokers and wait until they serve, which is kdrill's to wait for, not the
    engine's. With `teardown` (the pair is removed next) nothing is restarted and no update
    runs. Returns the keys cleared."""
    from components.local import faults

    have = pair.stack.faults()
    placed = [faults.place(pair, have[k], k) for k in keys if k in have]
    try:
        faults.clear_many(pair, placed, teardown)
    finally:
        pair.stack.set_faults({k: v for k, v in pair.stack.faults().items() if k not in keys})
    if not teardown:
        update(pair)
    return [f.key for f in placed]


# --- the failback's reverse replication (a part of the stack, switched by drill-time config)

REVERSE_KEY = "kdrill:reverseReplication"
EXACTLY_ONCE_KEY = "kdrill:reverseExactlyOnce"  # active-active: the reverse flow transactional
REVERSE_TYPE = TYPE


def reverse_urn(pair: LocalPair) -> str:
    return pair.stack.urn(REVERSE_TYPE, f"{pair.cfg.prefix}-mirrormaker2-reverse")


def set_reverse(pair: LocalPair, on: bool, exactly_once: bool = False) -> float:
    """Declare (or remove) the reverse MirrorMaker 2 part through the drill-time config and
    a targeted update of that part: on, it returns once a probe record crossed from the
    standby into the old primary. `exactly_once` (active-active): the part's MirrorMaker 2
    writes transactionally (exactly-once source support), so a restart after its region was
    lost re-copies nothing. Returns CLOCK_MONOTONIC when the update returned."""
    pair.stack.set_drill_setting(REVERSE_KEY, True if on else None)
    pair.stack.set_drill_setting(EXACTLY_ONCE_KEY, True if on and exactly_once else None)
    if on or reverse_urn(pair) in pair.stack.resource_urns():
        pair.stack.up(targets=[reverse_urn(pair)])
    if not on:
        pair.replication.stop_reverse()  # whatever an interrupted update left behind
    return time.monotonic()


def restart_reverse(pair: LocalPair) -> float:
    """The declared reverse MirrorMaker 2 part running again after its region returned (a
    region loss kills every process of the region, this one among them): a targeted update
    that refreshes the part first, so its provider sees it stopped and starts it (ready once
    a probe record crossed). Returns CLOCK_MONOTONIC when the update returned."""
    if not pair.stack.drill_setting(REVERSE_KEY):
        raise LocalEnvError("the reverse MirrorMaker 2 is not declared; nothing to restart")
    pair.stack.up(targets=[reverse_urn(pair)], refresh=True)
    return time.monotonic()


def recover(pair: LocalPair) -> list[str]:
    """After a kill, whoever applied what, with no file of its own: end every recorded
    engine session (CLI, language host, provider) and cancel the update (the lock); remove
    every fault from the drill-time config; sweep the pair with nothing wanted (which also
    lifts direct fences and restarts stopped replication); then refresh, so the state
    matches the live system (pending operations cleared). One line per thing done."""
    from components.local import faults
    from components.local.stack import kill_session

    stack = pair.stack
    done: list[str] = []
    engine = stack.exists() and stack.config_file.exists()
    for s in stack.recorded_sessions():
        if killed := kill_session(s["sid"]):
            done.append(f"killed {len(killed)} process(es) of engine session {s['sid']}")
    if stack.sessions_file.exists():
        with stack._sessions() as items:
            items.clear()
    if engine:
        c = stack.run(["cancel", "--yes"])
        if c.returncode == 0 and "canceled" in (c.stdout + c.stderr).lower():
            done.append("cancelled the stack's update (lock released)")
        if wanted := stack.faults():
            listed = ", ".join(
                f"{k} ({faults.FaultSpec.from_dict(dict(v)).describe()})" for k, v in wanted.items()
            )
            done.append(f"removed {listed} from the drill-time config")
            stack.set_faults({})
    if stack.config_file.exists() and stack.drill_setting(REVERSE_KEY):
        stack.set_drill_setting(REVERSE_KEY, None)
        done.append(f"removed {REVERSE_KEY} from the drill-time config")
    if stack.config_file.exists() and stack.drill_setting(EXACTLY_ONCE_KEY):
        stack.set_drill_setting(EXACTLY_ONCE_KEY, None)
    if pair.replication.stop_reverse():
        done.append("stopped the failback's reverse MirrorMaker 2")
    from components.local import backup

    done += backup.recover(pair)  # a backup-and-restore drill's sink
    done += faults.recover(pair)
    if engine:
        r = stack.refresh()
        if r.returncode != 0:
            raise LocalEnvError(f"pulumi refresh failed after recovery: {r.stderr.strip()[-300:]}")
        done.append("refreshed the stack (pending operations cleared)")
    return done

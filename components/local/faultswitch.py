"""The fault switch: the local stack's faults as one Pulumi resource (a Python dynamic provider).

Its input `faults` is the drill-time config's `kdrill:faults` (fault key -> fault spec as a
dict). create/update make the live pair match it: a key not yet applied is applied through
the fault registry (components.local.faults.apply, which writes the pair's ledger before
acting), an applied key no longer wanted is cleared. What is applied is worked out from the
pair (its ledger's open entries, tagged with the key), never from the resource's old
outputs: those are stale after the CLI was killed in the middle of an update.

Output `applied`: key -> {id, t_fault, t_fault_wall}, where t_fault is CLOCK_MONOTONIC at
the instant the provider finished applying the fault (one clock for every process on the
machine), so a drill reads T_fault from the update's outputs, not from the engine's start.

The switch manages only faults: it never builds or removes the pair.
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

if TYPE_CHECKING:  # only its methods are called
    from components.local.env import LocalPair

TYPE = "pulumi-python:dynamic:Resource"


def _pair(props: dict[str, Any]):
    from components.local.env import LocalPair

    pair = LocalPair.from_state(props["prefix"], Path(props["state_root"]))
    if pair is None:
        raise RuntimeError(f"local pair {props['prefix']!r} has no state; run `kdrill local up`")
    return pair


def live(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Key -> what is applied now, from the pair (its ledger's open, tagged entries)."""
    from components.local.faults import lifecycle

    try:
        pair = _pair(props)
    except RuntimeError:
        return {}
    return {
        e.tag: {"id": e.id, "t_fault": e.t_fault, "t_fault_wall": e.t_fault_wall}
        for e in lifecycle.ledger(pair).open_entries()
        if e.tag
    }


def sync(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Apply the wanted keys not applied, clear the applied keys not wanted; return `applied`."""
    from components.faults.spec import FaultSpec
    from components.local.faults import lifecycle

    wanted: dict[str, Any] = dict(props.get("faults") or {})
    now = live(props)
    stale = [v["id"] for k, v in now.items() if k not in wanted]
    pair = _pair(props) if (stale or set(wanted) - set(now)) else None
    if stale:
        lifecycle.clear_many(pair, stale)
    applied = {k: v for k, v in now.items() if k in wanted}
    for key in sorted(set(wanted) - set(now)):
        e = lifecycle.apply(pair, FaultSpec.from_dict(dict(wanted[key])), tag=key)
        applied[key] = {"id": e.id, "t_fault": e.t_fault, "t_fault_wall": e.t_fault_wall}
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
        changed = wanted != set(live(news)) or (olds.get("faults") or {}) != (
            news.get("faults") or {}
        )
        replaces = [k for k in ("prefix", "state_root") if olds.get(k) != news.get(k)]
        return DiffResult(
            changes=changed or bool(replaces), replaces=replaces, delete_before_replace=True
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        applied = sync(news)
        return UpdateResult(_outs(news, applied, time.monotonic()))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        sync({**props, "faults": {}})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # `faults` as seen live: refresh reports drift when a fault was applied or cleared
        # outside the stack (the wanted specs are kept only for the keys still applied).
        now = live(props)
        wanted = dict(props.get("faults") or {})
        faults = {k: wanted.get(k, {}) for k in now}
        return ReadResult(id_, _outs({**props, "faults": faults}, now, props.get("t_synced")))


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
    return pair.stack.outputs().get("faults_applied") or {}


def recover(pair: LocalPair) -> list[str]:
    """After a kill, whoever applied what: end every recorded engine session (CLI, language
    host, provider), cancel the update (the lock), refresh (pending operations), clear
    every fault still applied (stack or direct), empty the drill-time faults and bring the
    switch in line. One line per thing done."""
    from components.local.errors import LocalEnvError
    from components.local.faults import lifecycle

    stack = pair.stack
    done: list[str] = []
    if stack.exists() and stack.config_file.exists():
        try:
            done += stack.recover_engine()
        except LocalEnvError as e:
            done.append(f"engine recovery incomplete: {e}")
    done += [
        f"fault {e.id}: {e.fault.describe()} (applied by pid {e.applier_pid})"
        for e in lifecycle.recover(pair)
    ]
    if stack.exists() and stack.config_file.exists():
        if wanted := stack.faults():
            done.append(f"removed {', '.join(wanted)} from the drill-time config")
            stack.set_faults({})
        if pair.is_up():
            update(pair)
    return done

"""Process faults on the local pair: a broker or MirrorMaker 2 killed or stopped.

Killing takes a process away until clearing starts it again (on its data);
stopping (SIGSTOP) keeps it, frozen mid-whatever, until SIGCONT.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

from pydantic import Field

from components.faults.errors import FaultError
from components.faults.params import Params
from components.faults.registry import FaultKind, Local, Placed, StackFacts, register
from components.local import kernel
from components.local import processes as procs
from components.local.errors import LocalEnvError

if TYPE_CHECKING:
    from components.faults.spec import FaultSpec
    from components.local.env import LocalPair
    from components.local.state import Proc


class BrokerParams(Params):
    broker: int = Field(0, ge=0, le=4, description="node id")


def _broker_exists(f: FaultSpec, stack: StackFacts) -> None:
    """The node id must be one of the region's brokers (known when the stack is)."""
    n = (stack.brokers or {}).get(f.region or "")
    if n is not None and f.params["broker"] >= n:
        raise FaultError(
            f"{f.kind}: region {f.region} has brokers 0..{n - 1}, not {f.params['broker']}"
        )


def _broker_proc(pair: LocalPair, f: FaultSpec) -> Proc | None:
    """The broker's recorded process if it runs (a live lookup: it may have been restarted)."""
    p = pair.find("broker", f.region, f.params["broker"])
    return p if p is not None and procs.alive(p.pid) else None


def _replication_proc(pair: LocalPair) -> Proc | None:
    p = pair.find("mirrormaker2", pair.standby.name)
    return p if p is not None and procs.alive(p.pid) else None


def _broker(pair: LocalPair, f: FaultSpec) -> Proc:
    p = _broker_proc(pair, f)
    if p is None:
        raise LocalEnvError(f"broker {f.region}/{f.params['broker']} is not running")
    return p


def _replication(pair: LocalPair) -> Proc:
    p = _replication_proc(pair)
    if p is None:
        raise LocalEnvError("MirrorMaker 2 is not running")
    return p


def _broker_runs(pair: LocalPair, f: FaultSpec) -> None:
    _broker(pair, f)


def _replication_runs(pair: LocalPair, f: FaultSpec) -> None:
    _replication(pair)


# --- SIGSTOP / SIGCONT, for any process ---------------------------------------------


def _paused_proc(pair: LocalPair, f: Placed) -> Proc | None:
    return _broker_proc(pair, f.spec) if f.spec.kind == "broker-pause" else _replication_proc(pair)


def paused_pid(pair: LocalPair, f: Placed) -> int | None:
    """The pid a pause fault stops (looked up now), None when it does not run."""
    p = _paused_proc(pair, f)
    return p.pid if p is not None else None


def _stop(pair: LocalPair, f: Placed) -> None:
    pid = paused_pid(pair, f)
    if pid is None:
        raise LocalEnvError(f"{f.spec.describe()}: the process is not running")
    os.kill(pid, signal.SIGSTOP)


def _cont(pair: LocalPair, f: Placed) -> None:
    pid = paused_pid(pair, f)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _stopped(pair: LocalPair, f: Placed) -> bool:
    pid = paused_pid(pair, f)
    return pid is not None and kernel.process_state(pid) == "T"


def _state(pair: LocalPair, f: Placed) -> dict[str, Any]:
    pid = paused_pid(pair, f)
    return {"state": kernel.process_state(pid) if pid is not None else None}


# --- broker-kill / broker-pause -----------------------------------------------------


def _kill_broker(pair: LocalPair, f: Placed) -> None:
    pair.kill(_broker(pair, f.spec))


def _start_broker(pair: LocalPair, f: Placed) -> None:
    if _broker_proc(pair, f.spec) is None:
        pair.start_broker(pair.region(f.spec.region), f.spec.params["broker"])


def _broker_gone(pair: LocalPair, f: Placed) -> bool:
    return _broker_proc(pair, f.spec) is None


register(
    FaultKind(
        "broker-kill",
        "SIGKILL one broker; clearing restarts it on its data",
        params=BrokerParams,
        check=_broker_exists,
        local=Local(
            check=_broker_runs,
            act=_kill_broker,
            clear=_start_broker,
            present=_broker_gone,
            restarts=True,
            rank=1,
        ),
    )
)

register(
    FaultKind(
        "broker-pause",
        "SIGSTOP one broker; clearing sends SIGCONT",
        params=BrokerParams,
        check=_broker_exists,
        local=Local(
            check=_broker_runs,
            act=_stop,
            clear=_cont,
            present=_stopped,
            observe=_state,
        ),
    )
)


# --- replication-pause / replication-stop -------------------------------------------


def _start_replication(pair: LocalPair, f: Placed) -> None:
    if _replication_proc(pair) is None:
        pair.restart_replication()


def _replication_gone(pair: LocalPair, f: Placed) -> bool:
    return _replication_proc(pair) is None


register(
    FaultKind(
        "replication-pause",
        "SIGSTOP MirrorMaker 2; clearing sends SIGCONT",
        region="none",
        local=Local(
            check=_replication_runs,
            act=_stop,
            clear=_cont,
            present=_stopped,
            observe=_state,
        ),
    )
)

register(
    FaultKind(
        "replication-stop",
        "stop MirrorMaker 2; clearing starts it again",
        region="none",
        local=Local(
            check=_replication_runs,
            act=lambda pair, f: pair.kill(_replication(pair)),
            clear=_start_replication,
            present=_replication_gone,
            restarts=True,
            rank=2,  # last: started against an unreachable primary it can stall
        ),
    )
)

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
from components.faults.registry import FaultKind, Local, StackFacts, register
from components.local import kernel
from components.local import processes as procs
from components.local.errors import LocalEnvError

if TYPE_CHECKING:
    from components.faults.spec import FaultSpec
    from components.local.env import LocalPair
    from components.local.faults.ledger import Entry


class BrokerParams(Params):
    broker: int = Field(0, ge=0, le=4, description="node id")


def _broker_exists(f: FaultSpec, stack: StackFacts) -> None:
    """The node id must be one of the region's brokers (known when the stack is)."""
    n = (stack.brokers or {}).get(f.region or "")
    if n is not None and f.params["broker"] >= n:
        raise FaultError(
            f"{f.kind}: region {f.region} has brokers 0..{n - 1}, not {f.params['broker']}"
        )


def _broker(pair: LocalPair, f: FaultSpec):
    p = pair.find("broker", f.region, f.params["broker"])
    if p is None or not procs.alive(p.pid):
        raise LocalEnvError(f"broker {f.region}/{f.params['broker']} is not running")
    return p


def _replication(pair: LocalPair):
    p = pair.find("mirrormaker2", pair.standby.name)
    if p is None or not procs.alive(p.pid):
        raise LocalEnvError("MirrorMaker 2 is not running")
    return p


# --- SIGSTOP / SIGCONT, for any process ---------------------------------------------


def _stop(pair: LocalPair, e: Entry) -> None:
    os.kill(e.undo["paused_pid"], signal.SIGSTOP)


def _cont(pair: LocalPair, e: Entry) -> None:
    with contextlib.suppress(ProcessLookupError, KeyError):
        os.kill(e.undo["paused_pid"], signal.SIGCONT)


def _state(pair: LocalPair, e: Entry) -> dict[str, Any]:
    return {"state": kernel.process_state(e.undo["paused_pid"])}


# --- broker-kill / broker-pause -----------------------------------------------------


def _broker_label(pair: LocalPair, f: FaultSpec) -> dict[str, Any]:
    return {"killed": _broker(pair, f).label}


def _kill_broker(pair: LocalPair, e: Entry) -> None:
    pair.kill(_broker(pair, e.fault))


def _start_broker(pair: LocalPair, e: Entry) -> None:
    r, node = pair.region(e.fault.region), e.fault.params["broker"]
    running = pair.find("broker", r.name, node)
    if running is None or not procs.alive(running.pid):
        pair.start_broker(r, node)


register(
    FaultKind(
        "broker-kill",
        "SIGKILL one broker; clearing restarts it on its data",
        params=BrokerParams,
        check=_broker_exists,
        local=Local(
            plan=_broker_label, act=_kill_broker, clear=_start_broker, restarts=True, rank=1
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
            plan=lambda pair, f: {"paused_pid": _broker(pair, f).pid},
            act=_stop,
            clear=_cont,
            observe=_state,
        ),
    )
)


# --- replication-pause / replication-stop -------------------------------------------


def _start_replication(pair: LocalPair, e: Entry) -> None:
    if pair.find("mirrormaker2", pair.standby.name) is None:
        pair.restart_replication()


register(
    FaultKind(
        "replication-pause",
        "SIGSTOP MirrorMaker 2; clearing sends SIGCONT",
        region="none",
        local=Local(
            plan=lambda pair, f: {"paused_pid": _replication(pair).pid},
            act=_stop,
            clear=_cont,
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
            plan=lambda pair, f: {"killed": _replication(pair).label},
            act=lambda pair, e: pair.kill(_replication(pair)),
            clear=_start_replication,
            restarts=True,
            rank=2,  # last: started against an unreachable primary it can stall
        ),
    )
)

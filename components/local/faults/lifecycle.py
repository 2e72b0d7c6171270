"""Apply, clear, recover and observe faults on a running local pair.

Nothing here names a kind: what a kind does is its registry entry's `local`
behaviour (components.faults.registry.Local). The contract every kind keeps:
- `apply` resolves the spec, finds what clearing will need (`plan`) and writes the
  fault to the ledger with those facts *before* acting; it returns the ledger entry
  with `t_fault`, the monotonic instant the action completed;
- if acting fails half way, the fault is cleared from the recorded facts before the
  error is raised: a fault is either applied whole or not at all;
- `clear` is idempotent and works from the ledger entry alone, so `recover` in
  another process (after the applier was SIGKILLed mid-way) clears the same way.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from components.faults.errors import FaultError
from components.faults.registry import Local, get
from components.faults.spec import FaultSpec
from components.local.errors import LocalEnvError
from components.local.faults.ledger import Entry, Ledger
from components.local.faults.spec import validate

if TYPE_CHECKING:  # only its methods are called; importing it would make an import circle
    from components.local.env import LocalPair


def ledger(pair: LocalPair) -> Ledger:
    return Ledger(pair.dir)


def _local(kind: str) -> Local:
    local = get(kind, "local").local
    assert local is not None  # FaultKind guarantees it for kinds with the local target
    return local


def apply(pair: LocalPair, spec: FaultSpec, tag: str | None = None) -> Entry:
    """Resolve, plan, record, act. Returns the ledger entry (status applied, t_fault set).
    `tag` is the fault's key in the stack's drill-time config when the fault switch applies it."""
    spec = validate(spec, pair.cfg)
    if not pair.is_up():
        raise LocalEnvError(
            f"local pair {pair.cfg.prefix!r} is not up; run `kdrill local up` first"
        )
    local = _local(spec.kind)
    facts = local.plan(pair, spec)  # may refuse (e.g. the broker is not running): nothing done yet
    led = ledger(pair)
    entry = led.record(spec, undo=facts, tag=tag)
    try:
        t = local.act(pair, entry)
    except BaseException as err:
        with contextlib.suppress(Exception):  # undo whatever part was done
            local.clear(pair, entry)
        led.update(entry.id, status="failed", error=str(err)[:300], t_cleared=time.monotonic())
        raise
    t = t or time.monotonic()
    wall = time.time() - (time.monotonic() - t)
    return led.update(entry.id, status="applied", t_fault=t, t_fault_wall=wall)


def clear(pair: LocalPair, fault_id: str, teardown: bool = False) -> Entry:
    """Undo one fault. With `teardown` (the pair is about to be removed), a fault whose
    clearing would start processes again only gets its teardown step, if it has one."""
    led = ledger(pair)
    e = led.get(fault_id)
    if e is None:
        known = ", ".join(x.id for x in led.open_entries()) or "none applied"
        raise LocalEnvError(f"no fault {fault_id!r} in the ledger; applied: {known}")
    if e.status in ("cleared", "failed"):
        return e
    local = _local(e.fault.kind)
    if teardown and local.restarts:
        if local.teardown is not None:
            local.teardown(pair, e)
    else:
        local.clear(pair, e)
    return led.update(e.id, status="cleared", t_cleared=time.monotonic())


def recover(pair: LocalPair, teardown: bool = False) -> list[Entry]:
    """Clear every fault the ledger says may still be in effect.

    With `teardown`, processes a fault killed are not started again (the pair
    is about to be removed); everything else is cleared as usual.
    """
    return clear_many(pair, [e.id for e in ledger(pair).open_entries()], teardown)


def _rank(e: Entry) -> int:
    try:
        return _local(e.fault.kind).rank
    except FaultError:  # a kind no longer registered: `clear` reports it
        return 0


def clear_order(pair: LocalPair, fault_ids: list[str]) -> list[Entry]:
    """The ledger entries of `fault_ids` in the order `clear_many` clears them."""
    wanted = set(fault_ids)
    entries = [e for e in ledger(pair).entries() if e.id in wanted]
    return sorted(reversed(entries), key=_rank)


def clear_many(pair: LocalPair, fault_ids: list[str], teardown: bool = False) -> list[Entry]:
    """Clear several faults in an order where each restart finds what it depends on:
    newest first, then by the kinds' `rank` (restarting brokers after the network is
    back, MirrorMaker 2 last). Every fault is attempted; failures are reported together."""
    order = clear_order(pair, fault_ids)
    cleared, failed = [], []
    for e in order:
        try:
            cleared.append(clear(pair, e.id, teardown))
        except Exception as err:
            failed.append(f"{e.id} ({e.fault.describe()}): {str(err).splitlines()[0][:200]}")
    if failed:
        raise LocalEnvError(
            f"cleared {len(cleared)} fault(s) but not: {'; '.join(failed)}; run `kdrill recover` again"
        )
    return cleared


def observe(pair: LocalPair, e: Entry) -> dict[str, Any]:
    """What can be seen of an applied fault from outside right now."""
    return _local(e.fault.kind).observe(pair, e)

"""Apply, clear and observe each fault kind on a running local pair.

The contract every kind keeps:
- `apply` records the fault in the ledger *before* acting, returns the ledger
  entry with `t_fault`, the monotonic instant the action completed;
- if acting fails half way, what was done is cleared before the error is
  raised: a fault is either applied whole or not at all;
- `clear` is idempotent and works from the ledger entry alone, so `recover`
  in another process (after the applier was SIGKILLed) clears the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from components.local import cgroups, kafka, network, objectstore
from components.local import processes as procs
from components.local.env import LocalPair
from components.local.errors import LocalEnvError
from components.local.faults import kernel
from components.local.faults.ledger import Entry, Ledger
from components.local.faults.spec import FaultSpec, validate


def ledger(pair: LocalPair) -> Ledger:
    return Ledger(pair.dir)


# --- per-kind actions: (pair, entry) -> undo facts; clear(pair, entry) -------------------


def _other(pair: LocalPair, name: str):
    return next(r for r in pair.regions if r.name != name)


def _region_loss(pair: LocalPair, e: Entry) -> dict[str, Any]:
    r = pair.region(e.fault.region)
    a = _addresses(pair, r)
    for dev in (a.client_link, a.backbone_link):
        kernel.link_set(dev, up=False)
    # Reachability is gone once the links are down: that is T_fault. Killing the
    # processes after it makes the loss permanent (nothing replays when links return).
    t_fault = time.monotonic()
    killed = pair.kill_region(r.name)
    return {
        "links": [a.client_link, a.backbone_link],
        "killed": [p.label for p in killed],
        "_t_fault": t_fault,
    }


def _clear_region_loss(pair: LocalPair, e: Entry) -> None:
    for dev in e.undo.get("links", []):
        kernel.link_set(dev, up=True)
    pair.restore_region(e.fault.region)


def _partition(pair: LocalPair, e: Entry) -> dict[str, Any]:
    for r in pair.regions:
        peer = _other(pair, r.name).backbone_ip
        kernel.add_drop_table(
            r.namespace,
            e.id,
            [f'iifname "backbone" ip saddr {peer} counter drop'],
            [f'oifname "backbone" ip daddr {peer} counter drop'],
        )
    return {"namespaces": [r.namespace for r in pair.regions]}


def _clear_tables(pair: LocalPair, e: Entry) -> None:
    for ns in e.undo.get("namespaces", []):
        if ns in _namespaces():
            kernel.delete_table(ns, e.id)


def _packet_loss(pair: LocalPair, e: Entry) -> dict[str, Any]:
    r, link, pct = pair.region(e.fault.region), e.fault.link, e.fault.params["percent"]
    # numgen gives 0..9999: drop when below percent * 100 (0.01 % resolution)
    n = int(round(pct * 100))
    kernel.add_drop_table(
        r.namespace,
        e.id,
        [f'iifname "{link}" numgen random mod 10000 < {n} counter drop'],
        [f'oifname "{link}" numgen random mod 10000 < {n} counter drop'],
    )
    return {"namespaces": [r.namespace]}


def _bandwidth(pair: LocalPair, e: Entry) -> dict[str, Any]:
    r, p = pair.region(e.fault.region), e.fault.params
    kernel.set_tbf(r.namespace, e.fault.link, p["mbit"], p["burst_kb"])
    return {"namespace": r.namespace, "dev": e.fault.link}


def _clear_bandwidth(pair: LocalPair, e: Entry) -> None:
    if e.undo.get("namespace") in _namespaces():
        kernel.clear_qdisc(e.undo["namespace"], e.undo["dev"])


def _latency(pair: LocalPair, e: Entry) -> dict[str, Any]:
    pair.set_replication_latency(e.fault.params["ms"], e.fault.params["jitter_ms"])
    return {"restore_rtt_ms": pair.cfg.rtt_ms}


def _clear_latency(pair: LocalPair, e: Entry) -> None:
    with contextlib.suppress(Exception):  # toxiproxy gone with its region: nothing to restore
        pair.set_replication_latency(e.undo.get("restore_rtt_ms", pair.cfg.rtt_ms))


def _blackhole(pair: LocalPair, e: Entry) -> dict[str, Any]:
    r = pair.region(e.fault.region)
    if e.fault.params["endpoint"] == "s3":
        ports = str(objectstore.PORT)
    else:
        ports = "{" + ", ".join(str(kafka.CLIENT_PORT + b.node_id) for b in r.brokers) + "}"
    # Drop clients' packets both ways, silently: a blocked endpoint times out, it does not
    # refuse, and no response already on its way gets out (what fencing relies on).
    kernel.add_drop_table(
        r.namespace,
        e.id,
        [f'iifname "client" tcp dport {ports} counter drop'],
        [f'oifname "client" tcp sport {ports} counter drop'],
    )
    return {"namespaces": [r.namespace]}


def _broker_kill(pair: LocalPair, e: Entry) -> dict[str, Any]:
    p = _broker(pair, e)
    pair.kill(p)
    return {"killed": p.label}


def _clear_broker_kill(pair: LocalPair, e: Entry) -> None:
    r, node = pair.region(e.fault.region), e.fault.params["broker"]
    running = pair.find("broker", r.name, node)
    if running is None or not procs.alive(running.pid):
        pair.start_broker(r, node)
        pair._write_state("up")


def _broker(pair: LocalPair, e: Entry):
    p = pair.find("broker", e.fault.region, e.fault.params["broker"])
    if p is None or not procs.alive(p.pid):
        raise LocalEnvError(f"broker {e.fault.region}/{e.fault.params['broker']} is not running")
    return p


def _pause(pid: int) -> dict[str, Any]:
    os.kill(pid, signal.SIGSTOP)
    return {"paused_pid": pid}


def _clear_pause(pair: LocalPair, e: Entry) -> None:
    with contextlib.suppress(ProcessLookupError, KeyError):
        os.kill(e.undo["paused_pid"], signal.SIGCONT)


def _replication_process(pair: LocalPair):
    p = pair.find("mirrormaker2", pair.standby.name)
    if p is None or not procs.alive(p.pid):
        raise LocalEnvError("MirrorMaker 2 is not running")
    return p


def _replication_stop(pair: LocalPair, e: Entry) -> dict[str, Any]:
    pair.kill(_replication_process(pair))
    return {}


def _clear_replication_stop(pair: LocalPair, e: Entry) -> None:
    if pair.find("mirrormaker2", pair.standby.name) is None:
        pair.restart_replication()


def _cpu_squeeze(pair: LocalPair, e: Entry) -> dict[str, Any]:
    r = pair.region(e.fault.region)
    cgroups.set_quota(r.cgroup, e.fault.params["cores"])
    return {"cgroup": r.cgroup, "restore_cores": r.spec.cpu_cores}


def _clear_cpu_squeeze(pair: LocalPair, e: Entry) -> None:
    if cgroups.exists(e.undo["cgroup"]):
        cgroups.set_quota(e.undo["cgroup"], e.undo["restore_cores"])


Action = Callable[[LocalPair, Entry], dict[str, Any]]
Clear = Callable[[LocalPair, Entry], None]

ACTIONS: dict[str, tuple[Action, Clear]] = {
    "region-loss": (_region_loss, _clear_region_loss),
    "partition": (_partition, _clear_tables),
    "packet-loss": (_packet_loss, _clear_tables),
    "bandwidth": (_bandwidth, _clear_bandwidth),
    "latency": (_latency, _clear_latency),
    "blackhole": (_blackhole, _clear_tables),
    "broker-kill": (_broker_kill, _clear_broker_kill),
    "broker-pause": (lambda pair, e: _pause(_broker(pair, e).pid), _clear_pause),
    "replication-pause": (lambda pair, e: _pause(_replication_process(pair).pid), _clear_pause),
    "replication-stop": (_replication_stop, _clear_replication_stop),
    "cpu-squeeze": (_cpu_squeeze, _clear_cpu_squeeze),
}


# --- the public trio -----------------------------------------------------------------------


def apply(pair: LocalPair, spec: FaultSpec) -> Entry:
    """Validate, record, act. Returns the ledger entry (status applied, t_fault set)."""
    spec = validate(spec, pair.cfg)
    if not pair.is_up():
        raise LocalEnvError(
            f"local pair {pair.cfg.prefix!r} is not up; run `kdrill local up` first"
        )
    led = ledger(pair)
    entry = led.record(spec)
    action, _ = ACTIONS[spec.kind]
    try:
        undo = action(pair, entry)
    except BaseException as err:
        # Undo whatever part was done, with what clearing needs recorded so far.
        _safe_clear(pair, led.update(entry.id, undo=_guess_undo(pair, entry)))
        led.update(entry.id, status="failed", error=str(err)[:300], t_cleared=time.monotonic())
        raise
    t = undo.pop("_t_fault", None) or time.monotonic()  # an action may know its instant better
    wall = time.time() - (time.monotonic() - t)
    return led.update(entry.id, status="applied", undo=undo, t_fault=t, t_fault_wall=wall)


# Kinds whose clearing starts processes again: pointless when the pair is being torn down.
RESTARTS = {"region-loss", "broker-kill", "replication-stop"}


def clear(pair: LocalPair, fault_id: str, teardown: bool = False) -> Entry:
    led = ledger(pair)
    e = led.get(fault_id)
    if e is None:
        known = ", ".join(x.id for x in led.open_entries()) or "none applied"
        raise LocalEnvError(f"no fault {fault_id!r} in the ledger; applied: {known}")
    if e.status in ("cleared", "failed"):
        return e
    if teardown and e.fault.kind in RESTARTS:
        if e.fault.kind == "region-loss":  # root-side links are deleted anyway; set them up first
            for dev in e.undo.get("links", []):
                kernel.link_set(dev, up=True)
    else:
        ACTIONS[e.fault.kind][1](pair, e)
    return led.update(e.id, status="cleared", t_cleared=time.monotonic())


def recover(pair: LocalPair, teardown: bool = False) -> list[Entry]:
    """Clear every fault the ledger says may still be in effect.

    With `teardown`, processes a fault killed are not started again (the pair
    is about to be removed); everything else is cleared as usual.
    """
    return clear_many(pair, [e.id for e in ledger(pair).open_entries()], teardown)


def clear_many(pair: LocalPair, fault_ids: list[str], teardown: bool = False) -> list[Entry]:
    """Clear several faults in an order where each restart finds what it depends on:
    newest first, but faults whose clearing restarts brokers after the rest, and
    MirrorMaker 2 last (started against an unreachable primary it can stall).
    Every fault is attempted; failures are reported together at the end."""
    rank = {"region-loss": 1, "broker-kill": 1, "replication-stop": 2}
    entries = [e for e in ledger(pair).entries() if e.id in set(fault_ids)]
    order = sorted(reversed(entries), key=lambda e: rank.get(e.fault.kind, 0))
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
    f = e.fault
    if f.kind in ("partition", "packet-loss", "blackhole"):
        return {
            ns: kernel.dropped(ns, e.id)
            for ns in e.undo.get("namespaces", [])
            if ns in _namespaces()
        }
    if f.kind == "bandwidth":
        return {"qdisc": kernel.qdisc(e.undo["namespace"], e.undo["dev"])}
    if f.kind == "latency":
        return {"rtt_jitter_ms": pair.latency_proxy.latency(pair.replication_proxies()[0])}
    if f.kind == "cpu-squeeze":
        return {"cores": cgroups.quota_cores(e.undo["cgroup"])}
    if f.kind in ("broker-pause", "replication-pause"):
        return {"state": procs._state(e.undo["paused_pid"])}
    if f.kind == "region-loss":
        return {dev: "up" if kernel.link_is_up(dev) else "down" for dev in e.undo.get("links", [])}
    return {}


def _safe_clear(pair: LocalPair, e: Entry) -> None:
    with contextlib.suppress(Exception):
        ACTIONS[e.fault.kind][1](pair, e)


def _guess_undo(pair: LocalPair, e: Entry) -> dict[str, Any]:
    """Undo facts for a fault whose action failed before returning them: the
    most it could have touched (clearing tolerates what is not there)."""
    f = e.fault
    region = pair.region(f.region) if f.region else None
    facts: dict[str, Any] = {"namespaces": [r.namespace for r in pair.regions]}
    if region is not None:
        a = _addresses(pair, region)
        facts.update(links=[a.client_link, a.backbone_link], namespace=region.namespace,
                     dev=f.link or "backbone", cgroup=region.cgroup, restore_cores=region.spec.cpu_cores)  # fmt: skip
    facts["restore_rtt_ms"] = pair.cfg.rtt_ms
    return facts


def _addresses(pair: LocalPair, r) -> network.RegionAddresses:
    return network.addresses(pair.cfg, r.spec)


def _namespaces() -> set[str]:
    return network.namespaces()

"""Apply, clear, sweep, recover and observe faults on a running local pair -- with no file.

Nothing here names a kind: what a kind does is its registry entry's `local` behaviour
(components.faults.registry.Local), given the fault as placed (`Placed`: its spec and its
key). The record of a fault is not kept here:
- a stack fault is its entry in the stack's drill-time config (`kdrill:faults`, key ->
  spec), written by kdrill before the fault switch's update applies it;
- a direct fault (the drill's fence, the replication stop at cutover) is recorded in the
  drill's journal and kept in memory by whoever applied it (`DIRECT` here, for this
  process); its key starts with `direct-`, so its nftables table is told apart from the
  stack's.
What is applied is read from the live system (`present`); what nothing wants any more is
found by `sweep`, one effect class at a time (pair-named nft tables, links down, tbf
qdiscs, CPU quotas, stopped processes, toxiproxy latency, dead daemons), so `recover`
works after any process was SIGKILLed at any point, from nothing but the pair's config.

The contract every kind keeps:
- `apply` resolves the spec and asks the kind whether it can be applied (`check`) before
  touching anything; it returns `Applied` with `t_fault`, the monotonic instant the
  action completed;
- if acting fails half way, the fault is cleared before the error is raised: a fault is
  either applied whole or not at all;
- `clear` is idempotent and works from (spec, key) alone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.faults.errors import FaultError
from components.faults.registry import DIRECT_PREFIX, Local, Placed, get
from components.faults.spec import FaultSpec
from components.local import cgroups, kernel, network
from components.local.errors import LocalEnvError
from components.local.faults.spec import validate

if TYPE_CHECKING:  # only its methods are called; importing it would make an import circle
    from components.local.env import LocalPair

DIRECT: dict[str, Placed] = {}
"""The direct faults this process applied and has not cleared: key -> Placed."""

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Applied:
    """A fault just applied: where it sits (key, spec) and when it took effect."""

    key: str
    spec: FaultSpec
    t_fault: float  # CLOCK_MONOTONIC: the action completed
    t_fault_wall: float

    @property
    def id(self) -> str:
        return self.key

    @property
    def fault(self) -> FaultSpec:
        return self.spec

    @property
    def status(self) -> str:
        return "applied"

    @property
    def placed(self) -> Placed:
        return Placed(self.spec, self.key)


def _local(kind: str) -> Local:
    local = get(kind, "local").local
    assert local is not None  # FaultKind guarantees it for kinds with the local target
    return local


def direct_key(spec: FaultSpec) -> str:
    """A new key for a direct fault: unique across processes (the pid) and within one."""
    return f"{DIRECT_PREFIX}{spec.kind}-{os.getpid()}-{next(_numbers)}"


def place(pair: LocalPair, spec: FaultSpec | dict[str, Any], key: str) -> Placed:
    """The fault `key` with its spec resolved against the pair (defaults filled in, numbers
    that came back from the engine as floats made ints again)."""
    if isinstance(spec, dict):
        spec = FaultSpec.from_dict(dict(spec))
    return Placed(validate(spec, pair.cfg), key)


def apply(
    pair: LocalPair, spec: FaultSpec, key: str | None = None, direct: bool | None = None
) -> Applied:
    """Resolve, check, act. `key`: the fault's key in the stack's drill-time config when
    the fault switch applies it; without one it is a direct fault, kept in `DIRECT` (a
    caller that records a direct fault before applying it passes its `direct_key` and
    `direct=True`)."""
    spec = validate(spec, pair.cfg)
    if not pair.is_up():
        raise LocalEnvError(
            f"local pair {pair.cfg.prefix!r} is not up; run `kdrill local up` first"
        )
    local = _local(spec.kind)
    local.check(pair, spec)  # may refuse (e.g. the broker is not running): nothing done yet
    direct = key is None if direct is None else direct
    f = Placed(spec, key or direct_key(spec))
    if direct:
        DIRECT[f.key] = f  # before acting: a half-done apply is still this process's to clear
    try:
        if direct:
            # its mark on the live pair, before acting: an empty table named for the key (a
            # drop kind's own table replaces it), so a stack update's sweep leaves it alone
            _mark(pair, f)
        t = local.act(pair, f)
    except BaseException:
        with contextlib.suppress(Exception):  # undo whatever part was done
            _clear(pair, f)
        DIRECT.pop(f.key, None)
        raise
    t = t or time.monotonic()
    return Applied(f.key, spec, t, time.time() - (time.monotonic() - t))


def _placed(fault: Applied | Placed | str) -> Placed:
    if isinstance(fault, Applied):
        return fault.placed
    if isinstance(fault, Placed):
        return fault
    if fault in DIRECT:
        return DIRECT[fault]
    known = ", ".join(DIRECT) or "none"
    raise LocalEnvError(f"no fault {fault!r} applied by this process; direct faults: {known}")


def clear(pair: LocalPair, fault: Applied | Placed | str, teardown: bool = False) -> Placed:
    """Undo one fault (given as applied, as placed, or by the key of a direct fault this
    process applied). With `teardown` (the pair is about to be removed), a fault whose
    clearing would start processes again only gets its teardown step, if it has one."""
    f = _placed(fault)
    local = _local(f.spec.kind)
    if teardown and local.restarts:
        if local.teardown is not None:
            local.teardown(pair, f)
        if f.direct:
            _unmark(pair, f)
    else:
        _clear(pair, f)
    DIRECT.pop(f.key, None)
    return f


def _clear(pair: LocalPair, f: Placed) -> None:
    _local(f.spec.kind).clear(pair, f)
    if f.direct:
        _unmark(pair, f)


def marker_namespace(pair: LocalPair, f: Placed) -> str:
    """Where a direct fault's mark goes: its region's namespace, else the primary's."""
    return pair.region(f.spec.region or pair.primary.name).namespace


def _mark(pair: LocalPair, f: Placed) -> None:
    kernel.add_marker_table(marker_namespace(pair, f), f.key)


def _unmark(pair: LocalPair, f: Placed) -> None:
    ns = marker_namespace(pair, f)
    if ns in network.namespaces():
        kernel.delete_table(ns, f.key)


def direct_kinds(pair: LocalPair) -> set[str]:
    """The kinds of the direct faults marked on the pair (read from their tables' names:
    `kdrill_direct_<kind>_<pid>_<n>`)."""
    from components.faults.registry import names

    prefix = kernel.table_name(DIRECT_PREFIX)
    known = sorted(names("local"), key=len, reverse=True)
    found: set[str] = set()
    namespaces = network.namespaces()
    for r in pair.regions:
        if r.namespace not in namespaces:
            continue
        for t in kernel.fault_tables(r.namespace):
            if t.startswith(prefix):
                rest = t[len(prefix) :]
                kind = next((k for k in known if rest.startswith(k.replace("-", "_") + "_")), None)
                if kind is not None:
                    found.add(kind)
    return found


def rank(f: Placed) -> int:
    try:
        return _local(f.spec.kind).rank
    except FaultError:  # a kind no longer registered: `clear` reports it
        return 0


def clear_order(faults: list[Placed]) -> list[Placed]:
    """`faults` (oldest first) in the order `clear_many` clears them: newest first, then
    by the kinds' `rank` (brokers restarted after the network is back, MirrorMaker 2 last)."""
    return sorted(reversed(faults), key=rank)


def clear_many(
    pair: LocalPair, faults: list[Applied | Placed | str], teardown: bool = False
) -> list[Placed]:
    """Clear several faults in `clear_order`. Every fault is attempted; failures are
    reported together."""
    cleared, failed = [], []
    for f in clear_order([_placed(x) for x in faults]):
        try:
            cleared.append(clear(pair, f, teardown))
        except Exception as err:
            failed.append(f"{f.describe()}: {str(err).splitlines()[0][:200]}")
    if failed:
        raise LocalEnvError(
            f"cleared {len(cleared)} fault(s) but not: {'; '.join(failed)}; run `kdrill recover`"
        )
    return cleared


def present(pair: LocalPair, f: Placed) -> bool:
    """Whether the fault is in effect now, as the live system shows it."""
    return _local(f.spec.kind).present(pair, f)


def observe(pair: LocalPair, f: Applied | Placed) -> dict[str, Any]:
    """What can be seen of an applied fault from outside right now."""
    f = _placed(f)
    return _local(f.spec.kind).observe(pair, f)


# --- the sweep: what nothing wants any more, one effect class at a time ----------------


def sweep(
    pair: LocalPair, keep: list[Placed] = (), keep_direct: bool = True, restart: bool = True
) -> list[str]:
    """Clear every fault effect on the pair that the faults in `keep` (and, with
    `keep_direct`, the direct faults whose tables exist) do not account for; one line per
    thing done. With `restart`, daemons that are not running are started again (network
    first, then brokers, object stores and toxiproxy, MirrorMaker 2 last), unless a kept
    fault killed them; without it (the pair is about to be removed) nothing is started."""
    from components.faults.builtin import capacity
    from components.faults.builtin import network as net_kinds
    from components.faults.builtin import processes as proc_kinds

    done: list[str] = []
    kinds: dict[str, list[Placed]] = {}
    for f in keep:
        kinds.setdefault(f.spec.kind, []).append(f)
    namespaces = network.namespaces()
    regions = [r for r in pair.regions if r.namespace in namespaces]

    # Direct faults (a drill's fence and replication stop) are marked by tables named for
    # their keys; with `keep_direct`, every effect class a marked kind acts in is left alone.
    held = direct_kinds(pair) if keep_direct else set()

    # nftables: tables named for a fault that is not kept
    kept_tables = {kernel.table_name(f.key) for f in keep}
    direct = kernel.table_name(DIRECT_PREFIX)
    for r in regions:
        for t in kernel.fault_tables(r.namespace):
            if t in kept_tables or (keep_direct and t.startswith(direct)):
                continue
            if kernel.delete_table_named(r.namespace, t):
                done.append(f"deleted nft table {t} in {r.namespace}")

    # links: down and not a kept region loss
    lost = {f.spec.region for f in kinds.get("region-loss", [])}
    links = network.links()
    for r in pair.regions:
        if r.name in lost or "region-loss" in held:
            continue
        for dev in net_kinds.region_links(pair, r.name):
            if dev in links and not kernel.link_is_up(dev):
                kernel.link_set(dev, up=True)
                done.append(f"link {dev} up")

    # tc: a tbf qdisc not a kept bandwidth limit
    limited = {(f.spec.region, f.spec.link) for f in kinds.get("bandwidth", [])}
    for r in regions:
        for dev in ("client", "backbone"):
            if "bandwidth" in held or (r.name, dev) in limited:
                continue
            if "tbf" in kernel.qdisc(r.namespace, dev):
                kernel.clear_qdisc(r.namespace, dev)
                done.append(f"removed the tbf qdisc on {r.namespace}/{dev}")

    # cgroups: a quota other than the config's and not a kept squeeze
    squeezed = {f.spec.region for f in kinds.get("cpu-squeeze", [])}
    for r in pair.regions:
        if r.name in squeezed or "cpu-squeeze" in held or not cgroups.exists(r.cgroup):
            continue
        if not capacity.same_quota(cgroups.quota_cores(r.cgroup), r.spec.cpu_cores):
            cgroups.set_quota(r.cgroup, r.spec.cpu_cores)
            done.append(f"CPU quota of {r.name} back to {r.spec.cpu_cores:g} cores")

    # processes: stopped (SIGSTOP) and not a kept pause
    paused = {proc_kinds.paused_pid(pair, f) for k in ("broker-pause", "replication-pause")
              for f in kinds.get(k, [])}  # fmt: skip
    for r in pair.regions if not held & {"broker-pause", "replication-pause"} else []:
        for pid in cgroups.procs(r.cgroup) if cgroups.exists(r.cgroup) else []:
            if pid not in paused and kernel.process_state(pid) == "T":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                    done.append(f"SIGCONT to process {pid} in {r.name}")

    # toxiproxy: a latency other than the config's and not a kept latency fault
    if (
        not kinds.get("latency")
        and "latency" not in held
        and pair.registry.running("toxiproxy", pair.standby.name)
    ):
        now = net_kinds.latency_now(pair)
        if now is not None and now != net_kinds.latency_as_set(pair.cfg.rtt_ms):
            pair.set_replication_latency(pair.cfg.rtt_ms)
            done.append(f"replication latency back to {pair.cfg.rtt_ms:g} ms")

    if restart and pair.is_up() and not held & {"region-loss", "broker-kill"}:
        done += _revive(pair, kinds, lost, "replication-stop" in held)
    return done


def _revive(
    pair: LocalPair, kinds: dict[str, list[Placed]], lost: set[str], held_replication: bool
) -> list[str]:
    """Start the daemons that are not running and no kept fault killed, in dependency
    order; wait until each serves."""
    from components.local import kafka, objectstore, toxiproxy

    done: list[str] = []
    reg = pair.registry
    killed = {(f.spec.region, f.spec.params["broker"]) for f in kinds.get("broker-kill", [])}
    deadline = time.monotonic() + 120
    namespaces = network.namespaces()
    for r in pair.regions:
        if r.name in lost or r.namespace not in namespaces:
            continue
        wanted = [b.node_id for b in r.brokers if (r.name, b.node_id) not in killed]
        started = [n for n in wanted if not reg.running("broker", r.name, n)]
        for n in started:
            pair.start_broker(r, n)
        s3 = not reg.running("s3", r.name)
        if s3:
            reg.start(r, "s3", objectstore.argv())
        proxy = r.role == "standby" and not reg.running("toxiproxy", r.name)
        if proxy:
            reg.start(r, "toxiproxy", toxiproxy.argv(r.client_ip))
        if started:
            kafka.wait_ready(r.bootstrap, len(wanted), deadline, reg.check_alive)
            done.append(f"restarted broker(s) {', '.join(map(str, started))} of {r.name}")
        if s3:
            objectstore.wait_ready(r.s3_endpoint, deadline, reg.check_alive)
            objectstore.create_buckets(r.s3_endpoint, r.spec.aws_region, r.spec.buckets)
            done.append(f"restarted the S3 endpoint of {r.name}")
        if proxy:
            pair.replication.start_proxies(deadline)
            done.append(f"restarted toxiproxy in {r.name}")
    held = (
        held_replication
        or bool(kinds.get("replication-stop"))
        or bool(lost)  # started against a lost region MirrorMaker 2 only stalls
    )
    if not held and not reg.running("mirrormaker2", pair.standby.name):
        pair.replication.start(deadline)
        done.append("restarted MirrorMaker 2")
    if done:
        reg.set_phase("up")
    return done


def recover(pair: LocalPair, teardown: bool = False) -> list[str]:
    """Clear every fault effect on the pair, stack or direct, by anyone: a sweep that keeps
    nothing. With `teardown` (the pair is about to be removed) nothing is started again."""
    done = sweep(pair, [], keep_direct=False, restart=not teardown)
    DIRECT.clear()
    return done


def leftovers(pair: LocalPair) -> list[str]:
    """Fault effects still on the pair (what `recover` would clear), without clearing."""
    left: list[str] = []
    namespaces = network.namespaces()
    links = network.links()
    for r in pair.regions:
        if r.namespace in namespaces:
            left += [f"nft table {t} in {r.namespace}" for t in kernel.fault_tables(r.namespace)]
            for dev in ("client", "backbone"):
                if "tbf" in kernel.qdisc(r.namespace, dev):
                    left.append(f"tbf qdisc on {r.namespace}/{dev}")
        a = network.addresses(pair.cfg, r.spec)
        for dev in (a.client_link, a.backbone_link):
            if dev in links and not kernel.link_is_up(dev):
                left.append(f"link {dev} down")
        if cgroups.exists(r.cgroup):
            for pid in cgroups.procs(r.cgroup):
                if kernel.process_state(pid) == "T":
                    left.append(f"process {pid} in {r.name} stopped")
    return left

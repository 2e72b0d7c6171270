"""Network faults on the local pair: links down, nftables drops, a tc rate limit, latency.

Every drop gets an nftables table of its own named after the fault's key, so clearing
is deleting that table: idempotent, and no other fault's rules are touched. Whether a
fault is in effect is read from the live system: the table, the qdisc, the link state,
toxiproxy's latency.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from components.faults.params import Params
from components.faults.registry import FaultKind, Local, Placed, register
from components.local import kernel, network

if TYPE_CHECKING:
    from components.faults.spec import FaultSpec
    from components.local.env import LocalPair

LOCAL_AND_AWS = frozenset({"local", "aws"})


def _present(namespaces: list[str]) -> list[str]:
    """The namespaces that still exist (a torn-down region took its rules with it)."""
    existing = network.namespaces()
    return [ns for ns in namespaces if ns in existing]


def table_namespaces(pair: LocalPair, f: FaultSpec) -> list[str]:
    """Where a drop fault puts its table: its region's namespace, or both for a kind
    acting between the regions."""
    if f.region is None:
        return [r.namespace for r in pair.regions]
    return [pair.region(f.region).namespace]


def clear_tables(pair: LocalPair, f: Placed) -> None:
    for ns in _present(table_namespaces(pair, f.spec)):
        kernel.delete_table(ns, f.key)


def tables_present(pair: LocalPair, f: Placed) -> bool:
    name = kernel.table_name(f.key)
    return any(name in kernel.tables(ns) for ns in _present(table_namespaces(pair, f.spec)))


def observe_drops(pair: LocalPair, f: Placed) -> dict[str, Any]:
    return {ns: kernel.dropped(ns, f.key) for ns in _present(table_namespaces(pair, f.spec))}


# --- region-loss --------------------------------------------------------------------


def region_links(pair: LocalPair, region: str) -> list[str]:
    """The root-side ends of a region's client and backbone links."""
    a = network.addresses(pair.cfg, pair.region(region).spec)
    return [a.client_link, a.backbone_link]


def _region_loss(pair: LocalPair, f: Placed) -> float:
    for dev in region_links(pair, f.spec.region):
        kernel.link_set(dev, up=False)
    # Reachability is gone once the links are down: that is T_fault. Killing the
    # processes after it makes the loss permanent (nothing replays when links return).
    t_fault = time.monotonic()
    pair.kill_region(f.spec.region)
    return t_fault


def _links_up(pair: LocalPair, f: Placed) -> None:
    existing = network.links()
    for dev in region_links(pair, f.spec.region):
        if dev in existing:
            kernel.link_set(dev, up=True)


def _restore_region(pair: LocalPair, f: Placed) -> None:
    _links_up(pair, f)
    pair.restore_region(f.spec.region)


def _region_lost(pair: LocalPair, f: Placed) -> bool:
    existing = network.links()
    devs = [d for d in region_links(pair, f.spec.region) if d in existing]
    return bool(devs) and not any(kernel.link_is_up(d) for d in devs)


def _links_seen(pair: LocalPair, f: Placed) -> dict[str, Any]:
    return {
        dev: "up" if kernel.link_is_up(dev) else "down" for dev in region_links(pair, f.spec.region)
    }


register(
    FaultKind(
        "region-loss",
        "the region's links down and all its processes killed",
        targets=LOCAL_AND_AWS,
        local=Local(
            act=_region_loss,
            clear=_restore_region,
            present=_region_lost,
            observe=_links_seen,
            restarts=True,
            teardown=_links_up,  # root-side links are deleted anyway; set them up first
            rank=1,
        ),
    )
)


# --- partition ----------------------------------------------------------------------


def _partition(pair: LocalPair, f: Placed) -> None:
    for r in pair.regions:
        peer = next(x for x in pair.regions if x.name != r.name).backbone_ip
        kernel.add_drop_table(
            r.namespace,
            f.key,
            [f'iifname "backbone" ip saddr {peer} counter drop'],
            [f'oifname "backbone" ip daddr {peer} counter drop'],
        )


register(
    FaultKind(
        "partition",
        "the replication path (backbone) cut; both regions stay up for clients",
        region="none",
        local=Local(
            act=_partition, clear=clear_tables, present=tables_present, observe=observe_drops
        ),
    )
)


# --- packet-loss --------------------------------------------------------------------


class PacketLossParams(Params):
    percent: float = Field(ge=0.1, le=100, description="share of packets dropped, each direction")


def _packet_loss(pair: LocalPair, f: Placed) -> None:
    r, link = pair.region(f.spec.region), f.spec.link
    n = int(round(f.spec.params["percent"] * 100))  # numgen gives 0..9999: 0.01 % resolution
    kernel.add_drop_table(
        r.namespace,
        f.key,
        [f'iifname "{link}" numgen random mod 10000 < {n} counter drop'],
        [f'oifname "{link}" numgen random mod 10000 < {n} counter drop'],
    )


register(
    FaultKind(
        "packet-loss",
        "random drop of a percentage of packets on a region's link (nftables numgen)",
        link=True,
        params=PacketLossParams,
        local=Local(
            act=_packet_loss, clear=clear_tables, present=tables_present, observe=observe_drops
        ),
    )
)


# --- bandwidth ----------------------------------------------------------------------


class BandwidthParams(Params):
    mbit: float = Field(ge=0.01, le=10_000, description="rate in Mbit/s")
    burst_kb: int = Field(32, ge=2, le=100_000, description="bucket size in KiB")


def _bandwidth(pair: LocalPair, f: Placed) -> None:
    p = f.spec.params
    kernel.set_tbf(pair.region(f.spec.region).namespace, f.spec.link, p["mbit"], p["burst_kb"])


def _clear_bandwidth(pair: LocalPair, f: Placed) -> None:
    ns = pair.region(f.spec.region).namespace
    if _present([ns]):
        kernel.clear_qdisc(ns, f.spec.link)


def _qdisc_seen(pair: LocalPair, f: Placed) -> dict[str, Any]:
    ns = pair.region(f.spec.region).namespace
    return {"qdisc": kernel.qdisc(ns, f.spec.link) if _present([ns]) else ""}


def _limited(pair: LocalPair, f: Placed) -> bool:
    return "tbf" in _qdisc_seen(pair, f)["qdisc"]


register(
    FaultKind(
        "bandwidth",
        "a token-bucket rate limit on a region's link, egress (tc tbf)",
        link=True,
        params=BandwidthParams,
        local=Local(act=_bandwidth, clear=_clear_bandwidth, present=_limited, observe=_qdisc_seen),
    )
)


# --- latency ------------------------------------------------------------------------


class LatencyParams(Params):
    ms: float = Field(ge=0, le=60_000, description="round trip in ms")
    jitter_ms: float = Field(0, ge=0, le=60_000, description="jitter in ms")


def _latency(pair: LocalPair, f: Placed) -> None:
    pair.set_replication_latency(f.spec.params["ms"], f.spec.params["jitter_ms"])


def _clear_latency(pair: LocalPair, f: Placed) -> None:
    with contextlib.suppress(Exception):  # toxiproxy gone with its region: nothing to restore
        pair.set_replication_latency(pair.cfg.rtt_ms)


def _latency_seen(pair: LocalPair, f: Placed) -> dict[str, Any]:
    return {"rtt_jitter_ms": pair.latency_proxy.latency(pair.replication_proxies()[0])}


def latency_now(pair: LocalPair) -> tuple[int, int] | None:
    """(round trip, jitter) toxiproxy adds on the replication path, None when it does not
    answer (its region is down)."""
    try:
        return pair.latency_proxy.latency(pair.replication_proxies()[0])
    except Exception:
        return None


def latency_as_set(rtt_ms: float, jitter_ms: float = 0) -> tuple[int, int]:
    """What `latency_now` reads back after setting (rtt, jitter): half each way, whole ms."""
    return 2 * int(rtt_ms / 2), 2 * int(jitter_ms / 2)


def _latency_present(pair: LocalPair, f: Placed) -> bool:
    p = f.spec.params
    return latency_now(pair) == latency_as_set(p["ms"], p["jitter_ms"])


register(
    FaultKind(
        "latency",
        "the round trip on the replication path, set through toxiproxy (replaces the default)",
        region="none",
        params=LatencyParams,
        local=Local(
            act=_latency, clear=_clear_latency, present=_latency_present, observe=_latency_seen
        ),
    )
)


# --- blackhole ----------------------------------------------------------------------


class BlackholeParams(Params):
    endpoint: Literal["kafka", "s3"] = Field(
        "kafka", description="the endpoint blocked: the brokers' client ports or S3"
    )


def _blackhole(pair: LocalPair, f: Placed) -> None:
    # imported here: the registry is read by the Pulumi program and drill specs too,
    # which need neither Kafka's client library nor boto3
    from components.local import kafka, objectstore

    r = pair.region(f.spec.region)
    if f.spec.params["endpoint"] == "s3":
        ports = str(objectstore.PORT)
    else:
        ports = "{" + ", ".join(str(kafka.CLIENT_PORT + b.node_id) for b in r.brokers) + "}"
    # Drop clients' packets both ways, silently: a blocked endpoint times out, it does not
    # refuse, and no response already on its way gets out (what fencing relies on).
    kernel.add_drop_table(
        r.namespace,
        f.key,
        [f'iifname "client" tcp dport {ports} counter drop'],
        [f'oifname "client" tcp sport {ports} counter drop'],
    )


register(
    FaultKind(
        "blackhole",
        "silently drop clients' packets to a region endpoint (a blocked private endpoint)",
        params=BlackholeParams,
        targets=LOCAL_AND_AWS,
        local=Local(
            act=_blackhole, clear=clear_tables, present=tables_present, observe=observe_drops
        ),
    )
)

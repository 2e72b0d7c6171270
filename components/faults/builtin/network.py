"""Network faults on the local pair: links down, nftables drops, a tc rate limit, latency.

Every drop gets an nftables table of its own named after the fault's ledger id, so
clearing is deleting that table: idempotent, and no other fault's rules are touched.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from components.faults.params import Params
from components.faults.registry import FaultKind, Local, register
from components.local import kernel, network

if TYPE_CHECKING:
    from components.faults.spec import FaultSpec
    from components.local.env import LocalPair
    from components.local.faults.ledger import Entry

LOCAL_AND_AWS = frozenset({"local", "aws"})


def _present(namespaces: list[str]) -> list[str]:
    """The namespaces that still exist (a torn-down region took its rules with it)."""
    existing = network.namespaces()
    return [ns for ns in namespaces if ns in existing]


def clear_tables(pair: LocalPair, e: Entry) -> None:
    for ns in _present(e.undo.get("namespaces", [])):
        kernel.delete_table(ns, e.id)


def observe_drops(pair: LocalPair, e: Entry) -> dict[str, Any]:
    return {ns: kernel.dropped(ns, e.id) for ns in _present(e.undo.get("namespaces", []))}


def in_region(pair: LocalPair, f: FaultSpec) -> dict[str, Any]:
    """Undo facts of a drop inside the fault's region: its namespace."""
    return {"namespaces": [pair.region(f.region).namespace]}


# --- region-loss --------------------------------------------------------------------


def _region_links(pair: LocalPair, f: FaultSpec) -> dict[str, Any]:
    r = pair.region(f.region)
    a = network.addresses(pair.cfg, r.spec)
    return {"links": [a.client_link, a.backbone_link]}


def _region_loss(pair: LocalPair, e: Entry) -> float:
    for dev in e.undo["links"]:
        kernel.link_set(dev, up=False)
    # Reachability is gone once the links are down: that is T_fault. Killing the
    # processes after it makes the loss permanent (nothing replays when links return).
    t_fault = time.monotonic()
    pair.kill_region(e.fault.region)
    return t_fault


def _links_up(pair: LocalPair, e: Entry) -> None:
    for dev in e.undo.get("links", []):
        kernel.link_set(dev, up=True)


def _restore_region(pair: LocalPair, e: Entry) -> None:
    _links_up(pair, e)
    pair.restore_region(e.fault.region)


def _links_seen(pair: LocalPair, e: Entry) -> dict[str, Any]:
    return {dev: "up" if kernel.link_is_up(dev) else "down" for dev in e.undo.get("links", [])}


register(
    FaultKind(
        "region-loss",
        "the region's links down and all its processes killed",
        targets=LOCAL_AND_AWS,
        local=Local(
            plan=_region_links,
            act=_region_loss,
            clear=_restore_region,
            observe=_links_seen,
            restarts=True,
            teardown=_links_up,  # root-side links are deleted anyway; set them up first
            rank=1,
        ),
    )
)


# --- partition ----------------------------------------------------------------------


def _both_regions(pair: LocalPair, f: FaultSpec) -> dict[str, Any]:
    return {"namespaces": [r.namespace for r in pair.regions]}


def _partition(pair: LocalPair, e: Entry) -> None:
    for r in pair.regions:
        peer = next(x for x in pair.regions if x.name != r.name).backbone_ip
        kernel.add_drop_table(
            r.namespace,
            e.id,
            [f'iifname "backbone" ip saddr {peer} counter drop'],
            [f'oifname "backbone" ip daddr {peer} counter drop'],
        )


register(
    FaultKind(
        "partition",
        "the replication path (backbone) cut; both regions stay up for clients",
        region="none",
        local=Local(plan=_both_regions, act=_partition, clear=clear_tables, observe=observe_drops),
    )
)


# --- packet-loss --------------------------------------------------------------------


class PacketLossParams(Params):
    percent: float = Field(ge=0.1, le=100, description="share of packets dropped, each direction")


def _packet_loss(pair: LocalPair, e: Entry) -> None:
    r, link = pair.region(e.fault.region), e.fault.link
    n = int(round(e.fault.params["percent"] * 100))  # numgen gives 0..9999: 0.01 % resolution
    kernel.add_drop_table(
        r.namespace,
        e.id,
        [f'iifname "{link}" numgen random mod 10000 < {n} counter drop'],
        [f'oifname "{link}" numgen random mod 10000 < {n} counter drop'],
    )


register(
    FaultKind(
        "packet-loss",
        "random drop of a percentage of packets on a region's link (nftables numgen)",
        link=True,
        params=PacketLossParams,
        local=Local(plan=in_region, act=_packet_loss, clear=clear_tables, observe=observe_drops),
    )
)


# --- bandwidth ----------------------------------------------------------------------


class BandwidthParams(Params):
    mbit: float = Field(ge=0.01, le=10_000, description="rate in Mbit/s")
    burst_kb: int = Field(32, ge=2, le=100_000, description="bucket size in KiB")


def _qdisc_at(pair: LocalPair, f: FaultSpec) -> dict[str, Any]:
    return {"namespace": pair.region(f.region).namespace, "dev": f.link}


def _bandwidth(pair: LocalPair, e: Entry) -> None:
    p = e.fault.params
    kernel.set_tbf(e.undo["namespace"], e.undo["dev"], p["mbit"], p["burst_kb"])


def _clear_bandwidth(pair: LocalPair, e: Entry) -> None:
    if _present([e.undo.get("namespace", "")]):
        kernel.clear_qdisc(e.undo["namespace"], e.undo["dev"])


def _qdisc_seen(pair: LocalPair, e: Entry) -> dict[str, Any]:
    return {"qdisc": kernel.qdisc(e.undo["namespace"], e.undo["dev"])}


register(
    FaultKind(
        "bandwidth",
        "a token-bucket rate limit on a region's link, egress (tc tbf)",
        link=True,
        params=BandwidthParams,
        local=Local(plan=_qdisc_at, act=_bandwidth, clear=_clear_bandwidth, observe=_qdisc_seen),
    )
)


# --- latency ------------------------------------------------------------------------


class LatencyParams(Params):
    ms: float = Field(ge=0, le=60_000, description="round trip in ms")
    jitter_ms: float = Field(0, ge=0, le=60_000, description="jitter in ms")


def _rtt_before(pair: LocalPair, f: FaultSpec) -> dict[str, Any]:
    return {"restore_rtt_ms": pair.cfg.rtt_ms}


def _latency(pair: LocalPair, e: Entry) -> None:
    pair.set_replication_latency(e.fault.params["ms"], e.fault.params["jitter_ms"])


def _clear_latency(pair: LocalPair, e: Entry) -> None:
    with contextlib.suppress(Exception):  # toxiproxy gone with its region: nothing to restore
        pair.set_replication_latency(e.undo.get("restore_rtt_ms", pair.cfg.rtt_ms))


def _latency_seen(pair: LocalPair, e: Entry) -> dict[str, Any]:
    return {"rtt_jitter_ms": pair.latency_proxy.latency(pair.replication_proxies()[0])}


register(
    FaultKind(
        "latency",
        "the round trip on the replication path, set through toxiproxy (replaces the default)",
        region="none",
        params=LatencyParams,
        local=Local(plan=_rtt_before, act=_latency, clear=_clear_latency, observe=_latency_seen),
    )
)


# --- blackhole ----------------------------------------------------------------------


class BlackholeParams(Params):
    endpoint: Literal["kafka", "s3"] = Field(
        "kafka", description="the endpoint blocked: the brokers' client ports or S3"
    )


def _blackhole(pair: LocalPair, e: Entry) -> None:
    # imported here: the registry is read by the Pulumi program and drill specs too,
    # which need neither Kafka's client library nor boto3
    from components.local import kafka, objectstore

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


register(
    FaultKind(
        "blackhole",
        "silently drop clients' packets to a region endpoint (a blocked private endpoint)",
        params=BlackholeParams,
        targets=LOCAL_AND_AWS,
        local=Local(plan=in_region, act=_blackhole, clear=clear_tables, observe=observe_drops),
    )
)

"""offset-sync-stall: MirrorMaker 2's offset syncs cut while its records keep flowing.

MirrorMaker 2 writes offset syncs (upstream offset -> downstream offset, per partition) into
`mm2-offset-syncs.<target>.internal` in the SOURCE cluster: its only Produce requests to the
source, over the source's REPLICATION listener (the backbone). Records are fetched from the
source and written to the target; checkpoints, heartbeats and Connect's own topics live in
the target. So dropping, in the source region, the backbone packets to the replication
ports whose TCP payload starts a Kafka request with api_key 0 (Produce) stalls the offset
syncs' connection and nothing else: the checkpoint task keeps translating committed offsets
through the last sync that landed, which after a failover puts each group back at
`last sync's downstream offset + 1` (KIP-545's conservative translation).

Matching is on the payload's first bytes (`@ih`, nftables' inner-header base: the bytes
after the TCP header, whatever its options' length): a Kafka request is int32 size, int16
api_key, ... A segment that does not start a request carries no header to match; the
producer's stalled connection retransmits the dropped segment (dropped again) until its
request times out, then reconnects (ApiVersions, SASL, Metadata pass) and its next Produce
is dropped again. The table is named for the fault's key, like every drop fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.faults.builtin.network import clear_tables, observe_drops, tables_present
from components.faults.registry import FaultKind, Local, Placed, register
from components.local import kernel

if TYPE_CHECKING:
    from components.local.env import LocalPair

PRODUCE_API_KEY = 0


def replication_ports(pair: LocalPair, region: str) -> str:
    """The region's brokers' REPLICATION listener ports, as an nftables set."""
    from components.local import kafka  # the registry is read where Kafka's client is absent

    r = pair.region(region)
    return "{" + ", ".join(str(kafka.REPLICATION_PORT + b.node_id) for b in r.brokers) + "}"


def stall_rule(ports: str) -> str:
    """Drop a backbone packet to the replication ports whose payload starts a Produce request
    (bytes 4-5 of the payload: the request header's api_key)."""
    return f'iifname "backbone" tcp dport {ports} @ih,32,16 {PRODUCE_API_KEY} counter drop'


def _stall(pair: LocalPair, f: Placed) -> None:
    r = pair.region(f.spec.region)
    kernel.add_drop_table(r.namespace, f.key, [stall_rule(replication_ports(pair, r.name))], [])


def _observe(pair: LocalPair, f: Placed) -> dict[str, Any]:
    return {"dropped_produce_packets": observe_drops(pair, f)}


register(
    FaultKind(
        "offset-sync-stall",
        "drop MirrorMaker 2's Produce requests to the source region (its offset syncs); "
        "records keep replicating",
        local=Local(act=_stall, clear=clear_tables, present=tables_present, observe=_observe),
    )
)

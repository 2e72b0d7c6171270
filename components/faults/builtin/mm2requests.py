"""MirrorMaker 2 stalls: one kind of MirrorMaker 2's requests to the source region dropped.

MirrorMaker 2 reaches the source cluster over its REPLICATION listener (the backbone). Each
of its clients there sends its own kinds of Kafka request, so dropping, in the source
region, the backbone packets to the replication ports whose TCP payload starts a request
with one api_key stalls one of its jobs and leaves the others running:

- `offset-sync-stall`: Produce (api_key 0). The only thing MirrorMaker 2 produces to the
  source is its offset syncs (`mm2-offset-syncs.<target>.internal`: upstream offset ->
  downstream offset per partition); records are fetched, and checkpoints, heartbeats and
  Connect's own topics go to the target. Records keep replicating; the checkpoint task
  keeps translating committed offsets through the last sync that landed, so after a
  failover each group resumes at `that sync's downstream offset + 1`.
- `topic-refresh-stall`: DescribeTopicPartitions (api_key 75), which the source connector's
  admin client sends on each topic refresh (`refresh.topics.interval.seconds`); consumers
  use Metadata (3) and Fetch (1), untouched. Records of the partitions MirrorMaker 2 knows
  keep replicating; partitions or topics created meanwhile are not picked up -- what
  MirrorMaker 2's default 600 s refresh interval does for up to ten minutes (the local stack
  refreshes every 2 s, so the stall stands for that default).

Matching is on the payload's first bytes (`@ih`, nftables' inner-header base: the bytes
after the TCP header, whatever its options' length): a Kafka request is int32 size, int16
api_key, ... A segment that does not start a request has no header to match; a stalled
connection retransmits the dropped segment (dropped again) until the client's request
times out, then reconnects (ApiVersions, SASL, Metadata pass) and the next request of that
kind is dropped again. The table is named for the fault's key, like every drop fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.faults.builtin.network import clear_tables, observe_drops, tables_present
from components.faults.registry import FaultKind, Local, Placed, register
from components.local import kernel

if TYPE_CHECKING:
    from components.local.env import LocalPair

PRODUCE, DESCRIBE_TOPIC_PARTITIONS = 0, 75


def replication_ports(pair: LocalPair, region: str) -> str:
    """The region's brokers' REPLICATION listener ports, as an nftables set."""
    from components.local import kafka  # the registry is read where Kafka's client is absent

    r = pair.region(region)
    return "{" + ", ".join(str(kafka.REPLICATION_PORT + b.node_id) for b in r.brokers) + "}"


def request_drop_rule(ports: str, api_key: int) -> str:
    """Drop a backbone packet to the replication ports whose payload starts a request with
    `api_key` (payload bytes 4-5: the request header's api_key)."""
    return f'iifname "backbone" tcp dport {ports} @ih,32,16 {api_key} counter drop'


def _dropping(api_key: int):
    def act(pair: LocalPair, f: Placed) -> None:
        r = pair.region(f.spec.region)
        rule = request_drop_rule(replication_ports(pair, r.name), api_key)
        kernel.add_drop_table(r.namespace, f.key, [rule], [])

    return act


def _observe(pair: LocalPair, f: Placed) -> dict[str, Any]:
    return {"dropped_requests": observe_drops(pair, f)}


register(
    FaultKind(
        "offset-sync-stall",
        "drop MirrorMaker 2's Produce requests to the source region (its offset syncs); "
        "records keep replicating",
        local=Local(
            act=_dropping(PRODUCE), clear=clear_tables, present=tables_present, observe=_observe
        ),
    )
)

register(
    FaultKind(
        "topic-refresh-stall",
        "drop MirrorMaker 2's topic refreshes at the source region (DescribeTopicPartitions): "
        "new partitions and topics are not picked up; known ones keep replicating",
        local=Local(
            act=_dropping(DESCRIBE_TOPIC_PARTITIONS),
            clear=clear_tables,
            present=tables_present,
            observe=_observe,
        ),
    )
)

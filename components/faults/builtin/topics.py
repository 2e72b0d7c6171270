"""Topic changes during steady state: partitions added to a replicated topic.

MirrorMaker 2 learns a source topic's partitions when it refreshes its topic list
(`refresh.topics.interval.seconds`, 2 s on the local stack, 600 s by default) and then
reconfigures its tasks; until then records the producers write to the new partitions are
acknowledged by the source and never replicated: a coverage gap that a region loss in that
window turns into loss nobody's lag metric showed (MirrorMaker 2's lag covers the
partitions it knows). The drill finds it from its history (drills/coverage.py).

Partitions cannot be removed: clearing lets go of the fault (its marker table) but the
topic keeps them; the drill's topic is its own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import Field

from components.faults.builtin.network import clear_tables, tables_present
from components.faults.params import Params
from components.faults.registry import FaultKind, Local, Placed, register
from components.local import kernel
from components.local.errors import LocalEnvError

if TYPE_CHECKING:
    from components.local.env import LocalPair


class PartitionsAddParams(Params):
    topic: str = Field(min_length=1, max_length=249, description="the source topic")
    partitions: int = Field(ge=2, le=1000, description="its partition count afterwards")


def partition_count(pair: LocalPair, region: str, topic: str) -> int | None:
    """The topic's partitions in the region now; None when it does not exist there."""
    from components.local import kafka  # the registry is read where Kafka's client is absent

    t = kafka.admin(pair.region(region).bootstrap).list_topics(topic, timeout=10).topics.get(topic)
    return None if t is None or t.error is not None else len(t.partitions)


def _add(pair: LocalPair, f: Placed) -> float:
    from confluent_kafka.admin import NewPartitions

    from components.local import kafka

    region, p = f.spec.region, f.spec.params
    have = partition_count(pair, region, p["topic"])
    if have is None:
        raise LocalEnvError(f"partitions-add: topic {p['topic']} does not exist in {region}")
    if have < p["partitions"]:
        a = kafka.admin(pair.region(region).bootstrap)
        a.create_partitions([NewPartitions(p["topic"], p["partitions"])])[p["topic"]].result(30)
    t_fault = time.monotonic()
    kernel.add_marker_table(pair.region(region).namespace, f.key)
    return t_fault


def _observe(pair: LocalPair, f: Placed) -> dict[str, Any]:
    return {"partitions": partition_count(pair, f.spec.region, f.spec.params["topic"])}


register(
    FaultKind(
        "partitions-add",
        "add partitions to a topic of the region (MirrorMaker 2 replicates them only after "
        "its next topic refresh)",
        params=PartitionsAddParams,
        local=Local(act=_add, clear=clear_tables, present=tables_present, observe=_observe),
    )
)

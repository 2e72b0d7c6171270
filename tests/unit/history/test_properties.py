"""Property tests: random drills, with the expected figures derived independently in the test.

hypothesis draws a drill from composite strategies: a primary history (keys
over partitions, acknowledged and indeterminate sends, transaction-marker
gaps), a replication cut per partition (sometimes with a record dropped, a
log start above 0 and copies made after E), post-cutover writes, and consumer
groups that read a prefix of the primary, commit part of it and resume
somewhere in the standby. ``record`` turns the drawn drill into a history
for the checker; ``oracle`` recomputes RPO, lost records, duplicates and
skips from the definitions in DESIGN.md with plain Python over the drawn
rows, never calling the checker's code. A failure shrinks to a minimal drill
and is replayed first on the next run (hypothesis's example database).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drills.history import (
    DUPLICATE,
    LATE,
    LOST_INTERIOR,
    LOST_TAIL,
    SKIPPED,
    SPLIT_BRAIN,
    DrillMeta,
    History,
    HistoryBuilder,
    Instants,
    ReplicationPolicy,
    TopicMapping,
    check,
)

PRIMARY, STANDBY, TOPIC = "east", "west", "orders"
T_FAULT = 100.0
GROUPS = ("g1", "g2")
# Each example is a full check (~10-35 ms): 400 keep tests/unit/history near 10 s on 2 busy cores.
MAX_EXAMPLES = 400


@dataclass
class Drill:
    meta: DrillMeta
    partitions: int
    sends: list[dict]  # every send, with its primary partition and offset (None: not stored)
    standby: dict[int, list[tuple[int, dict]]] = field(default_factory=dict)  # replicated
    end: dict[int, int] = field(default_factory=dict)  # E, snapshotted at cutover
    log_end: dict[int, int] = field(default_factory=dict)  # standby's next offset after MM2
    local: dict[int, list[tuple[int, dict]]] = field(default_factory=dict)  # post-cutover
    groups: dict[str, dict[int, dict]] = field(default_factory=dict)  # group -> partition -> state

    def primary_log(self, partition: int) -> list[dict]:
        stored = (s for s in self.sends if s["partition"] == partition and s["offset"] is not None)
        return sorted(stored, key=lambda s: s["offset"])


def rarely(draw, percent: int) -> bool:
    """True with probability ``percent``/100; shrinks to False."""
    return draw(st.integers(0, 99)) >= 100 - percent


def _ident(s: dict) -> dict:
    return {k: s[k] for k in ("producer", "key", "seq", "gseq")}


@st.composite
def primary_histories(draw, producers: list[str], keys: list[str], partitions: int) -> list[dict]:
    """Sends to the primary before the cutover: acknowledged, or indeterminate (stored or not)."""
    sends: list[dict] = []
    next_offset = [0] * partitions
    seqs = {(p, k): 0 for p in producers for k in keys}
    gseqs = dict.fromkeys(producers, 0)
    t = 90.0
    for _ in range(draw(st.integers(0, 40))):
        t += draw(st.floats(0.1, 0.6))
        producer, key = draw(st.sampled_from(producers)), draw(st.sampled_from(keys))
        partition = keys.index(key) % partitions
        acked = not rarely(draw, 15)
        stored = acked or draw(st.booleans())
        offset = None
        if stored:
            next_offset[partition] += draw(st.sampled_from([0, 0, 1, 2]))  # transaction markers
            offset = next_offset[partition]
            next_offset[partition] += 1
        sends.append(
            {
                "producer": producer,
                "key": key,
                "seq": seqs[(producer, key)],
                "gseq": gseqs[producer],
                "partition": partition,
                "offset": offset,
                "acked": acked,
                "ack_time": t + draw(st.floats(0.01, 0.5)) if acked else None,
                "time": t,
            }
        )
        seqs[(producer, key)] += 1
        gseqs[producer] += 1
    return sends


@st.composite
def replications(draw, log: list[dict]) -> tuple[list[tuple[int, dict]], int, int]:
    """The standby's copy of one primary partition: (offset, send) rows, E, and the log end.

    A prefix of the primary log up to a random cut, maybe with an interior
    hole, from a log start above 0 (retention) with transaction-marker gaps;
    then E; then maybe a copy or two made after E (MM2 stopped late).
    """
    cut = draw(st.integers(0, len(log)))
    copied = log[:cut]
    if len(copied) > 2 and rarely(draw, 30):
        copied.pop(draw(st.integers(0, len(copied) - 2)))  # an interior hole
    offset = draw(st.integers(0, 3))  # log start after retention
    rows = []
    for s in copied:
        offset += draw(st.sampled_from([0, 0, 1]))
        rows.append((offset, s))
        offset += 1
    end = offset
    for s in log[cut : cut + draw(st.sampled_from([0, 0, 1, 2]))]:
        rows.append((offset, s))
        offset += 1
    return rows, end, offset


@st.composite
def post_cutover_writes(draw, drill: Drill, producers: list[str], keys: list[str]) -> None:
    """Writes acknowledged by the standby after the cutover, into drill.local."""
    seqs = {(p, k): 0 for p in producers for k in keys}
    gseqs = dict.fromkeys(producers, 0)
    for s in drill.sends:
        seqs[(s["producer"], s["key"])] = s["seq"] + 1
        gseqs[s["producer"]] = s["gseq"] + 1
    identity = drill.meta.mapping.policy is ReplicationPolicy.IDENTITY
    # Identity replication: local writes share the partition, above the replicated copies.
    next_offset = {p: drill.log_end[p] if identity else 0 for p in range(drill.partitions)}
    drill.local = {p: [] for p in range(drill.partitions)}
    for _ in range(draw(st.integers(0, 4))):
        producer, key = draw(st.sampled_from(producers)), draw(st.sampled_from(keys))
        partition = keys.index(key) % drill.partitions
        ident = {
            "producer": producer,
            "key": key,
            "seq": seqs[(producer, key)],
            "gseq": gseqs[producer],
        }
        seqs[(producer, key)] += 1
        gseqs[producer] += 1
        drill.local[partition].append((next_offset[partition], ident))
        next_offset[partition] += 1


@st.composite
def consumptions(draw, log: list[dict], standby_rows: list[tuple[int, dict]]) -> dict:
    """One group on one partition: a prefix of the primary read, maybe a commit, a resume point."""
    read = log[: draw(st.integers(0, len(log)))]
    committed = None
    if read and not rarely(draw, 20):
        committed = draw(st.sampled_from(read))["offset"] + 1
    highest = max((o for o, _ in standby_rows), default=0) + 1
    return {
        "read": read,
        "committed": committed,
        "commit_time": draw(st.floats(95.0, 99.9)),
        "resume": draw(st.integers(0, highest)),
        "source": draw(st.sampled_from(["synced", "checkpoint", "reset"])),
    }


@st.composite
def drills(draw) -> Drill:
    policy = draw(st.sampled_from(list(ReplicationPolicy)))
    t_fence = draw(st.floats(100.0, 104.0))
    meta = DrillMeta(
        primary=PRIMARY,
        standby=STANDBY,
        topics=(TOPIC,),
        groups=GROUPS,
        mapping=TopicMapping(policy=policy, source_alias=PRIMARY),
        instants=Instants(T_FAULT, 101.0, 102.0, t_fence, 105.0),
    )
    partitions = draw(st.integers(1, 2))
    keys = [f"k{i}" for i in range(draw(st.integers(1, 4)))]
    producers = ["p1", "p2"][: draw(st.integers(1, 2))]
    drill = Drill(meta, partitions, draw(primary_histories(producers, keys, partitions)))
    for partition in range(partitions):
        rows, end, log_end = draw(replications(drill.primary_log(partition)))
        drill.standby[partition], drill.end[partition], drill.log_end[partition] = (
            rows,
            end,
            log_end,
        )
    draw(post_cutover_writes(drill, producers, keys))
    for group in GROUPS:
        drill.groups[group] = {
            partition: draw(consumptions(drill.primary_log(partition), drill.standby[partition]))
            for partition in range(partitions)
        }
    return drill


def record(drill: Drill) -> History:
    """The drawn drill as the engine would have recorded it."""
    b = HistoryBuilder()
    replicated_topic = drill.meta.mapping.replicated(TOPIC)
    for s in drill.sends:
        where = {"cluster": PRIMARY, "topic": TOPIC}
        if s["offset"] is not None:
            b.logged(**_ident(s), **where, partition=s["partition"], offset=s["offset"])
        if s["acked"]:
            b.ack(
                **_ident(s),
                **where,
                partition=s["partition"],
                offset=s["offset"],
                send_time=s["time"],
                ack_time=s["ack_time"],
            )
        else:
            b.send(**_ident(s), **where, send_time=s["time"])
    for partition in range(drill.partitions):
        b.end_offset(
            cluster=STANDBY,
            topic=replicated_topic,
            partition=partition,
            end_offset=drill.end[partition],
        )
    for i, (partition, offset, ident) in enumerate(
        (p, o, ident) for p, rows in drill.local.items() for o, ident in rows
    ):
        b.ack(
            **ident,
            cluster=STANDBY,
            topic=TOPIC,
            partition=partition,
            offset=offset,
            send_time=106.0 + i,
            ack_time=106.1 + i,
        )
    for partition, rows in drill.standby.items():
        for offset, s in rows:
            b.logged(
                **_ident(s),
                cluster=STANDBY,
                topic=replicated_topic,
                partition=partition,
                offset=offset,
            )
    for partition, rows in drill.local.items():
        for offset, ident in rows:
            b.logged(**ident, cluster=STANDBY, topic=TOPIC, partition=partition, offset=offset)
    for group, state in drill.groups.items():
        for partition, st_ in state.items():
            for s in st_["read"]:
                b.read(
                    group,
                    **_ident(s),
                    cluster=PRIMARY,
                    topic=TOPIC,
                    partition=partition,
                    offset=s["offset"],
                    produced_at=s["time"],
                    poll_time=s["time"] + 0.1,
                )
            if st_["committed"] is not None:
                b.commit(
                    group,
                    cluster=PRIMARY,
                    topic=TOPIC,
                    partition=partition,
                    offset=st_["committed"],
                    time=st_["commit_time"],
                )
            b.resume(
                group,
                cluster=STANDBY,
                topic=replicated_topic,
                partition=partition,
                source=st_["source"],
                position=st_["resume"],
            )
            for offset, s in drill.standby[partition]:
                if offset >= st_["resume"]:
                    b.read(
                        group,
                        **_ident(s),
                        cluster=STANDBY,
                        topic=replicated_topic,
                        partition=partition,
                        offset=offset,
                        produced_at=s["time"],
                        poll_time=108.0,
                    )
    return b.build(drill.meta)


def oracle(drill: Drill) -> dict:
    """The expected figures, straight from the definitions in DESIGN.md."""
    t_fence = drill.meta.instants.t_fence
    below = {
        (s["producer"], s["gseq"])
        for p, rows in drill.standby.items()
        for offset, s in rows
        if offset < drill.end[p]
    }
    late = sum(
        1 for p, rows in drill.standby.items() for offset, _ in rows if offset >= drill.end[p]
    )
    lost = [
        s
        for s in drill.sends
        if s["acked"] and s["ack_time"] <= t_fence and (s["producer"], s["gseq"]) not in below
    ]
    present_seqs: dict[tuple[str, str], list[int]] = {}
    for s in drill.sends:
        if (s["producer"], s["gseq"]) in below:
            present_seqs.setdefault((s["producer"], s["key"]), []).append(s["seq"])
    interior = [
        s for s in lost if max(present_seqs.get((s["producer"], s["key"]), [-1])) > s["seq"]
    ]
    split_brain = [s for s in drill.sends if s["acked"] and s["ack_time"] > t_fence]
    continuity = {}
    for group, state in drill.groups.items():
        for partition, st_ in state.items():
            rows = drill.standby[partition]
            offsets = sorted(o for o, _ in rows)
            if drill.meta.mapping.policy is ReplicationPolicy.IDENTITY:
                # Post-cutover writes share the partition: they are records a resume can skip.
                offsets = sorted(offsets + [o for o, _ in drill.local[partition]])
            owed = [
                o
                for o, s in rows
                if st_["committed"] is not None and s["offset"] < st_["committed"]
            ]
            ideal = max(owed) + 1 if owed else (offsets[0] if offsets else 0)
            resume = st_["resume"]
            processed = {(s["producer"], s["gseq"]) for s in st_["read"]}
            continuity[(group, partition)] = {
                "ideal": ideal,
                "duplicates": sum(1 for o in offsets if resume <= o < ideal),
                "skipped": sum(1 for o in offsets if ideal <= o < resume),
                "duplicates_processed": sum(
                    1 for o, s in rows if o >= resume and (s["producer"], s["gseq"]) in processed
                ),
            }
    return {
        "rpo": len(lost),
        "rpo_seconds": T_FAULT - min(s["ack_time"] for s in lost) if lost else 0.0,
        "lost_tail": len(lost) - len(interior),
        "lost_interior": len(interior),
        "late": late,
        "split_brain": len(split_brain),
        "indeterminate": sum(1 for s in drill.sends if not s["acked"]),
        "continuity": continuity,
    }


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(drills())
def test_checker_agrees_with_the_definitions(drill):
    expected = oracle(drill)
    result = check(record(drill))
    rpo = result.rpo
    assert rpo.records == expected["rpo"]
    assert rpo.seconds == pytest.approx(expected["rpo_seconds"])
    assert (rpo.late_replicated, rpo.split_brain, rpo.indeterminate) == (
        expected["late"],
        expected["split_brain"],
        expected["indeterminate"],
    )
    counted = {
        name: sum(getattr(c, "count", 1) for c in cases) for name, cases in result.anomalies.items()
    }
    assert counted[LOST_TAIL] == expected["lost_tail"]
    assert counted[LOST_INTERIOR] == expected["lost_interior"]
    assert counted[LATE] == expected["late"]
    assert counted[SPLIT_BRAIN] == expected["split_brain"]
    assert counted[DUPLICATE] == 0
    replicated_topic = drill.meta.mapping.replicated(TOPIC)
    got = {
        (c.group, c.partition): {
            "ideal": c.ideal,
            "duplicates": c.duplicates,
            "skipped": c.skipped,
            "duplicates_processed": c.duplicates_processed,
        }
        for c in result.continuity
        if c.topic == replicated_topic and c.role == "replicated"
    }
    assert got == expected["continuity"]
    assert counted[SKIPPED] == sum(c["skipped"] for c in expected["continuity"].values())

"""Property tests: random drills, with the expected figures derived independently in the test.

Each seed generates a primary history (keys over partitions, acknowledged and
indeterminate sends, transaction-marker gaps), a random replication cut per
partition (sometimes with a record dropped or copied late), post-cutover
writes, and consumer groups with random commits and resume points. The
oracle below recomputes RPO, lost records, duplicates and skips from the
definitions with plain Python over the generated rows, never calling the
checker's code.

hypothesis is not a dependency of the project, so seeds are enumerated with
the standard library's random; a failing seed reproduces exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from drills.history import (
    DUPLICATE,
    LATE,
    LOST_INTERIOR,
    LOST_TAIL,
    SKIPPED,
    SPLIT_BRAIN,
    DrillMeta,
    HistoryBuilder,
    Instants,
    ReplicationPolicy,
    TopicMapping,
    check,
)

PRIMARY, STANDBY, TOPIC = "east", "west", "orders"
T_FAULT = 100.0


@dataclass
class Drill:
    builder: HistoryBuilder
    meta: DrillMeta
    sends: list[dict] = field(default_factory=list)  # every send, with its primary offset if stored
    standby: dict[int, list[tuple[int, dict]]] = field(default_factory=dict)  # replicated
    local: dict[int, list[tuple[int, dict]]] = field(default_factory=dict)  # post-cutover
    end: dict[int, int] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)


def generate(seed: int) -> Drill:
    rng = random.Random(seed)
    policy = rng.choice(list(ReplicationPolicy))
    mapping = TopicMapping(policy=policy, source_alias=PRIMARY)
    replicated_topic = mapping.replicated(TOPIC)
    t_fence = rng.uniform(100.0, 104.0)
    meta = DrillMeta(
        primary=PRIMARY,
        standby=STANDBY,
        topics=(TOPIC,),
        groups=("g1", "g2"),
        mapping=mapping,
        instants=Instants(T_FAULT, 101.0, 102.0, t_fence, 105.0),
    )
    b = HistoryBuilder()
    drill = Drill(b, meta)
    partitions = rng.randint(1, 2)
    keys = [f"k{i}" for i in range(rng.randint(1, 4))]
    producers = ["p1", "p2"][: rng.randint(1, 2)]
    next_offset = {p: 0 for p in range(partitions)}
    seqs = {(p, k): 0 for p in producers for k in keys}
    gseqs = dict.fromkeys(producers, 0)
    t = 90.0
    for _ in range(rng.randint(0, 40)):
        t += rng.uniform(0.1, 0.6)
        producer, key = rng.choice(producers), rng.choice(keys)
        partition = keys.index(key) % partitions
        ident = {
            "producer": producer,
            "key": key,
            "seq": seqs[(producer, key)],
            "gseq": gseqs[producer],
        }
        seqs[(producer, key)] += 1
        gseqs[producer] += 1
        acked = rng.random() < 0.85
        stored = acked or rng.random() < 0.5
        offset = None
        if stored:
            next_offset[partition] += rng.choice([0, 0, 1, 2])  # transaction markers
            offset = next_offset[partition]
            next_offset[partition] += 1
            b.logged(**ident, cluster=PRIMARY, topic=TOPIC, partition=partition, offset=offset)
        ack_time = t + rng.uniform(0.01, 0.5)
        if acked:
            b.ack(
                **ident,
                cluster=PRIMARY,
                topic=TOPIC,
                partition=partition,
                offset=offset,
                send_time=t,
                ack_time=ack_time,
            )
        else:
            b.send(**ident, cluster=PRIMARY, topic=TOPIC, send_time=t)
        drill.sends.append(
            {
                **ident,
                "partition": partition,
                "offset": offset,
                "acked": acked,
                "ack_time": ack_time if acked else None,
                "time": t,
            }
        )

    # Replication: a prefix of each primary partition, maybe with a hole, then E, then maybe late copies.
    standby_next = {}
    for partition in range(partitions):
        log = sorted(
            (s for s in drill.sends if s["partition"] == partition and s["offset"] is not None),
            key=lambda s: s["offset"],
        )
        cut = rng.randint(0, len(log))
        copied = log[:cut]
        if len(copied) > 2 and rng.random() < 0.3:
            copied.pop(rng.randrange(len(copied) - 1))  # an interior hole
        standby_next[partition] = rng.randint(0, 3)  # log start after retention
        drill.standby[partition] = []
        for s in copied:
            standby_next[partition] += rng.choice([0, 0, 1])
            drill.standby[partition].append((standby_next[partition], s))
            standby_next[partition] += 1
        drill.end[partition] = standby_next[partition]
        b.end_offset(
            cluster=STANDBY,
            topic=replicated_topic,
            partition=partition,
            end_offset=drill.end[partition],
        )
        for s in log[cut : cut + rng.choice([0, 0, 1, 2])]:  # MM2 stopped late
            drill.standby[partition].append((standby_next[partition], s))
            standby_next[partition] += 1

    # Post-cutover writes, acknowledged by the standby.
    drill.local = {p: [] for p in range(partitions)}
    local_next = {
        p: standby_next[p] if policy is ReplicationPolicy.IDENTITY else 0 for p in range(partitions)
    }
    for i in range(rng.randint(0, 4)):
        producer, key = rng.choice(producers), rng.choice(keys)
        partition = keys.index(key) % partitions
        ident = {
            "producer": producer,
            "key": key,
            "seq": seqs[(producer, key)],
            "gseq": gseqs[producer],
        }
        seqs[(producer, key)] += 1
        gseqs[producer] += 1
        offset = local_next[partition]
        local_next[partition] += 1
        b.ack(
            **ident,
            cluster=STANDBY,
            topic=TOPIC,
            partition=partition,
            offset=offset,
            send_time=106.0 + i,
            ack_time=106.1 + i,
        )
        drill.local[partition].append((offset, ident))
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

    # Consumers: read a prefix of the primary, commit part of it, resume somewhere in the standby.
    for group in meta.groups:
        state = {}
        for partition in range(partitions):
            log = sorted(
                (s for s in drill.sends if s["partition"] == partition and s["offset"] is not None),
                key=lambda s: s["offset"],
            )
            read = log[: rng.randint(0, len(log))]
            for s in read:
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
            committed = None
            if read and rng.random() < 0.8:
                committed = rng.choice(read)["offset"] + 1
                b.commit(
                    group,
                    cluster=PRIMARY,
                    topic=TOPIC,
                    partition=partition,
                    offset=committed,
                    time=rng.uniform(95.0, 99.9),
                )
            standby_rows = drill.standby[partition]
            highest = max((o for o, _ in standby_rows), default=0) + 1
            resume = rng.randint(0, highest)
            source = rng.choice(["synced", "checkpoint", "reset"])
            b.resume(
                group,
                cluster=STANDBY,
                topic=replicated_topic,
                partition=partition,
                source=source,
                position=resume,
            )
            for offset, s in standby_rows:
                if offset >= resume:
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
            state[partition] = {"read": read, "committed": committed, "resume": resume}
        drill.groups[group] = state
    return drill


def _ident(s: dict) -> dict:
    return {k: s[k] for k in ("producer", "key", "seq", "gseq")}


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
        for partition, st in state.items():
            rows = drill.standby[partition]
            offsets = sorted(o for o, _ in rows)
            if drill.meta.mapping.policy is ReplicationPolicy.IDENTITY:
                # Post-cutover writes share the partition: they are records a resume can skip.
                offsets = sorted(offsets + [o for o, _ in drill.local[partition]])
            owed = [
                o for o, s in rows if st["committed"] is not None and s["offset"] < st["committed"]
            ]
            ideal = max(owed) + 1 if owed else (offsets[0] if offsets else 0)
            resume = st["resume"]
            processed = {(s["producer"], s["gseq"]) for s in st["read"]}
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


@pytest.mark.parametrize("seed", range(150))
def test_checker_agrees_with_the_definitions(seed):
    drill = generate(seed)
    expected = oracle(drill)
    result = check(drill.builder.build(drill.meta))
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

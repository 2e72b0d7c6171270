"""Active-active on the real local pair: the shipped scenario, east lost and back.

The characteristic outcome, each figure recomputed here from the raw material (the history
the drill wrote, and the four topics read with this test's own reader), never taken from
the checker:
- conflicts: acknowledged records of one key written in both regions within the window W
  (the steady state's measured replication lag) are > 0, and the checker's count is this
  test's;
- no loop: neither region holds a topic with both prefixes, and every acknowledged record
  has exactly one copy in each region: in its origin's local topic, and in the other
  region's replica (nothing copied back, nothing copied twice);
- what each region lost (acknowledged, never in the other region's replica) and what
  east's loss stranded (not in west's replica below E, the end offsets snapshotted while
  east was away) equal this test's counts;
- MirrorMaker 2 resumed both ways: records east acknowledged after its return are in
  west's replica, and records west acknowledged while east was away are in east's;
- the cross-region order: keys whose records the two regions' groups saw in a different
  order, recounted;
- nothing is left: the reverse MirrorMaker 2 is gone, no fault remains.
"""

from __future__ import annotations

import bisect
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from confluent_kafka import TopicPartition

from components.local import faultswitch
from drills.evidence import summary_lines
from drills.history import read_history
from drills.runner import run_drill
from drills.targets import LocalTarget
from drills.workload import decode
from tests.integration.conftest import consumer
from tests.integration.test_drill import assert_pair_healthy, on_own_topic

SCENARIO = (
    Path(__file__).resolve().parents[2] / "drills" / "scenarios" / "active-active-region-loss.yaml"
)


def log_ids(
    bootstrap: str, topic: str, producers: set[str], ends: dict[int, int]
) -> list[tuple[int, int, tuple]]:
    """(partition, offset, (producer, key, seq)) of every record of `producers` in `topic`,
    read committed from offset 0 below `ends`. This test's own reader: the reverse flow
    writes transactionally, so a partition is read to its end when the consumer's position
    passes it (its last offset is a commit marker, never handed out)."""
    c = consumer(bootstrap)
    out = []
    try:
        left = {p: e for p, e in ends.items() if e > 0}
        c.assign([TopicPartition(topic, p, 0) for p in left])
        deadline = time.monotonic() + 60
        while left:
            assert time.monotonic() < deadline, f"{topic} in {bootstrap} not read to {ends}"
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error() is None and m.offset() < ends[m.partition()]:
                    ident = decode(m.value())
                    if ident and ident[0] in producers:
                        out.append((m.partition(), m.offset(), ident[:3]))
            for tp in c.position([TopicPartition(topic, p) for p in left]):
                if tp.offset >= left[tp.partition]:
                    left.pop(tp.partition)
        return out
    finally:
        c.close()


def first_order(reads: list[dict]) -> dict[str, list[tuple]]:
    """Per key, the records in the order the group first read them."""
    out: dict[str, list[tuple]] = defaultdict(list)
    seen = set()
    for r in sorted(reads, key=lambda r: r["poll_time"]):
        i = (r["producer"], r["key"], r["seq"])
        if i not in seen:
            seen.add(i)
            out[i[1]].append(i)
    return out


def test_active_active_region_loss_conflicts_no_loops_and_what_each_region_lost(pair, tmp_path):
    spec = on_own_topic(SCENARIO)
    topic = spec.workload.topics[0].name
    east, west = pair.primary.name, pair.standby.name
    boot = {east: pair.primary.bootstrap, west: pair.standby.bootstrap}
    other = {east: west, west: east}

    out = run_drill(spec, LocalTarget(pair), tmp_path / "run")
    run = tmp_path / "run"
    ev = json.loads((run / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["name"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    assert ev["pattern"]["name"] == "active-active"
    aa = ev["active_active"]
    assert (aa["lost_region"], aa["survivor"]) == (east, west)

    # --- nothing left behind: the reverse part removed, no fault applied -------------------
    assert not pair.replication.reverse_running()
    assert pair.stack.drill_setting(faultswitch.REVERSE_KEY) is None
    assert_pair_healthy(pair)

    # --- the raw material ---------------------------------------------------------------
    history = read_history(run / "history")
    writes = history.writes.to_pylist()
    mine = {w["producer"] for w in writes}
    origin, acked_at, sent_at = {}, {}, {}
    for w in writes:
        if w["ack_time"] is not None:
            i = (w["producer"], w["key"], w["seq"])
            origin[i], acked_at[i], sent_at[i] = w["cluster"], w["ack_time"], w["send_time"]
    assert {r: sum(1 for o in origin.values() if o == r) for r in (east, west)} == aa["records"]
    # The four topics below the end offsets the drill's verify read them to (its teardown
    # restarts MirrorMaker 2, whose re-copies land above them).
    (step,) = [x for x in ev["journal"]["steps"] if x["name"].startswith("both MirrorMaker 2")]
    assert step["output"]["caught_up"] is True
    upto: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for r, e in step["output"]["ends"].items():
        for name, off in e.items():
            t, p = name[:-1].rsplit("[", 1)
            upto[(r, t)][int(p)] = off
    logs = {(r, t): log_ids(boot[r], t, mine, upto[(r, t)]) for r in (east, west)
            for t in (topic, f"{other[r]}.{topic}")}  # fmt: skip
    assert all(upto[k] for k in logs), sorted(upto)

    # --- no loop: no doubly prefixed topic, one copy of every record in each region ------
    for r in (east, west):
        c = consumer(boot[r])
        try:
            names = set(c.list_topics(timeout=10).topics)
        finally:
            c.close()
        assert f"{other[r]}.{topic}" in names and topic in names
        looped = sorted(n for n in names if n.startswith((f"{east}.{west}.", f"{west}.{east}.",
                                                          f"{east}.{east}.", f"{west}.{west}.")))  # fmt: skip
        assert looped == [], f"{r} holds {looped}"
        local = [i for *_, i in logs[(r, topic)]]
        remote = [i for *_, i in logs[(r, f"{other[r]}.{topic}")]]
        assert all(origin.get(i, r) == r for i in local), f"{r}'s local topic holds a copy"
        assert all(origin.get(i, other[r]) == other[r] for i in remote), f"{r}'s replica looped"
        # A record crosses as often as its producer wrote it into its origin's local topic
        # (a producer's own duplicate, e.g. across east's loss, is copied faithfully): more
        # copies than that in the replica is a re-copy or a loop.
        written = Counter(i for *_, i in logs[(other[r], topic)])
        twice = {i: n for i, n in Counter(remote).items() if n > written[i]}
        assert twice == {}, f"{len(twice)} records crossed twice into {r}, e.g. {list(twice)[:3]}"
        assert aa["written_twice"][r] == sum(1 for n in Counter(local).values() if n > 1)
        assert aa["copies"][r]["duplicated"] == 0 and aa["copies"][r]["misplaced"] == 0
    assert aa["loop_topics"] == [] and aa["crossed_twice"] == 0

    # --- what each region lost, what east's loss stranded --------------------------------
    in_replica = {r: {i for *_, i in logs[(other[r], f"{r}.{topic}")]} for r in (east, west)}
    lost = {r: sum(1 for i, o in origin.items() if o == r and i not in in_replica[r])
            for r in (east, west)}  # fmt: skip
    assert aa["lost"] == lost
    ends = {(e["topic"], e["partition"]): e["end_offset"] for e in history.end_offsets.to_pylist()}
    assert ends and all(t == f"{east}.{topic}" for t, _ in ends)
    t_fault, t_cut = ev["timeline"]["t_fault"]["monotonic"], ev["timeline"]["t_cut"]["monotonic"]
    below = {i for p, o, i in logs[(west, f"{east}.{topic}")] if o < ends[(f"{east}.{topic}", p)]}
    stranded = [
        i for i, o in origin.items() if o == east and acked_at[i] <= t_fault and i not in below
    ]
    assert aa["stranded"] == ev["measurements"]["rpo"]["records"] == len(stranded)

    # --- MirrorMaker 2 resumed both ways --------------------------------------------------
    after = [i for i, o in origin.items() if o == east and acked_at[i] > t_cut]
    during = [i for i, o in origin.items() if o == west and t_fault < acked_at[i] < t_cut]
    assert after and during
    assert all(i in in_replica[east] for i in after), (
        "east's writes after its return stayed in east"
    )
    assert all(i in in_replica[west] for i in during), (
        "west's writes while east was away never reached it"
    )

    # --- conflicts, recounted -------------------------------------------------------------
    window = ev["steady_state"]["max_replication_lag_s"]
    assert aa["window_s"] == window > 0
    times = defaultdict(list)
    for i, o in origin.items():
        times[(i[1], o)].append(sent_at[i])
    for v in times.values():
        v.sort()
    mine_conflicts = 0
    keys = set()
    for i, o in origin.items():
        near = times[(i[1], other[o])]
        j = bisect.bisect_left(near, sent_at[i] - window)
        if j < len(near) and near[j] <= sent_at[i] + window:
            mine_conflicts += 1
            keys.add(i[1])
    assert aa["conflicts"]["records"] == mine_conflicts > 0
    assert aa["conflicts"]["keys"] == len(keys)

    # --- ordering across regions, recounted ----------------------------------------------
    reads = history.reads.to_pylist()
    a = first_order([r for r in reads if r["group"] == f"billing@{east}"])
    b = first_order([r for r in reads if r["group"] == f"billing@{west}"])
    differ = 0
    for k in set(a) & set(b):
        common = set(a[k]) & set(b[k])
        if [i for i in a[k] if i in common] != [i for i in b[k] if i in common]:
            differ += 1
    assert aa["ordering"]["keys_differing"] == differ

    # --- the verdict, the summary and the report say which pattern ran --------------------
    checks = {c["objective"]: c for c in ev["verdict"]["checks"]}
    assert checks["active-active: no record crossed twice (no loop, one copy per region)"]["met"]
    lines = summary_lines(ev)
    assert lines[1].startswith("pattern: active-active"), lines
    assert any(x.startswith("active-active: ") for x in lines)
    assert "active-active" in (run / "report.md").read_text()
    rto = ev["measurements"]["rto"]
    parts = [rto["detect"], rto["decide"], rto["cutover"], rto["first_consume"]]
    assert None not in parts and abs(sum(parts) - rto["seconds"]) < 1e-6, rto
    assert t_cut > t_fault and rto["by_group"][f"billing@{west}"] < rto["seconds"]
    print(
        f"\nactive-active: records {aa['records']}; conflicts {mine_conflicts} on {len(keys)} keys "
        f"(W {window:.2f}s); order differs on {differ} keys; lost {lost}; stranded {len(stranded)}; "
        f"RTO {rto['seconds']:.2f}s; exit {out.exit_code}"
    )
    assert out.exit_code == 0, ev["verdict"]

"""The checker for active-active: what the two regions wrote over each other, in which order
each region's consumers saw it, what a region's loss stranded and what never crossed.

Under active-active both regions take writes, of the same keys, each producer in its own
region writing its region's local topic (`orders`); MirrorMaker 2 runs both ways under the
prefixed policy (DefaultReplicationPolicy), so east's `orders` is `east.orders` in west and
west's is `west.orders` in east; each region's groups read the local topic and the other
region's replica. One region (L, the lost one) is lost and returns; the other (S) serves
throughout. A record's identity is (producer, key, seq) (drills/workload.py); its *origin*
is the region that acknowledged it (producers never move under active-active). The inputs:
the drill's history (writes: every ack and failure, both regions; reads: every record each
region's groups were handed; log: the four topics -- each region's local topic and its
replica of the other's -- read back after both flows caught up; end_offsets: S's replica of
L's topic, snapshotted when the loss was decided, before L returned).

Definitions, in DESIGN.md's terms:

- conflict (per key): replication lag window W = the steady state's measured maximum
  replication lag (seconds; DESIGN "measure replication lag" -- how long the other region
  took to reach an end offset the source had). An acknowledged record of key k from region
  R, sent at t, is *in conflict* when an acknowledged record of the same key from the other
  region was sent at t' with |t - t'| <= W: with copies taking up to W to cross, neither
  writer could have read the other's write before making its own, so the two regions'
  last-writer-wins views of k can disagree. `conflicts` = the number of records in
  conflict (both regions counted), `conflict_keys` = keys with at least one, and per key
  the count from each region. Records stranded by the loss (below) are reported as such,
  not as conflicts (their window is the outage, not W).
- ordering across regions: per key and per group, the records of that key both regions'
  members of the group were handed, each in the order its member first read them (poll
  order; a region's local topic and its replica interleave at the consumer). A key
  *differs* when the two orders differ; `out_of_place` = records not in the longest
  common ordering (n - the longest increasing subsequence of one order's positions in the
  other). Within one origin the order is the same in both regions (one partition per key,
  MirrorMaker 2 keeps partitions), so every difference is an interleaving across regions.
- copies (no loops): per region and record, the number of copies in that region's log
  across its local topic and its replica topic. A record must have exactly one copy in
  each region: in its origin region's local topic, and in the other region's replica.
  `duplicated` = records with more copies in a region than their origin's local topic
  holds (an at-least-once re-copy or a loop); `written_twice` = records a region's
  producers wrote more than once into their own local topic (the producer's duplicate,
  e.g. across the region's loss; replication copies it faithfully, so it is not a loop and
  is reported beside the copies, not in them); `misplaced` = copies in the wrong topic (a record of origin R in R's replica of
  the other region, or in the other region's local topic: the signature of a loop);
  `loop_topics` = topics named with both prefixes (`east.west.orders`, `west.east.orders`)
  found in either region.
- lost, per region R: records R acknowledged that never reached the other region's
  replica of R's topic (read after both flows caught up once L returned), and, beside it,
  records R acknowledged that R's own log lacks.
- stranded (RPO of the loss): records L acknowledged up to T_fault absent from S's replica
  below the end offsets E snapshotted when the loss was decided: what S's clients could not see while L
  was away, and what would be lost if L never returned. RPO(records) = their count;
  RPO(seconds) = T_fault - the oldest stranded ack time, 0 when none. `late_replicated` =
  stranded records found in S's replica at or above E after L returned; indeterminate =
  records sent but acknowledged by no region.
- RTO: T_consume(g) for L's groups = the first poll in L, after it returned, of a record
  produced after T_fault; RTO = the max over L's groups - T_fault; parts: detect, decide,
  cutover = T_cut - T_decide (T_cut: L's first acknowledgement after its return), first
  consume = RTO end - T_cut. `by_group` also gives S's groups' first post-fault poll (they
  never stopped).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from drills.history import rto
from drills.history.checker import CheckPolicy, CheckResult
from drills.history.model import History, Instants
from drills.history.rpo import Rpo
from drills.history.rto import Rto

PATTERN = "active-active"
SEP = "@"  # a group's history name: <group>@<region>

Id = tuple[str, str, int]  # producer, key, seq


def group_name(group: str, region: str) -> str:
    """The history's name of `group`'s member in `region` (each region runs its own)."""
    return f"{group}{SEP}{region}"


def split_group(name: str) -> tuple[str, str | None]:
    base, _, region = name.rpartition(SEP)
    return (base, region) if base else (name, None)


def replica(topic: str, origin: str) -> str:
    """The other region's name of `origin`'s `topic` (DefaultReplicationPolicy)."""
    return f"{origin}.{topic}"


@dataclass(frozen=True)
class GroupOrder:
    group: str
    keys: int  # keys both regions' members read records of (in common)
    keys_differing: int
    out_of_place: int
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ActiveActiveResult:
    lost_region: str
    survivor: str
    window_s: float  # W: the replication lag window conflicts are counted within
    records: dict[str, int]  # origin region -> records it acknowledged
    conflicts: int
    conflict_keys: int
    keys: int
    conflicts_by_region: dict[str, int]
    conflict_sample: list[dict[str, Any]]
    ordering: tuple[GroupOrder, ...]
    copies: dict[str, dict[str, int]]  # region -> {exactly_one, duplicated, misplaced, missing}
    written_twice: dict[str, int]  # region -> records its producers wrote twice into it
    loop_topics: tuple[str, ...]
    lost: dict[str, int]  # origin -> acknowledged, never in the other region's replica
    lost_locally: dict[str, int]  # origin -> acknowledged, absent from its own log
    stranded: int
    rpo: Rpo
    rto: Rto
    notes: tuple[str, ...] = ()

    @property
    def ordering_differs(self) -> int:
        return sum(o.keys_differing for o in self.ordering)

    @property
    def crossed_twice(self) -> int:
        """Loops and re-copies: loop topics, duplicated and misplaced copies (must be 0)."""
        c = self.copies.values()
        return len(self.loop_topics) + sum(x["duplicated"] + x["misplaced"] for x in c)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": PATTERN, "lost_region": self.lost_region, "survivor": self.survivor,
            "window_s": self.window_s, "records": dict(self.records),
            "conflicts": {"records": self.conflicts, "keys": self.conflict_keys,
                          "of_keys": self.keys, "by_region": dict(self.conflicts_by_region),
                          "sample": self.conflict_sample},
            "ordering": {"keys_differing": self.ordering_differs,
                         "groups": [asdict(o) for o in self.ordering]},
            "copies": {r: dict(c) for r, c in self.copies.items()},
            "loop_topics": list(self.loop_topics), "crossed_twice": self.crossed_twice,
            "written_twice": dict(self.written_twice),
            "lost": dict(self.lost), "lost_total": sum(self.lost.values()),
            "lost_locally": dict(self.lost_locally),
            "stranded": self.stranded,
            "notes": list(self.notes),
        }  # fmt: skip

    def check_result(self) -> CheckResult:
        """The figures in the form the evidence, the summary and the verdict read; no group
        moves, so there is no consumer continuity to measure."""
        return CheckResult(
            valid=self.crossed_twice == 0 and not sum(self.lost.values()),
            found=(),
            tolerated=(),
            rto=self.rto,
            rpo=self.rpo,
            continuity=(),
            anomalies={},
            notes=self.notes,
            policy=CheckPolicy(),
        )

    def checks(self) -> list[dict[str, Any]]:
        """The verdict's active-active lines: nothing crossed twice, nothing lost for good."""
        lost = sum(self.lost.values())
        return [
            {"objective": "active-active: no record crossed twice (no loop, one copy per region)",
             "value": self.crossed_twice, "bound": 0, "met": self.crossed_twice == 0},
            {"objective": "active-active: every acknowledged record reached the other region",
             "value": lost, "bound": 0, "met": lost == 0},
        ]  # fmt: skip


def check_active_active(
    history: History,
    lost_region: str,
    survivor: str,
    topics: Iterable[str],
    window_s: float,
    loop_topics: Iterable[str] = (),
    sample: int = 5,
) -> ActiveActiveResult:
    """Every active-active figure of `history` (module docstring); `topics`: the workload's
    topic names (each region's local topic); `loop_topics`: topics with both prefixes found
    in either region (listed by the drill, which reads the regions' topic lists)."""
    names = set(topics)
    regions = (lost_region, survivor)
    other = {lost_region: survivor, survivor: lost_region}
    ins = history.meta.instants
    notes: list[str] = []

    origin: dict[Id, str] = {}
    ack_time: dict[Id, float] = {}
    sent_at: dict[Id, float] = {}
    sent: set[Id] = set()
    for w in history.writes.to_pylist():
        if w["topic"] not in names or w["cluster"] not in other:
            continue
        i = (w["producer"], w["key"], w["seq"])
        sent.add(i)
        if w["ack_time"] is not None:
            origin[i], ack_time[i], sent_at[i] = w["cluster"], w["ack_time"], w["send_time"]
    indeterminate = sent - set(origin)

    # --- conflicts ----------------------------------------------------------------------
    times: dict[tuple[str, str], list[float]] = defaultdict(list)  # (key, region) -> send times
    for i, r in origin.items():
        times[(i[1], r)].append(sent_at[i])
    for v in times.values():
        v.sort()
    by_key: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(regions, 0))
    for i, r in origin.items():
        near = times.get((i[1], other[r]), [])
        t = sent_at[i]
        j = bisect.bisect_left(near, t - window_s)
        if j < len(near) and near[j] <= t + window_s:
            by_key[i[1]][r] += 1
    conflicts = sum(sum(c.values()) for c in by_key.values())
    by_region = {r: sum(c[r] for c in by_key.values()) for r in regions}
    conflict_sample = [
        {"key": k, **c} for k, c in sorted(by_key.items(), key=lambda kv: -sum(kv[1].values()))
    ][:sample]

    # --- copies and loops ---------------------------------------------------------------
    count: dict[str, dict[Id, int]] = {r: defaultdict(int) for r in regions}
    local_count: dict[str, dict[Id, int]] = {r: defaultdict(int) for r in regions}
    wrong: dict[str, int] = dict.fromkeys(regions, 0)
    in_replica: dict[str, set[Id]] = {r: set() for r in regions}  # region -> ids in its replica
    in_local: dict[str, set[Id]] = {r: set() for r in regions}
    for row in history.log.to_pylist():
        r, topic = row["cluster"], row["topic"]
        if r not in other:
            continue
        i = (row["producer"], row["key"], row["seq"])
        count[r][i] += 1
        o = origin.get(i)
        if topic in names:
            in_local[r].add(i)
            local_count[r][i] += 1
            wrong[r] += o is not None and o != r
        elif any(topic == replica(t, other[r]) for t in names):
            in_replica[r].add(i)
            wrong[r] += o is not None and o == r

    def written(i: Id) -> int:
        """How many times its producer wrote the record (its origin's local copies), >= 1."""
        return max(max(local_count[x].get(i, 0) for x in regions), 1)

    copies = {
        r: {
            "exactly_one": sum(1 for i in origin if count[r].get(i) == written(i)),
            "duplicated": sum(1 for i, n in count[r].items() if n > written(i)),
            "misplaced": wrong[r],
            "missing": sum(1 for i in origin if not count[r].get(i)),
        }
        for r in regions
    }
    if not any(count[lost_region].values()):
        notes.append(f"{lost_region}'s log held no record of this drill (not read back?)")

    # --- lost, stranded -----------------------------------------------------------------
    lost = {r: sum(1 for i, o in origin.items() if o == r and i not in in_replica[other[r]])
            for r in regions}  # fmt: skip
    lost_locally = {r: sum(1 for i, o in origin.items() if o == r and i not in in_local[r])
                    for r in regions}  # fmt: skip
    ends = {(e["topic"], e["partition"]): e["end_offset"] for e in history.end_offsets.to_pylist()
            if e["cluster"] == survivor}  # fmt: skip
    below: set[Id] = set()
    above: set[Id] = set()
    for row in history.log.to_pylist():
        if row["cluster"] != survivor or row["topic"] not in {
            replica(t, lost_region) for t in names
        }:
            continue
        i = (row["producer"], row["key"], row["seq"])
        e = ends.get((row["topic"], row["partition"]))
        (below if e is not None and row["offset"] < e else above).add(i)
    if not ends:
        notes.append(
            f"no end offsets of {survivor}'s replica were snapshotted: stranded not measured"
        )
    until = ins.t_fault if ins.t_fault is not None else float("inf")
    of_lost = {
        i: ack_time[i] for i, o in origin.items() if o == lost_region and ack_time[i] <= until
    }
    stranded = {i: t for i, t in of_lost.items() if i not in below} if ends else {}
    oldest = min(stranded.values(), default=None)
    rpo = Rpo(
        records=len(stranded),
        seconds=0.0 if oldest is None else (None if ins.t_fault is None else ins.t_fault - oldest),
        oldest_lost_ack_time=oldest,
        acknowledged=len(of_lost),
        split_brain=0,
        late_replicated=sum(1 for i in stranded if i in above),
        indeterminate=len(indeterminate),
        indeterminate_found=sum(1 for i in indeterminate if any(i in count[r] for r in regions)),
    )

    # --- ordering across regions, RTO ---------------------------------------------------
    reads: dict[str, list[dict]] = defaultdict(list)
    for row in history.reads.to_pylist():
        reads[row["group"]].append(row)
    bases = sorted({split_group(g)[0] for g in reads if split_group(g)[1] in other})
    ordering = tuple(_order(b, reads.get(group_name(b, lost_region), []),
                            reads.get(group_name(b, survivor), []), sample) for b in bases)  # fmt: skip
    rto = _rto(ins, reads, lost_region, notes)
    keys = {i[1] for i in origin}
    written_twice = {r: sum(1 for n in local_count[r].values() if n > 1) for r in regions}
    for r, n in written_twice.items():
        if n:
            notes.append(
                f"{r}'s producers wrote {n} record(s) twice into {r} (their own duplicates; "
                "replication copied each as often as it was written, so not a loop)"
            )
    return ActiveActiveResult(
        lost_region=lost_region, survivor=survivor, window_s=window_s,
        records={r: sum(1 for o in origin.values() if o == r) for r in regions},
        conflicts=conflicts, conflict_keys=len(by_key), keys=len(keys),
        conflicts_by_region=by_region, conflict_sample=conflict_sample, ordering=ordering,
        copies=copies, written_twice=written_twice, loop_topics=tuple(sorted(loop_topics)),
        lost=lost,
        lost_locally=lost_locally, stranded=len(stranded), rpo=rpo, rto=rto, notes=tuple(notes),
    )  # fmt: skip


def _first_reads(rows: list[dict]) -> dict[str, list[Id]]:
    """Per key: the records in the order the member first read them."""
    out: dict[str, list[Id]] = defaultdict(list)
    seen: set[Id] = set()
    for r in sorted(rows, key=lambda r: r["poll_time"]):
        i = (r["producer"], r["key"], r["seq"])
        if i not in seen:
            seen.add(i)
            out[i[1]].append(i)
    return out


def _order(group: str, a_rows: list[dict], b_rows: list[dict], sample: int) -> GroupOrder:
    a, b = _first_reads(a_rows), _first_reads(b_rows)
    keys = differing = out = 0
    cases: list[dict[str, Any]] = []
    for k in sorted(set(a) & set(b)):
        common = set(a[k]) & set(b[k])
        if not common:
            continue
        keys += 1
        xa = [i for i in a[k] if i in common]
        pos = {i: n for n, i in enumerate(i for i in b[k] if i in common)}
        seq = [pos[i] for i in xa]
        if seq != sorted(seq):
            differing += 1
            n = len(seq) - _lis(seq)
            out += n
            if len(cases) < sample:
                cases.append({"key": k, "records": len(seq), "out_of_place": n})
    return GroupOrder(group, keys, differing, out, cases)


def _lis(seq: list[int]) -> int:
    """Length of the longest strictly increasing subsequence."""
    tails: list[int] = []
    for x in seq:
        j = bisect.bisect_left(tails, x)
        if j == len(tails):
            tails.append(x)
        else:
            tails[j] = x
    return len(tails)


def _rto(ins: Instants, reads: Mapping[str, list[dict]], lost: str, notes: list[str]) -> Rto:
    consumed: dict[str, float | None] = {}
    for g, rows in sorted(reads.items()):
        if split_group(g)[1] is None:
            continue
        ts = [r["poll_time"] for r in rows
              if ins.t_fault is not None and r["produced_at"] > ins.t_fault
              and r["cluster"] == split_group(g)[1]]  # fmt: skip
        consumed[g] = min(ts, default=None)
    mine = {g: t for g, t in consumed.items() if split_group(g)[1] == lost}
    missing = [g for g, t in mine.items() if t is None]
    if ins.t_fault is None:
        notes.append("T_fault not recorded: no RTO")
    elif missing:
        notes.append(
            f"groups of {lost} never consumed a post-fault record after its return: {missing}"
        )
    end = None if missing or not mine else max(t for t in mine.values() if t is not None)
    slowest = max(mine, key=lambda g: mine[g] or 0) if end is not None else None
    return rto.from_instants(ins, consumed, end, slowest, fenced=False)


def pattern_facts(engine: str, policy: str | None = None) -> dict[str, str] | None:
    """What the evidence, the summary and the report say of an active-active run; None for
    another pattern."""
    if engine != PATTERN:
        return None
    return {"name": PATTERN, "describe": "active-active: both regions take writes of the same "
            f"keys, MirrorMaker 2 both ways ({policy or 'prefixed'} policy: <region>.<topic>), "
            "consumers read local plus remote topics"}  # fmt: skip


def summary_lines(section: dict[str, Any] | None) -> list[str]:
    """The terminal summary's active-active lines (the evidence's `active_active` section)."""
    if not section:
        return []
    c, lost = section["conflicts"], section["lost"]
    recs = ", ".join(f"{r} {n}" for r, n in section["records"].items())
    return [
        f"active-active: {recs} records; {c['records']} in conflict on {c['keys']} of "
        f"{c['of_keys']} keys (same key from both regions within {section['window_s']:.2f}s); "
        f"cross-region order differs on {section['ordering']['keys_differing']} keys",
        f"active-active: crossed twice {section['crossed_twice']} (loop topics "
        f"{len(section['loop_topics'])}); lost "
        + ", ".join(f"{r} {n}" for r, n in lost.items())
        + f"; stranded by the loss of {section['lost_region']}: {section['stranded']}",
    ]

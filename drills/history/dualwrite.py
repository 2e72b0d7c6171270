"""The checker for application dual-write: what a region loss left one-sided, and whether the
survivor's consumers delivered every record once.

Under dual-write the application writes every record to both regions itself (no replication
carries it); the idempotency key is the record's identity (producer, key, seq), the same in
both copies (the copies' gseq differ: the primary's copy is 2n, the standby's 2n+1, so that
(producer, gseq) still names one send). Consumers in the survivor deduplicate by that key.
The inputs are the drill's history (writes: both copies' acks and failures; reads: every
record a group was handed; log: both regions' logs read back after the lost region returned)
and each group's delivery ledger (per record handed: delivered or removed as a duplicate).

Definitions, in DESIGN.md's terms (L = the lost region, S = the survivor, one record = one
idempotency key):

- one-sided (acknowledged): records acknowledged by exactly one of L and S; by region.
- one-sided (logged): records present in exactly one region's log; by region. This is what a
  reconciliation after the region returns has to copy, and what a reader of both logs counts.
- divergence: per (producer, key), the sequences in L's log and in S's log; a key diverges
  when the two sets differ (listed with the sequences only in L and only in S).
- RPO: lost = records L acknowledged (ack time <= T_fence, T_fence = when the application
  dropped L: every producer retired its L client) that are absent from S's log.
  RPO(records) = their count; RPO(seconds) = T_fault - the oldest lost record's L ack time,
  0 when nothing is lost. Beside it: split-brain (acknowledged by L after T_fence, must be
  0), indeterminate (acknowledged by neither region) and how many of those S's log holds;
  late-replicated is always 0 (nothing replicates).
- deduplication, per group: records handed (reads), delivered, removed. The checker
  recomputes what a correct deduplication removes (a handed record whose key the group
  was handed before, in poll order) and checks the consumer's ledger against it:
  delivered twice (must be 0), removed without an earlier delivery (a dedup that loses
  records, must be 0), the ledger's removed count equal to the recomputed one.
- continuity, per group and S partition: ideal = 1 + the highest S offset of a record the
  group delivered in L before it moved; resume = the first S offset it was handed after
  moving (by timestamp, not a translated offset: the two logs' offsets are unrelated);
  duplicates = records handed in [resume, ideal) (what deduplication has to remove);
  skipped = S's records in [ideal, resume), plus any S record below the group's last
  delivered offset that it never delivered (loss by offset); duplicates_processed = records
  delivered twice.
- RTO: T_consume(g) = the first poll in S that delivered a record produced after T_fault;
  RTO = max over groups - T_fault, parts detect / decide / cutover / first-consume as for
  MirrorMaker 2 (cutover = T_cut - T_decide, where T_cut is S's first ack after the
  application dropped L: S was acknowledging all along, so this part is small).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from drills.history import rto
from drills.history.checker import CheckPolicy, CheckResult
from drills.history.continuity import Continuity
from drills.history.model import History, Instants
from drills.history.rpo import Rpo
from drills.history.rto import Rto

PATTERN = "dual-write"
RESUME_TIMESTAMP = "timestamp"  # how a dual-write group is positioned in the survivor
DELIVERED, REMOVED = "delivered", "removed"

Id = tuple[str, str, int]  # the idempotency key: producer, key, seq


@dataclass(frozen=True)
class Delivery:
    """One record a group was handed, and what its deduplication did with it."""

    group: str
    producer: str
    key: str
    seq: int
    cluster: str
    topic: str
    partition: int
    offset: int
    produced_at: float  # the send time the record carries
    poll_time: float
    outcome: str  # delivered | removed

    @property
    def id(self) -> Id:
        return (self.producer, self.key, self.seq)


@dataclass(frozen=True)
class GroupDedup:
    group: str
    handed: int  # records the group was handed (history reads)
    delivered: int  # records its deduplication passed to the application
    removed: int  # records its deduplication dropped as already delivered
    expected_removed: int  # what a correct deduplication removes, recomputed from the reads
    delivered_twice: int  # keys delivered more than once (must be 0)
    removed_first: int  # records removed that had not been delivered before (must be 0)
    ledger_mismatch: int  # handed records without a ledger entry, or the reverse
    removed_in_survivor: int  # of `removed`: handed in the survivor after the move


@dataclass(frozen=True)
class DualWriteResult:
    lost: str
    survivor: str
    records: int  # distinct idempotency keys sent
    acked_both: int
    acked_one_sided: dict[str, int]  # region -> records only it acknowledged
    acked_neither: int
    logged_both: int
    logged_one_sided: dict[str, int]  # region -> records only its log holds
    divergent_keys: int  # (producer, key) whose sequences differ between the logs
    keys: int
    divergence_sample: list[dict[str, Any]]
    dedup: tuple[GroupDedup, ...]
    rto: Rto
    rpo: Rpo
    continuity: tuple[Continuity, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def one_sided_acked(self) -> int:
        return sum(self.acked_one_sided.values())

    @property
    def one_sided_logged(self) -> int:
        return sum(self.logged_one_sided.values())

    @property
    def dedup_removed(self) -> int:
        return sum(d.removed for d in self.dedup)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": PATTERN,
            "lost": self.lost,
            "survivor": self.survivor,
            "records": self.records,
            "acknowledged": {"both": self.acked_both, "one_sided": dict(self.acked_one_sided),
                             "one_sided_total": self.one_sided_acked, "neither": self.acked_neither},
            "logged": {"both": self.logged_both, "one_sided": dict(self.logged_one_sided),
                       "one_sided_total": self.one_sided_logged},
            "divergence": {"keys": self.divergent_keys, "of_keys": self.keys,
                           "sample": self.divergence_sample},
            "dedup": [asdict(d) for d in self.dedup],
            "dedup_removed": self.dedup_removed,
            "notes": list(self.notes),
        }  # fmt: skip

    def check_result(self) -> CheckResult:
        """The figures in the form the evidence, the summary and the verdict read. The per-key
        anomaly detectors of MirrorMaker 2 drills (lost-tail, reordered...) assume one
        replicated log; dual-write's findings are in `to_dict` instead."""
        return CheckResult(
            valid=self.violations() == 0,
            found=(),
            tolerated=(),
            rto=self.rto,
            rpo=self.rpo,
            continuity=self.continuity,
            anomalies={},
            notes=self.notes,
            policy=CheckPolicy(),
        )

    def violations(self) -> int:
        return sum(d.delivered_twice + d.removed_first + d.ledger_mismatch
                   + abs(d.removed - d.expected_removed) for d in self.dedup)  # fmt: skip

    def checks(self) -> list[dict[str, Any]]:
        """The verdict's dual-write lines: each record delivered once, deduplication exact."""
        twice = sum(d.delivered_twice for d in self.dedup)
        first = sum(d.removed_first for d in self.dedup)
        off = sum(abs(d.removed - d.expected_removed) + d.ledger_mismatch for d in self.dedup)
        return [
            {"objective": "dual-write: each record delivered once per group", "value": twice,
             "bound": 0, "met": twice == 0},
            {"objective": "dual-write: deduplication removed only re-deliveries", "value": first,
             "bound": 0, "met": first == 0},
            {"objective": "dual-write: consumer ledger matches the checker's deduplication",
             "value": off, "bound": 0, "met": off == 0},
        ]  # fmt: skip


def check_dual_write(
    history: History,
    deliveries: Iterable[Delivery],
    lost: str,
    survivor: str,
    topics: Iterable[str],
    sample: int = 5,
) -> DualWriteResult:
    """Every dual-write figure of `history` (module docstring); `topics`: the dual-written
    topic names (the same in both regions)."""
    names = set(topics)
    ins = history.meta.instants
    notes: list[str] = []
    acked: dict[Id, dict[str, float]] = defaultdict(dict)  # id -> region -> ack time
    sent: set[Id] = set()
    for w in history.writes.to_pylist():
        if w["topic"] not in names or w["cluster"] not in (lost, survivor):
            continue
        i = (w["producer"], w["key"], w["seq"])
        sent.add(i)
        if w["ack_time"] is not None:
            acked[i][w["cluster"]] = w["ack_time"]
    both = sum(1 for a in acked.values() if len(a) == 2)
    one = {r: sum(1 for a in acked.values() if set(a) == {r}) for r in (lost, survivor)}
    neither = sorted(i for i in sent if not acked.get(i))

    logs: dict[str, set[Id]] = {lost: set(), survivor: set()}
    s_offset: dict[Id, tuple[str, int, int]] = {}  # id -> its (topic, partition, offset) in S
    s_partitions: dict[tuple[str, int], list[tuple[int, Id]]] = defaultdict(list)
    for r in history.log.to_pylist():
        if r["topic"] not in names or r["cluster"] not in logs:
            continue
        i = (r["producer"], r["key"], r["seq"])
        logs[r["cluster"]].add(i)
        if r["cluster"] == survivor:
            s_offset.setdefault(i, (r["topic"], r["partition"], r["offset"]))
            s_partitions[(r["topic"], r["partition"])].append((r["offset"], i))
    if not logs[lost]:
        notes.append(f"{lost}'s log held no record of this drill (not read back?)")
    L, S = logs[lost], logs[survivor]
    divergence = _divergence(L, S)

    t_fence = ins.t_fence
    lost_acks = {i: a[lost] for i, a in acked.items() if lost in a}
    in_time = {i: t for i, t in lost_acks.items() if t_fence is None or t <= t_fence}
    missing = {i: t for i, t in in_time.items() if i not in S}
    oldest = min(missing.values(), default=None)
    rpo = Rpo(
        records=len(missing),
        seconds=0.0 if oldest is None else (None if ins.t_fault is None else ins.t_fault - oldest),
        oldest_lost_ack_time=oldest,
        acknowledged=len(in_time),
        split_brain=len(lost_acks) - len(in_time),
        late_replicated=0,
        indeterminate=len(neither),
        indeterminate_found=sum(1 for i in neither if i in S),
    )

    by_group: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_group[d.group].append(d)
    reads: dict[str, list[dict]] = defaultdict(list)
    for r in history.reads.to_pylist():
        reads[r["group"]].append(r)
    groups = sorted(set(history.meta.groups) | set(by_group) | set(reads))
    dedup = tuple(_dedup(g, reads[g], by_group[g], survivor) for g in groups)
    continuity = tuple(
        c for g in groups
        for c in _continuity(g, by_group[g], survivor, s_offset, s_partitions, notes)
    )  # fmt: skip
    rto = _rto(ins, by_group, survivor, groups, notes)
    return DualWriteResult(
        lost=lost, survivor=survivor, records=len(sent), acked_both=both, acked_one_sided=one,
        acked_neither=len(neither), logged_both=len(L & S),
        logged_one_sided={lost: len(L - S), survivor: len(S - L)},
        divergent_keys=len(divergence), keys=len({i[:2] for i in L | S}),
        divergence_sample=divergence[:sample], dedup=dedup, rto=rto, rpo=rpo,
        continuity=continuity, notes=tuple(notes),
    )  # fmt: skip


def _divergence(lost: set[Id], survivor: set[Id]) -> list[dict[str, Any]]:
    """Per (producer, key) whose sequences differ between the two logs: which are only where."""
    per: dict[tuple[str, str], tuple[set[int], set[int]]] = defaultdict(lambda: (set(), set()))
    for i in lost ^ survivor:
        only_l, only_s = per[i[:2]]
        (only_l if i in lost else only_s).add(i[2])
    return [
        {"producer": p, "key": k, "only_lost": _ranges(a), "only_survivor": _ranges(b)}
        for (p, k), (a, b) in sorted(per.items())
    ]


def _ranges(seqs: set[int]) -> list[list[int]]:
    """[[first, last], ...] of consecutive runs."""
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def _dedup(group: str, reads: list[dict], ledger: list[Delivery], survivor: str) -> GroupDedup:
    seen: set[Id] = set()
    expected = 0
    for r in sorted(reads, key=lambda r: r["poll_time"]):
        i = (r["producer"], r["key"], r["seq"])
        if i in seen:
            expected += 1
        seen.add(i)
    delivered: dict[Id, int] = defaultdict(int)
    removed = removed_first = in_survivor = 0
    for d in sorted(ledger, key=lambda d: d.poll_time):
        if d.outcome == DELIVERED:
            delivered[d.id] += 1
        else:
            removed += 1
            in_survivor += d.cluster == survivor
            if not delivered.get(d.id):
                removed_first += 1
    handed = {(r["cluster"], r["topic"], r["partition"], r["offset"]) for r in reads}
    ledgered = {(d.cluster, d.topic, d.partition, d.offset) for d in ledger}
    return GroupDedup(
        group=group, handed=len(reads), delivered=sum(delivered.values()), removed=removed,
        expected_removed=expected, delivered_twice=sum(1 for n in delivered.values() if n > 1),
        removed_first=removed_first, ledger_mismatch=len(handed ^ ledgered),
        removed_in_survivor=in_survivor,
    )  # fmt: skip


def _continuity(
    group: str,
    ledger: list[Delivery],
    survivor: str,
    s_offset: Mapping[Id, tuple[str, int, int]],
    s_partitions: Mapping[tuple[str, int], list[tuple[int, Id]]],
    notes: list[str],
) -> list[Continuity]:
    delivered_ids = {d.id for d in ledger if d.outcome == DELIVERED}
    done: dict[tuple[str, int], int] = {}  # S partition -> highest S offset delivered in L
    here: dict[tuple[str, int], list[Delivery]] = defaultdict(list)  # handed in S, per partition
    again: dict[tuple[str, int], int] = defaultdict(int)  # delivered in S although delivered before
    earlier: set[Id] = set()
    for d in sorted(ledger, key=lambda d: d.poll_time):
        tp = (d.topic, d.partition)
        if d.cluster == survivor:
            here[tp].append(d)
            if d.outcome == DELIVERED and d.id in earlier:
                again[tp] += 1
        elif d.outcome == DELIVERED and d.id in s_offset:
            t, p, o = s_offset[d.id]
            done[(t, p)] = max(done.get((t, p), -1), o)
        if d.outcome == DELIVERED:
            earlier.add(d.id)
    out = []
    for tp, rows in sorted(s_partitions.items()):
        ideal = done.get(tp, -1) + 1
        mine = here.get(tp, [])
        resume = min((d.offset for d in mine), default=None)
        dup = sum(1 for d in mine if d.offset < ideal)
        skipped = 0
        if resume is not None:
            last = max((d.offset for d in mine if d.outcome == DELIVERED), default=-1)
            skipped = sum(1 for o, i in rows if ideal <= o < resume
                          or (resume <= o <= last and i not in delivered_ids))  # fmt: skip
        elif rows:
            notes.append(f"group {group} was handed nothing of {survivor} {tp[0]}[{tp[1]}]")
        out.append(Continuity(
            group=group, topic=tp[0], partition=tp[1], role="dual-written", committed=None,
            ideal=ideal, resume=resume, resume_source=RESUME_TIMESTAMP, observed=resume is not None,
            duplicates=dup, skipped=skipped, duplicates_processed=again.get(tp, 0),
        ))  # fmt: skip
    return out


def _rto(
    ins: Instants,
    by_group: Mapping[str, list[Delivery]],
    survivor: str,
    groups: list[str],
    notes: list[str],
) -> Rto:
    consumed: dict[str, float | None] = {}
    for g in groups:
        consumed[g] = None
        if ins.t_fault is None:
            continue
        # a record produced after the fault: its poll time among the survivor's deliveries
        ts = [d.poll_time for d in by_group.get(g, ())
              if d.cluster == survivor and d.outcome == DELIVERED and d.produced_at > ins.t_fault]  # fmt: skip
        consumed[g] = min(ts, default=None)
    missing = [g for g, t in consumed.items() if t is None]
    if ins.t_fault is None:
        notes.append("T_fault not recorded: no RTO")
    elif missing:
        notes.append(f"groups never consumed a post-fault record in {survivor}: {missing}")
    end = None if missing or not consumed else max(t for t in consumed.values() if t is not None)
    slowest = max(consumed, key=lambda g: consumed[g] or 0) if end is not None else None
    return rto.from_instants(ins, consumed, end, slowest)


def pattern_facts(engine: str, policy: str | None = None) -> dict[str, str]:
    """What the evidence, the summary and the report say of the pattern that ran."""
    if engine == PATTERN:
        return {"name": PATTERN, "describe": "application dual-write: every record written to "
                "both regions by the application, consumers deduplicate by producer/key/seq"}  # fmt: skip
    return {"name": "active-passive",
            "describe": f"active-passive, asynchronous replication ({engine}, "
                        f"{policy or 'default'} policy)"}  # fmt: skip


def summary_lines(section: dict[str, Any] | None) -> list[str]:
    """The terminal summary's dual-write lines (the evidence's `dual_write` section)."""
    if not section:
        return []
    ack, log, div = section["acknowledged"], section["logged"], section["divergence"]
    lost, surv = section["lost"], section["survivor"]
    groups = ", ".join(f"{d['group']} {d['removed']} removed / {d['delivered']} delivered "
                       f"(twice {d['delivered_twice']})" for d in section["dedup"])  # fmt: skip
    return [
        f"dual-write: {section['records']} records; acknowledged by one region only: "
        f"{ack['one_sided'].get(lost, 0)} {lost}, {ack['one_sided'].get(surv, 0)} {surv} "
        f"(neither {ack['neither']}); in one log only: {log['one_sided'].get(lost, 0)} {lost}, "
        f"{log['one_sided'].get(surv, 0)} {surv}",
        f"dual-write: {div['keys']} of {div['of_keys']} keys diverge between the regions' logs; "
        f"deduplication: {groups or '-'}",
    ]

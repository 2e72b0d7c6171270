"""The seed's decision table as rules over the evidence.

Every rule is evaluated and listed with the values it read; a rule that fires
gives its evidence, likely cause and next move. Findings that do not fail the
drill (a group resumed from reset, duplicates beyond MirrorMaker 2's
prediction, parity differences, lag near its bound) are reported the same way.
A rule returns fired=None when the evidence cannot answer it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drills.report.facts import Facts, predicted_duplicates
from drills.report.layers import CAPACITY_RATIO, Check
from drills.report.load import RunData

NEAR = 0.8  # "near its bound": at or above 80% of it


@dataclass
class Finding:
    rule: str
    title: str
    fired: bool | None
    values: dict[str, Any]
    evidence: list[str] = field(default_factory=list)
    cause: str = ""
    action: str = ""
    table_row: bool = False  # one of the seed's decision-table rows


@dataclass
class Rule:
    id: str
    title: str
    cause: str
    action: str
    table_row: bool
    fn: Callable[[RunData, Facts], tuple[bool | None, dict[str, Any], list[str]]]

    def evaluate(self, run: RunData, f: Facts) -> Finding:
        fired, values, evidence = self.fn(run, f)
        return Finding(
            self.id,
            self.title,
            fired,
            values,
            evidence if fired else [],
            self.cause if fired else "",
            self.action if fired else "",
            self.table_row,
        )


RULES: list[Rule] = []


def rule(id: str, title: str, cause: str, action: str, table_row: bool = False):
    def deco(fn):
        RULES.append(Rule(id, title, cause, action, table_row, fn))
        return fn

    return deco


def _lag_ok(run: RunData, f: Facts) -> bool | None:
    lag = f.steady.get("max_replication_lag_s")
    bound = (run.spec.get("steady_state") or {}).get("max_replication_lag_s")
    if lag is None or bound is None:
        return None
    return lag <= bound


@rule(
    "consumers-resumed-wrong",
    "Replication lag is low, but consumers resume incorrectly",
    "Offset and consumer group handling are under-tested",
    "Add offset reconciliation, sink idempotency checks, and consumer restart tests",
    table_row=True,
)
def _consumers(run, f):
    lag_ok = _lag_ok(run, f)
    if not f.continuity:
        return None, {"replication lag ok": lag_ok}, []
    pred = predicted_duplicates(run, f)
    excess = {
        g: p["measured"] - p["predicted"] for g, p in pred.items() if p["measured"] > p["predicted"]
    }
    values = {
        "replication lag ok": lag_ok,
        "skipped": f.skipped,
        "groups resumed from reset": sorted(f.reset_groups),
        "duplicates beyond prediction": excess,
    }
    wrong = f.skipped > 0 or bool(f.reset_groups) or bool(excess)
    ev = []
    if f.skipped:
        ev.append(f"{f.skipped} records skipped (loss by offset)")
    for g, rows in sorted(f.reset_groups.items()):
        ev.append(
            f"group {g} resumed from auto.offset.reset on {len(rows)} partition(s), re-reading {sum(r['duplicates'] for r in rows):,} records"
        )
    for g, n in sorted(excess.items()):
        ev.append(f"group {g}: {n:,} duplicates beyond MirrorMaker 2's prediction")
    return bool(lag_ok) and wrong, values, ev


@rule(
    "group-resumed-from-reset",
    "A consumer group resumed from auto.offset.reset",
    "MirrorMaker 2 had not synced the group's offsets into the standby before cutover (the group was new, not empty in the target, or the sync interval had not passed)",
    "Translate offsets from MM2 checkpoints at cutover (resume: checkpoint), or wait one sync interval after the group first commits; make the sink idempotent for the replay",
)
def _reset(run, f):
    if not f.continuity:
        return None, {}, []
    values = {g: sorted(set(s)) for g, s in sorted(f.sources.items())}
    ev = []
    for g, rows in sorted(f.reset_groups.items()):
        parts = ", ".join(
            f"{r['topic']}[{r['partition']}] committed {r['committed']} resumed {r['resume']}"
            for r in rows
        )
        ev.append(f"{g}: {parts}; {sum(r['duplicates'] for r in rows):,} records re-read")
    return bool(f.reset_groups), values, ev


@rule(
    "duplicates-vs-prediction",
    "Duplicates measured beyond what MirrorMaker 2's offset sync predicts",
    "Consumers re-read more than offset.lag.max plus one sync interval of records: offsets were not synced or translated at cutover",
    "Check the group's resume source; lower offset.lag.max or the sync interval, or translate from checkpoints",
)
def _dup_pred(run, f):
    if not f.continuity:
        return None, {}, []
    pred = predicted_duplicates(run, f)
    values = {
        "mm2": f"offset.lag.max {f.mm2['offset_lag_max']}, sync interval {f.mm2['sync_interval_s']} s ({f.mm2_source})"
    }
    values.update(
        {
            g: f"measured {p['measured']:,}, predicted <= {p['predicted']:,} ({'/'.join(p['sources'])})"
            for g, p in pred.items()
        }
    )
    over = [g for g, p in pred.items() if p["measured"] > p["predicted"]]
    return bool(over), values, [f"{g}: {values[g]}" for g in over]


@rule(
    "cutover-slow",
    "Data is fresh, but cutover takes too long",
    "Routing, DNS, approval, or client configuration is the bottleneck",
    "Automate bootstrap changes and pre-approve runbook authority",
    table_row=True,
)
def _cutover(run, f):
    rto = f.rto.get("seconds")
    bound = (run.spec.get("objectives") or {}).get("max_rto_seconds")
    rpo_ok = _rpo_ok(run, f)
    if rto is None:
        return (
            (None if f.status != "completed" else rpo_ok is not False),
            {"RTO": None, "RPO ok": rpo_ok},
            ["the serving region never delivered a post-fault record to every group"],
        )
    after = sum((f.rto.get(k) or 0.0) for k in ("decide", "cutover", "first_consume"))
    values = {
        "RTO s": round(rto, 3),
        "bound s": bound,
        "detect s": _r(f.rto.get("detect")),
        "decide+cutover+first consume s": round(after, 3),
        "RPO ok": rpo_ok,
    }
    slow = (bound is not None and rto > bound) or after > max(5.0, f.rto.get("detect") or 0.0)
    return (
        bool(rpo_ok) and slow,
        values,
        [f"RTO {rto:.2f} s, of which {after:.2f} s after detection (bound {bound} s)"],
    )


@rule(
    "standby-capacity",
    "Standby region cannot absorb peak load",
    "Capacity model is based on idle standby assumptions",
    "Reserve or automate capacity and rerun with peak-like traffic",
    table_row=True,
)
def _capacity(run, f):
    cap = f.capacity or {}
    s, p = cap.get("throughput_rps"), cap.get("pre_fault_throughput_rps")
    bound = (run.spec.get("objectives") or {}).get("max_throughput_drop")
    drop, offered = cap.get("throughput_drop"), cap.get("offered_rps")
    if bound is not None and drop is not None:  # the spec's objective, against the offered load
        return (
            drop > bound,
            {"serving rec/s": s, "offered rec/s": offered, "drop": f"{drop:.1%}",
             "max_throughput_drop": f"{bound:.1%}", "shape": cap.get("shape")},
            [cap.get("finding") or f"serving {s:.1f} rec/s of {offered:.1f} offered: drop {drop:.1%}"],
        )  # fmt: skip
    if s is None or not p:
        return None, {"serving rec/s": s, "pre-fault rec/s": p}, []
    return (
        s < CAPACITY_RATIO * p,
        {"serving rec/s": s, "pre-fault rec/s": p, "threshold": f"{CAPACITY_RATIO:.0%}"},
        [f"serving {s:.1f} rec/s = {s / p:.0%} of the pre-fault {p:.1f} rec/s"],
    )


@rule(
    "duplicates-or-reordering",
    "Recovery creates unacceptable duplicate or reordered events",
    "Application semantics are not aligned with replication behavior",
    "Add idempotency, ordering constraints, or workload-specific failover rules",
    table_row=True,
)
def _dups(run, f):
    if not run.measurements:
        return None, {}, []
    obj = run.spec.get("objectives") or {}
    untolerated = {
        k: a["count"]
        for k, a in f.anomalies.items()
        if k in ("duplicate", "reordered") and not a.get("tolerated")
    }
    maxd = obj.get("max_duplicates")
    values = {
        "duplicate/reordered anomalies": {
            k: a["count"] for k, a in f.anomalies.items() if k in ("duplicate", "reordered")
        },
        "consumer duplicates": f.duplicates,
        "max_duplicates": maxd,
    }
    ev = [f"{k}: {n} records" for k, n in untolerated.items()]
    if maxd is not None and f.duplicates > maxd:
        ev.append(f"consumers re-read {f.duplicates:,} records, bound {maxd:,}")
    return bool(ev), values, ev


@rule(
    "data-movement-dominates",
    "Broker-local data movement dominates recovery time",
    "Storage ownership is limiting elasticity",
    "Evaluate Shared Storage architecture and stateless brokers",
    table_row=True,
)
def _movement(run, f):
    rto = f.rto.get("seconds")
    moving = sum(
        s.get("duration") or 0.0
        for s in f.steps
        if s.get("phase") == "cutover"
        and not s.get("name", "").startswith(("fence", "move clients"))
    )
    if rto is None:
        return None, {"data-moving cutover steps s": round(moving, 3)}, []
    values = {
        "data-moving cutover steps s": round(moving, 3),
        "RTO s": round(rto, 3),
        "inter-region bytes": run.ev.get("inter_region_bytes"),
    }
    return (
        moving >= 0.5 * rto,
        values,
        [
            f"{moving:.2f} s of the {rto:.2f} s RTO went to stopping replication and snapshotting offsets"
        ],
    )


@rule(
    "parity-differences",
    "Control state differs between the regions",
    "Topics, partitions, configs or groups exist in the primary only or differ; clients may find them missing after cutover",
    "Replicate or recreate the missing state before the next drill (MM2 does not copy group ACLs, users or quotas)",
)
def _parity(run, f):
    if f.parity is None:
        return None, {}, []
    diffs = {k: v for k, v in f.parity.items() if v}
    return (
        bool(diffs),
        {k: (len(v) if hasattr(v, "__len__") else v) for k, v in f.parity.items()},
        [f"{k}: {v}" for k, v in diffs.items()],
    )


@rule(
    "lag-near-bound",
    "Replication lag or RPO is near its bound",
    "The standby is fresh enough today with little margin; load growth will breach the objective",
    "Raise replication throughput (tasks, bandwidth) or revisit the bound before traffic grows",
)
def _near(run, f):
    ss, obj = run.spec.get("steady_state") or {}, run.spec.get("objectives") or {}
    pairs = {
        "replication lag s": (
            f.steady.get("max_replication_lag_s"),
            ss.get("max_replication_lag_s"),
        ),
        "RPO s": (f.rpo.get("seconds"), obj.get("max_rpo_seconds")),
        "RPO records": (f.rpo.get("records"), obj.get("max_rpo_records")),
    }
    known = {k: v for k, v in pairs.items() if v[0] is not None and v[1]}
    if not known:
        return None, {}, []
    near = [
        f"{k}: {v:.3g} of bound {b:.3g} ({v / b:.0%})"
        for k, (v, b) in known.items()
        if v >= NEAR * b
    ]
    return bool(near), {k: f"{v:.3g} / {b:.3g}" for k, (v, b) in known.items()}, near


@rule(
    "split-brain",
    "The old primary acknowledged writes after the fence",
    "Fencing did not stop every client path to the old primary",
    "Fence at the network and the credentials, and verify before moving clients",
)
def _split(run, f):
    n = f.rpo.get("split_brain")
    if n is None:
        return None, {}, []
    return (
        n > 0,
        {"split-brain writes": n},
        [f"{n} writes acknowledged by the old primary after T_fence"],
    )


@rule(
    "records-lost",
    "Acknowledged records were lost at the fault",
    "Asynchronous replication: what the primary acknowledged but MM2 had not copied when it stopped",
    "Accept and document the RPO, or reduce replication lag; have producers replay from their ledger",
)
def _lost(run, f):
    n = f.rpo.get("records")
    if n is None:
        return None, {}, []
    return (
        n > 0,
        {
            "RPO records": n,
            "RPO s": _r(f.rpo.get("seconds")),
            "indeterminate": f.rpo.get("indeterminate"),
        },
        [
            f"{n} acknowledged records absent from the standby below its end offsets (oldest acknowledged {_r(f.rpo.get('seconds'))} s before the fault)"
        ],
    )


@rule(
    "not-recovered",
    "The drill did not complete a recovery",
    "The drill stopped (failure, interrupt or refusal) or a group never consumed in the serving region",
    "Read the journal's failed step; rerun once its cause is fixed",
)
def _not_recovered(run, f):
    failed = [
        f"{s['phase']}: {s.get('name')} {s.get('status')} {s.get('error') or ''}".strip()
        for s in f.steps
        if s.get("status") not in ("completed", None)
    ]
    fired = f.status != "completed" or not f.recovered
    return fired, {"status": f.status, "recovered": f.recovered}, failed or [f"status {f.status}"]


def _rpo_ok(run, f) -> bool | None:
    obj = run.spec.get("objectives") or {}
    rec, b = f.rpo.get("records"), obj.get("max_rpo_records")
    if rec is None:
        return None
    return b is None or rec <= b


def _r(x):
    return None if x is None else round(x, 3)


@rule(
    "coverage-gap",
    "Records acknowledged on partitions replication never covered",
    "Topic coverage is assumed, not checked: partitions added (or a topic recreated) are "
    "replicated only after MirrorMaker 2's next topic refresh",
    "Check topic coverage (partition counts in both regions) before cutover, shorten "
    "refresh.topics.interval.seconds, or pause producers while partitions are added",
)
def _coverage(run, f):
    cov = run.ev.get("coverage")
    if cov is None:
        return None, {}, []
    gaps = cov.get("uncovered_partitions") or []
    return (
        bool(gaps),
        {"uncovered partitions": len(gaps), "never replicated": cov.get("never_replicated")},
        [f"{g['topic']}[{g['partition']}]: {g['never_replicated']} of {g['acknowledged']} "
         f"acknowledged records never replicated to {g['standby_topic']}"
         f"{'' if g['in_standby'] else ' (the partition did not exist there at cutover)'}"
         for g in gaps],
    )  # fmt: skip


def diagnose(run: RunData, f: Facts) -> list[Finding]:
    return [r.evaluate(run, f) for r in RULES]


def unresolved_risks(
    findings: list[Finding], layer_checks: list[Check], passed: bool | None
) -> list[str]:
    """What the drill leaves open: findings that fired while the drill passed, what was not measured."""
    risks = []
    for x in findings:
        if x.fired and passed:
            risks.append(f"{x.title} (does not fail the drill): {x.action}")
        elif x.fired is None:
            risks.append(f"could not evaluate: {x.title}")
    for c in layer_checks:
        if not c.measured:
            risks.append(f"{c.layer}: {c.name} not measured ({c.note})")
    return risks

"""The five layers of the seed as checks: measured value, bound, met -- or "not measured" and why.

Layers: data freshness, client behaviour, control state, capacity and cost,
operating model. A check without a bound reports its value with met = None;
a check the drill could not measure has value None and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drills.report.facts import Facts, step_seconds
from drills.report.load import RunData

LAYERS = (
    "data freshness",
    "client behaviour",
    "control state",
    "capacity and cost",
    "operating model",
)
#: The report's own threshold for "the standby absorbed the load" (no spec objective says it).
CAPACITY_RATIO = 0.9


@dataclass
class Check:
    layer: str
    name: str
    value: Any
    bound: Any = None
    met: bool | None = None
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.value is not None

    @property
    def state(self) -> str:
        if not self.measured:
            return "not measured"
        return {True: "met", False: "MISSED", None: "no bound"}[self.met]


def _le(value, bound) -> bool | None:
    if value is None or bound is None:
        return None
    return value <= bound


def _s(x: float | None) -> str | None:
    return None if x is None else f"{x:.3f} s"


def checks(run: RunData, f: Facts) -> list[Check]:
    spec = run.spec
    obj = spec.get("objectives") or {}
    ss = spec.get("steady_state") or {}
    why_no_result = (
        f"the drill ended {f.status} before the history was checked"
        if not run.measurements
        else None
    )
    out: list[Check] = []

    def add(layer, name, value, bound=None, met=None, note=""):
        out.append(Check(layer, name, value, bound, met, note))

    def bounded(layer, name, value, bound, note="", seconds=False):
        """A figure against its upper bound (None: not measured / no bound)."""
        fmt = _s if seconds else (lambda x: x)
        add(layer, name, fmt(value), fmt(bound), _le(value, bound), note)

    # Data freshness
    L = LAYERS[0]
    lag = f.steady.get("max_replication_lag_s")
    bounded(
        L,
        "replication lag (steady state, max)",
        lag,
        ss.get("max_replication_lag_s"),
        "" if lag is not None else "steady state not reached",
        seconds=True,
    )
    rec, sec = f.rpo.get("records"), f.rpo.get("seconds")
    bounded(L, "RPO (records lost)", rec, obj.get("max_rpo_records"), why_no_result or "")
    bounded(L, "RPO (seconds)", sec, obj.get("max_rpo_seconds"), why_no_result or "", True)
    for kind, label in (
        ("lost-interior", "missing ranges (interior gaps)"),
        ("duplicate", "duplicate ranges"),
        ("reordered", "reordered ranges"),
    ):
        a = f.anomalies.get(kind)
        n = a["count"] if a else (0 if run.measurements else None)
        met = None if n is None else (n == 0 or bool(a and a.get("tolerated")))
        add(
            L,
            label,
            n,
            0,
            met,
            why_no_result or ("tolerated by the spec" if a and a.get("tolerated") else ""),
        )
    add(
        L,
        "late-replicated records (above E)",
        f.rpo.get("late_replicated"),
        note=why_no_result or "",
    )
    if f.parity is not None:
        missing = f.parity.get("topics_missing_in_standby") or []
        add(
            L,
            "topic coverage (topics missing in the standby)",
            len(missing),
            0,
            not missing,
            ", ".join(missing),
        )
    else:
        add(L, "topic coverage", None, note="preflight inventory not recorded")
    bounded(
        L,
        "offset reconciliation (records skipped)",
        f.skipped if run.measurements else None,
        obj.get("max_skipped"),
        why_no_result or "",
    )

    # Client behaviour
    L = LAYERS[1]
    det = spec.get("detection") or {}
    bounded(
        L,
        "detection time (T_detect - T_fault)",
        f.rto.get("detect") if f.rto else run.instant("t_detect"),
        det.get("timeout_s"),
        f"rule {det.get('rule')}, threshold {det.get('threshold')}",
        seconds=True,
    )
    if f.failed_sends is not None:
        add(L, "failed sends (delivery errors)", f.failed_sends, note=f"of {f.sends} sends")
    else:
        add(L, "failed sends", None, note=run.history_note or "no history")
    add(
        L,
        "indeterminate sends (never acknowledged)",
        f.rpo.get("indeterminate"),
        note=why_no_result or "neither lost nor a gap",
    )
    move = next(
        (
            s
            for s in f.steps
            if s.get("phase") == "cutover" and s.get("name", "").startswith("move clients")
        ),
        None,
    )
    add(
        L,
        "bootstrap change (clients moved)",
        _s(move.get("duration")) if move else None,
        note=(move or {}).get("status", "no cutover step ran"),
    )
    for g, t in sorted((f.rto.get("by_group") or {}).items()):
        add(
            L,
            f"group restart: {g} first consume (since T_fault)",
            _s(t),
            note=f"resumed from {', '.join(sorted(set(f.sources.get(g, [])))) or '-'}",
        )
    bounded(
        L,
        "duplicates consumed (all groups)",
        f.duplicates if run.measurements else None,
        obj.get("max_duplicates"),
        why_no_result or "",
    )
    add(
        L,
        "DNS TTL / service discovery",
        None,
        note="the local pair moves clients by bootstrap list; no DNS in the path",
    )
    add(L, "sink idempotency", None, note="the drill's consumers have no downstream sink")

    # Control state
    L = LAYERS[2]
    if f.parity is not None:
        add(
            L,
            "topic parity (partitions)",
            len(f.parity.get("partition_mismatch") or {}),
            0,
            not f.parity.get("partition_mismatch"),
            _brief(f.parity.get("partition_mismatch")),
        )
        add(
            L,
            "topic config parity",
            len(f.parity.get("config_mismatch") or {}),
            0,
            not f.parity.get("config_mismatch"),
            _brief(f.parity.get("config_mismatch")),
        )
        gm = f.parity.get("groups_missing_in_standby") or []
        add(L, "group parity (groups missing in the standby)", len(gm), 0, not gm, ", ".join(gm))
    else:
        add(L, "topic / group parity", None, note="preflight inventory not recorded")
    if f.acls is not None:
        add(
            L,
            "ACLs (primary / standby)",
            f"{f.acls[0]} / {f.acls[1]}",
            note="MM2 copies topic ACLs only (WRITE skipped, ALL becomes READ)",
        )
    counts = (f.parity or {}).get("counts")
    if counts is not None:
        breaking = [
            d["subject"] for d in f.parity.get("differences", []) if d["severity"] == "breaks"
        ]
        add(L, "control-state differences that break clients after failover", len(breaking), 0,
            not breaking, "; ".join(breaking[:5]) or
            f"{counts.get('degrades', 0)} degrade, {counts.get('cosmetic', 0)} cosmetic")  # fmt: skip
        regions = f.parity.get("regions") or {}
        for what in ("users", "quotas"):
            a, b = ((regions.get(side) or {}).get(what) for side in ("primary", "standby"))
            add(L, f"{what} (primary / standby)", f"{a} / {b}" if a is not None else None,
                note="not replicated by MM2: compared above" if a is not None else "not readable")  # fmt: skip
    else:
        add(
            L,
            "users, quotas",
            None,
            note="not inventoried (MM2 does not replicate SCRAM users or quotas)",
        )
    add(L, "schemas", None, note="no schema registry in this stack")
    auth = next(
        (x for x in f.steps if str(x.get("name", "")).startswith("authorization check")), None
    )
    checks = ((auth or {}).get("output") or {}).get("checks")
    if checks is not None:
        denied = [c["finding"] for c in checks if not c.get("ok")]
        add(L, "authorization checks in the standby (denied)", len(denied), 0, not denied,
            "; ".join(denied[:3]) or f"{len(checks)} principals authorized")  # fmt: skip
    else:
        add(
            L,
            "authorization checks in the standby",
            None,
            note="not run (no cutover, or a drill recorded before issue 16)",
        )

    # Capacity and cost
    L = LAYERS[3]
    cap = f.capacity or {}
    serving, pre = cap.get("throughput_rps"), cap.get("pre_fault_throughput_rps")
    offered, drop = cap.get("offered_rps"), cap.get("throughput_drop")
    if offered is not None and drop is not None:  # the shape's offered load in the serve window
        bound = obj.get("max_throughput_drop")
        add(
            L,
            "serving vs offered throughput after cutover",
            f"{serving:.1f} / {offered:.1f} rec/s (drop {drop:.1%}; {cap.get('shape', 'steady')})",
            None if bound is None else f"drop <= {bound:.1%}",
            _le(drop, bound),
            "objectives.max_throughput_drop" if bound is not None else "no objective set",
        )
    if serving is not None and pre:
        ratio = serving / pre
        add(
            L,
            "serving vs pre-fault throughput",
            f"{serving:.1f} / {pre:.1f} rec/s ({ratio:.0%})",
            f">= {CAPACITY_RATIO:.0%}",
            ratio >= CAPACITY_RATIO,
            "report threshold, not a spec objective",
        )
    else:
        add(
            L,
            "serving vs pre-fault throughput",
            None,
            note="the drill did not reach the serve phase",
        )
    thr = f.steady.get("throughput_rps")
    add(
        L,
        "steady-state throughput",
        None if thr is None else f"{thr:.1f} rec/s",
        ss.get("min_throughput_rps") and f">= {ss['min_throughput_rps']} rec/s",
        None
        if thr is None or ss.get("min_throughput_rps") is None
        else thr >= ss["min_throughput_rps"],
    )
    add(L, "headroom (CPU of the serving region)", None, note="per-region CPU use is not recorded")
    add(L, "inter-region bytes", run.ev.get("inter_region_bytes"))
    cost = run.ev.get("cost") or {}
    final = cost.get("final") or cost.get("projected")
    budget = cost.get("budget_usd")
    if final:
        add(
            L,
            f"drill cost ({final.get('basis')})",
            f"{final.get('total_usd', 0):.4f} {final.get('currency', 'USD')}",
            budget,
            _le(final.get("total_usd"), budget),
            final.get("note", "")[:160],
        )
    else:
        add(L, "drill cost", None, note="no cost section in the evidence")

    # Operating model
    L = LAYERS[4]
    dec = spec.get("decision") or {}
    add(
        L,
        "decision mode",
        dec.get("mode"),
        note=f"approver: {run.ev.get('approver')}"
        if run.ev.get("approver")
        else "no human approval",
    )
    for phase in ("detect", "decide", "cutover", "serve", "verify", "teardown"):
        secs = step_seconds(f, phase)
        ran = any(s.get("phase") == phase for s in f.steps)
        add(
            L,
            f"step time: {phase}",
            _s(secs) if ran else None,
            note="" if ran else "step did not run",
        )
    rto = f.rto.get("seconds")
    bounded(
        L,
        "RTO",
        rto,
        obj.get("max_rto_seconds"),
        why_no_result or ("" if rto is not None else "not every group consumed after the fault"),
        seconds=True,
    )
    rb = spec.get("rollback") or {}
    add(
        L,
        "rollback condition",
        rb.get("rule"),
        note="rollback not exercised"
        if rb.get("rule") in (None, "none")
        else f"require zero lag: {rb.get('require_zero_lag')}, rebuild: {rb.get('rebuild')}",
    )
    if rb.get("rule") == "failback":
        _failback(run.ev.get("failback") or {}, obj, rb, add, bounded)
    return out


def _failback(fb: dict, obj: dict, rb: dict, add, bounded) -> None:
    """The failback's rows (drills/failback.py): the failover's definitions, roles swapped."""
    L = LAYERS[4]
    if not fb.get("completed"):
        add(L, "failback", None, note=fb.get("why") or "the failback did not run")
        return
    rto, rpo = fb.get("rto") or {}, fb.get("rpo") or {}
    bounded(L, f"failback RTO ({fb['from']} -> {fb['to']})", rto.get("seconds"),
            obj.get("max_rto_seconds"), "switch + fence + move + first consume on the old primary",
            seconds=True)  # fmt: skip
    bounded(L, "failback RPO (records)", rpo.get("records"),
            0 if rb.get("require_zero_lag") else obj.get("max_rpo_records"))  # fmt: skip
    sb = fb.get("split_brain") or {}
    total = sum(v or 0 for v in sb.values())
    bounded(L, "split-brain writes, both directions", total, obj.get("max_split_brain_writes"),
            "; ".join(f"{k}: {v}" for k, v in sb.items()))  # fmt: skip
    dup = sum(c.get("duplicates", 0) for c in fb.get("continuity") or [])
    skipped = sum(c.get("skipped", 0) for c in fb.get("continuity") or [])
    add(L, "failback continuity", f"{dup} duplicates, {skipped} skipped", obj.get("max_skipped"),
        skipped <= (obj.get("max_skipped") or 0))  # fmt: skip
    res = fb.get("resurrected") or {}
    read = fb.get("topics_read_after_failback") or {}
    add(L, "resurrected records (the old primary's lost tail, readable again)",
        res.get("count"), 0 if rb.get("rebuild") else None,
        (res.get("count") == 0) if rb.get("rebuild") else None,
        f"lost at failover {res.get('lost_at_failover')}, read again {res.get('read_again')} "
        f"{res.get('by_group')}; consumers read after failback: {read}")  # fmt: skip


def _brief(d: dict | None) -> str:
    if not d:
        return ""
    return "; ".join(f"{k}: {v}" for k, v in list(d.items())[:5])[:200]

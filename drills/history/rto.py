"""Recovery time: from the fault to the first post-fault record every group consumed in service.

RTO = max over groups g of T_consume(g) - T_fault, split into contiguous parts
that add up to it: detect (T_detect - T_fault), decide (T_decide - T_detect),
cutover (T_cut - T_decide) and first-consume (max T_consume - T_cut). A part
is None when one of its instants was not recorded; RTO itself needs only
T_fault and every group's T_consume, and is None if any group never
consumed a post-fault record in the serving region (a drill that did not recover).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drills.history.index import HistoryIndex
from drills.history.model import Instants


@dataclass(frozen=True)
class Rto:
    seconds: float | None
    detect: float | None
    decide: float | None
    cutover: float | None
    first_consume: float | None
    #: T_consume(g) - T_fault per group; None for a group that never consumed a post-fault record.
    by_group: dict[str, float | None]
    slowest_group: str | None
    #: T_fence - T_fault, shown inside the cutover part (fencing happens between decide and cut).
    fence: float | None


def measure_rto(index: HistoryIndex, notes: list[str]) -> Rto:
    meta = index.meta
    ins = meta.instants
    reads = index.reads
    # Group codes are small dense integers: a count finds those present without sorting the reads.
    codes = np.flatnonzero(np.bincount(reads.group[reads.group >= 0], minlength=len(reads.groups)))
    present = sorted(reads.groups.values[g] for g in codes.tolist())
    groups = list(meta.groups) or present
    consumed: dict[str, float] = {}
    if ins.t_fault is not None and len(reads):
        after = reads.select(
            (reads.cluster == reads.clusters.code(meta.serving)) & (reads.produced_at > ins.t_fault)
        )
        if len(after):
            distinct, inverse = np.unique(after.group, return_inverse=True)
            first = np.full(len(distinct), np.inf)
            np.minimum.at(first, inverse, after.poll_time)
            consumed = {
                reads.groups.values[g]: t
                for g, t in zip(distinct.tolist(), first.tolist(), strict=True)
            }
    by_group = {g: _minus(consumed.get(g), ins.t_fault) for g in groups}
    missing = [g for g, t in by_group.items() if t is None]
    if ins.t_fault is None:
        notes.append("T_fault not recorded: no RTO")
    elif missing:
        notes.append(f"groups never consumed a post-fault record in {meta.serving}: {missing}")
    end = None if missing or not groups else max(consumed[g] for g in groups)
    slowest = max(groups, key=lambda g: consumed[g]) if end is not None else None
    parts = [
        _minus(ins.t_detect, ins.t_fault),
        _minus(ins.t_decide, ins.t_detect),
        _minus(ins.t_cut, ins.t_decide),
        _minus(end, ins.t_cut),
    ]
    if any(p is not None and p < 0 for p in parts):
        notes.append(
            "instants out of order (T_fault <= T_detect <= T_decide <= T_cut <= T_consume): "
            f"parts {parts}"
        )
    return Rto(
        seconds=_minus(end, ins.t_fault),
        detect=parts[0],
        decide=parts[1],
        cutover=parts[2],
        first_consume=parts[3],
        by_group=by_group,
        slowest_group=slowest,
        fence=_minus(ins.t_fence, ins.t_fault),
    )


def _minus(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


def from_instants(
    ins: Instants,
    consumed: dict[str, float | None],
    end: float | None,
    slowest: str | None,
    fenced: bool = True,
) -> Rto:
    """The Rto of a pattern whose checker finds each group's first post-fault consume itself
    (dual-write, active-active): the parts from the run's instants, `end` the instant that
    closes the RTO (the slowest group's first consume, None when one never consumed);
    `fenced`: a fence is part of the cutover (not in active-active, where nothing moves)."""
    return Rto(
        seconds=_minus(end, ins.t_fault),
        detect=_minus(ins.t_detect, ins.t_fault),
        decide=_minus(ins.t_decide, ins.t_detect),
        cutover=_minus(ins.t_cut, ins.t_decide),
        first_consume=_minus(end, ins.t_cut),
        by_group={g: _minus(t, ins.t_fault) for g, t in consumed.items()},
        slowest_group=slowest,
        fence=_minus(ins.t_fence, ins.t_fault) if fenced else None,
    )

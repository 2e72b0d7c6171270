"""The history checker: one call from a recorded drill history to its figures and anomalies.

``check(history, policy)`` builds the shared indexes once, measures RTO, RPO
and consumer continuity, runs one detector per anomaly type and returns a
CheckResult. The result is *valid* when every anomaly type found is one the
drill's policy tolerates (an asynchronous-replication drill tolerates
lost-tail: its size is judged by the RPO objective, not here).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from drills.history import anomalies
from drills.history.allocator import without_huge_pages
from drills.history.cases import (
    ANOMALIES,
    DUPLICATE,
    LATE,
    LOST_INTERIOR,
    LOST_TAIL,
    REORDERED,
    SKIPPED,
    SPLIT_BRAIN,
    Case,
)
from drills.history.continuity import Continuity, measure_continuity
from drills.history.index import HistoryIndex, build_index
from drills.history.model import History
from drills.history.rpo import Rpo, measure_rpo
from drills.history.rto import Rto, measure_rto


@dataclass(frozen=True)
class CheckPolicy:
    """Which anomaly types the drill accepts, and how many cases a condensed report shows."""

    tolerate: frozenset[str] = frozenset()
    sample: int = 3

    def __post_init__(self) -> None:
        unknown = set(self.tolerate) - set(ANOMALIES)
        if unknown:
            raise ValueError(f"unknown anomaly types {sorted(unknown)}; known: {list(ANOMALIES)}")
        object.__setattr__(self, "tolerate", frozenset(self.tolerate))


@dataclass(frozen=True)
class CheckResult:
    valid: bool
    found: tuple[str, ...]  # anomaly types with at least one case, in ANOMALIES order
    tolerated: tuple[str, ...]  # of those, the ones the policy accepts
    rto: Rto
    rpo: Rpo
    continuity: tuple[Continuity, ...]
    anomalies: Mapping[str, tuple[Case, ...]]
    notes: tuple[str, ...]
    policy: CheckPolicy = field(default_factory=CheckPolicy)

    def sample(self, limit: int | None = None) -> dict[str, dict]:
        """Per anomaly type found: its case count, whether tolerated, and the first ``limit`` cases."""
        return self._cases(self.policy.sample if limit is None else limit)

    def _cases(self, limit: int | None) -> dict[str, dict]:
        return {
            name: {
                "count": len(self.anomalies[name]),
                "tolerated": name in self.tolerated,
                "cases": [case.to_dict() for case in self.anomalies[name][:limit]],
            }
            for name in self.found
        }

    def to_dict(self, full: bool = False) -> dict:
        """JSON-ready: every case when ``full``, else the condensed sample."""
        cases = self._cases(None if full else self.policy.sample)
        return {
            "valid": self.valid,
            "found": list(self.found),
            "tolerated": list(self.tolerated),
            "rto": asdict(self.rto),
            "rpo": asdict(self.rpo),
            "continuity": [asdict(c) for c in self.continuity],
            "anomalies": cases,
            "notes": list(self.notes),
        }


def check(history: History, policy: CheckPolicy | None = None) -> CheckResult:
    """Compute every figure and anomaly of ``history``; see the module docstring for validity."""
    with without_huge_pages():  # see allocator.py
        return _check(history, policy or CheckPolicy())


def _continuity(index: HistoryIndex, notes: list[str]) -> tuple[list[Continuity], tuple[Case, ...]]:
    """Consumer continuity and the skipped-by-offset cases it defines (_check's second thread)."""
    continuity = measure_continuity(index, notes)
    return continuity, tuple(anomalies.skipped(index, continuity))


def _check(history: History, policy: CheckPolicy) -> CheckResult:
    # One second thread for the index and the detectors (see build_index).
    with ThreadPoolExecutor(max_workers=1) as pool:
        index = build_index(history, pool)
        notes = list(index.notes)
        # Continuity (numpy over the reads and the log) runs in the second thread while this
        # one builds the other detectors' evidence (mostly Python objects): they overlap on
        # two cores. Only continuity adds notes before the RTO does, so their order is unchanged.
        measuring = pool.submit(_continuity, index, notes)
        index.by_partition()  # continuity's (the longer thread's) partition look-ups, here
        lost = anomalies.lost_runs(index)
        cases: dict[str, tuple[Case, ...]] = {
            DUPLICATE: tuple(anomalies.duplicates(index)),
            REORDERED: tuple(anomalies.reordered(index)),
            LATE: tuple(anomalies.late(index)),
            SPLIT_BRAIN: tuple(anomalies.split_brain(index)),
        }
        rpo = measure_rpo(index)
        rto_notes: list[str] = []  # after continuity's in ``notes``, as when run in turn
        rto = measure_rto(index, rto_notes)
        continuity, skipped = measuring.result()
    notes.extend(rto_notes)
    found_cases: dict[str, tuple[Case, ...]] = {
        LOST_TAIL: tuple(c for c in lost if c.anomaly == LOST_TAIL),
        LOST_INTERIOR: tuple(c for c in lost if c.anomaly == LOST_INTERIOR),
        DUPLICATE: cases[DUPLICATE],
        REORDERED: cases[REORDERED],
        LATE: cases[LATE],
        SKIPPED: skipped,
        SPLIT_BRAIN: cases[SPLIT_BRAIN],
    }
    found = tuple(name for name in ANOMALIES if found_cases[name])
    tolerated = tuple(name for name in found if name in policy.tolerate)
    return CheckResult(
        valid=len(found) == len(tolerated),
        found=found,
        tolerated=tolerated,
        rto=rto,
        rpo=rpo,
        continuity=tuple(continuity),
        anomalies=found_cases,
        notes=tuple(notes),
        policy=policy,
    )

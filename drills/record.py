"""The run record: everything a drill established, typed and versioned, filled by the engine.

The engine fills one `RunRecord` as the drill goes; everything downstream --
the evidence file, the cost export, the terminal summary, later the report --
reads the record, never the engine or the target. It holds the spec, the
journal, the target's facts (stack, regions, replication, versions, and what
the target is made of for pricing), the instants, the steady state before the
fault and the throughput after it, the history check's result, the verdict,
and the counters the cost model needs. `sections` is where hooks put what they
add (the cost section), so evidence can carry it without knowing who made it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drills.journal import Journal

if TYPE_CHECKING:
    from drills.cost.model import Inventory
    from drills.history import CheckResult
    from drills.spec import DrillSpec

RECORD_VERSION = 1
INSTANTS = ("t_fault", "t_detect", "t_decide", "t_fence", "t_cut")


@dataclass(frozen=True)
class TargetFacts:
    """What a run record keeps of the target: enough to read the evidence without it."""

    stack: str
    kind: str  # "local", later "aws"
    primary: str
    standby: str
    policy: str
    replication_engine: str = "mirrormaker2"
    versions: dict[str, str | None] = field(default_factory=dict)
    # how replication is tuned, where the target knows (e.g. sync_interval_s, offset_lag_max)
    replication_settings: dict[str, Any] = field(default_factory=dict)
    # What the environment does beside the drill that a reader must know (e.g. on AWS, what
    # S3 cross-region replication does under region loss); absent when empty.
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "stack": self.stack,
            "kind": self.kind,
            "primary": self.primary,
            "standby": self.standby,
            "replication": {
                "engine": self.replication_engine,
                "policy": self.policy,
                **self.replication_settings,
            },
            "versions": dict(self.versions),
        }
        if self.notes:
            out["notes"] = dict(self.notes)
        return out


@dataclass
class RunRecord:
    run_id: str
    spec: DrillSpec
    run_dir: Path
    journal: Journal
    target: TargetFacts
    cost_inventory: Inventory | None = None  # what the target is made of, for pricing
    cost_inventory_error: str | None = None  # why the target could not say
    version: int = RECORD_VERSION
    status: str = "running"  # running | completed | failed | aborted | interrupted | refused
    exit_code: int = 2
    instants: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(INSTANTS))
    fault_id: str | None = None  # the incident's
    # the fault timeline: per fault, its kind, when it was due and applied and cleared
    # (monotonic, and seconds since the incident), its id and stack update
    faults: list[dict[str, Any]] = field(default_factory=list)
    # what detection saw: the rule, which rule fired on what with the observation, the
    # delivery failures clients saw before it, the last probe / lag observations
    detection: dict[str, Any] = field(default_factory=dict)
    failover: bool = True  # false once detection found nothing (or the spec says so)
    serving: str = ""  # the region serving clients at the end
    steady_before: dict[str, Any] = field(default_factory=dict)  # steady state before the fault
    steady_after: dict[str, Any] | None = None  # throughput the serving region sustained after
    approver: str | None = None
    result: CheckResult | None = None  # the history check
    verdict: dict[str, Any] = field(default_factory=dict)
    acknowledged: int = 0  # records acknowledged by any region during the drill
    out_bytes_start: dict[str, int] = field(default_factory=dict)  # per region, at the start
    out_bytes_end: dict[str, int] = field(default_factory=dict)  # per region, after the drill
    uploaded_to: str | None = None
    upload_error: str | None = None
    sections: dict[str, Any] = field(default_factory=dict)  # added by hooks (e.g. "cost")

    @property
    def drill(self) -> str:
        return self.spec.name

    @property
    def started(self) -> float:
        """Wall-clock start (the journal's)."""
        return self.journal.started

    @property
    def ended(self) -> float:
        return self.journal.ended or time.time()

    @property
    def inter_region_bytes(self) -> int:
        """Bytes that crossed between the regions during the drill, both directions."""
        return sum(
            max(0, n - self.out_bytes_start.get(region, 0))
            for region, n in self.out_bytes_end.items()
        )

    def out_bytes_by_region(self) -> dict[str, int]:
        """Per region: bytes it sent to the other during the drill."""
        return {
            region: max(0, n - self.out_bytes_start.get(region, 0))
            for region, n in self.out_bytes_end.items()
        }

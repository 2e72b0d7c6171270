"""A drill with the standard listeners: the cost guard and export, the evidence, the report.

The engine knows no listener; this is where the usual ones are put together, so
the CLI, the tests and the benches run a drill the same way:

    outcome = run_drill(spec, target, run_dir, Callbacks(info=print))
    outcome.exit_code, outcome.evidence["measurements"]["rpo"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drills.cost import CostHooks
from drills.engine import EXIT_NOT_RUN, Drill
from drills.evidence import EvidenceHooks
from drills.hooks import Hooks
from drills.record import RunRecord
from drills.report.build import ReportHooks
from drills.targets.base import Target


@dataclass
class DrillOutcome:
    exit_code: int
    status: str
    run_dir: Path
    record: RunRecord
    evidence: dict[str, Any] = field(default_factory=dict)


def make_drill(spec, target: Target, run_dir: Path, *hooks: Hooks) -> tuple[Drill, EvidenceHooks]:
    """The drill with cost, evidence and report listening first, in that order (the cost
    section must exist before the evidence is written, the evidence before the report;
    the report hook writes the signed manifest.json last), then `hooks`."""
    evidence = EvidenceHooks()
    return Drill(spec, target, run_dir, [CostHooks(), evidence, ReportHooks(), *hooks]), evidence


def run_drill(spec, target: Target, run_dir: Path, *hooks: Hooks) -> DrillOutcome:
    drill, evidence = make_drill(spec, target, run_dir, *hooks)
    record = drill.run()
    code = record.exit_code if record.status == "completed" else EXIT_NOT_RUN
    return DrillOutcome(code, record.status, record.run_dir, record, evidence.document)

"""Drill history: the recorded facts of a drill, their on-disk form, and the checker.

Typical use::

    builder = HistoryBuilder()
    builder.ack(...); builder.read(...); builder.commit(...); builder.logged(...)
    history = builder.build(DrillMeta(primary="a", standby="b", topics=("orders",), ...))
    write_history(history, run_dir / "history")
    result = check(read_history(run_dir / "history"), CheckPolicy(tolerate={LOST_TAIL}))
    result.rto.seconds, result.rpo.records, result.continuity, result.sample()
"""

from drills.history.builder import HistoryBuilder
from drills.history.cases import (
    ANOMALIES,
    DUPLICATE,
    LATE,
    LOST_INTERIOR,
    LOST_TAIL,
    REORDERED,
    SKIPPED,
    SPLIT_BRAIN,
)
from drills.history.checker import CheckPolicy, CheckResult, check
from drills.history.continuity import Continuity
from drills.history.model import (
    DrillMeta,
    History,
    HistoryError,
    Instants,
    ReplicationPolicy,
    ResumeSource,
    TopicMapping,
)
from drills.history.rpo import Rpo
from drills.history.rto import Rto
from drills.history.storage import SCHEMA_VERSION, read_history, write_history
from drills.history.window import (
    RESURRECTED,
    Resurrected,
    failback_window,
    failover_window,
    resurrected,
)

__all__ = [
    "ANOMALIES",
    "DUPLICATE",
    "LATE",
    "LOST_INTERIOR",
    "LOST_TAIL",
    "REORDERED",
    "RESURRECTED",
    "SCHEMA_VERSION",
    "SKIPPED",
    "SPLIT_BRAIN",
    "CheckPolicy",
    "CheckResult",
    "Continuity",
    "DrillMeta",
    "History",
    "HistoryBuilder",
    "HistoryError",
    "Instants",
    "ReplicationPolicy",
    "Resurrected",
    "ResumeSource",
    "Rpo",
    "Rto",
    "TopicMapping",
    "check",
    "failback_window",
    "failover_window",
    "read_history",
    "resurrected",
    "write_history",
]

"""One detector per anomaly type, each returning its cases with the evidence that proves them.

Every detector reads the shared ``HistoryIndex`` (built once) and nothing else,
except ``skipped``, which reads the continuity measurement it is defined by.
"""

from drills.history.anomalies.duplicate import duplicates
from drills.history.anomalies.late import late
from drills.history.anomalies.lost import lost_runs
from drills.history.anomalies.reordered import reordered
from drills.history.anomalies.skipped import skipped
from drills.history.anomalies.split_brain import split_brain

__all__ = ["duplicates", "late", "lost_runs", "reordered", "skipped", "split_brain"]

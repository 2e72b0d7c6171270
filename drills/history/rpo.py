"""Recovery point: what the primary acknowledged that the standby did not have at cutover.

Lost = records the primary acknowledged (ack time <= T_fence) that are absent
from the standby below the end offsets E snapshotted at cutover.
RPO(records) = their count; RPO(seconds) = T_fault - the oldest lost record's
ack time, 0 when nothing is lost. It is negative when every lost record was
acknowledged after the fault (the primary kept accepting writes until fenced,
e.g. during an inter-region partition); ``records`` still says what was lost.

Reported beside it: split-brain writes (acknowledged by the old primary after
T_fence), late-replicated records (found at or above E; they are also in
``records``) and indeterminate records (sent, never acknowledged: neither lost
nor a gap), with how many of those did land in the serving log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drills.history.anomalies.late import late_ranks
from drills.history.index import SEGMENT_PRIMARY, HistoryIndex


@dataclass(frozen=True)
class Rpo:
    records: int
    seconds: float | None
    oldest_lost_ack_time: float | None
    #: Primary acknowledgements up to T_fence: the records RPO is a fraction of.
    acknowledged: int
    split_brain: int
    late_replicated: int
    indeterminate: int
    indeterminate_found: int


def measure_rpo(index: HistoryIndex) -> Rpo:
    a = index.arrays
    primary = a["w_segment"] == SEGMENT_PRIMARY
    lost = primary & a["w_lost"]
    acked = a["w_acked"]
    split_brain = a["w_split_brain"]
    records = int(np.count_nonzero(lost))
    oldest = float(a["w_ack_time"][lost].min()) if records else None
    t_fault = index.meta.instants.t_fault
    seconds = 0.0 if oldest is None else (None if t_fault is None else t_fault - oldest)
    indeterminate = ~acked
    return Rpo(
        records=records,
        seconds=seconds,
        oldest_lost_ack_time=oldest,
        acknowledged=int(np.count_nonzero(primary & acked & ~split_brain)),
        split_brain=int(np.count_nonzero(split_brain)),
        late_replicated=len(late_ranks(index)),
        indeterminate=int(np.count_nonzero(indeterminate)),
        indeterminate_found=int(np.count_nonzero(indeterminate & a["w_found"])),
    )

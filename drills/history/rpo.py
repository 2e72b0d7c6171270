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

import pyarrow.compute as pc

from drills.history.anomalies.late import late_rows
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
    writes = index.writes
    primary = pc.equal(writes["segment"], SEGMENT_PRIMARY)
    lost = writes.filter(pc.and_(primary, writes["lost"]))
    expected = pc.and_(primary, pc.and_(writes["acked"], pc.invert(writes["split_brain"])))
    indeterminate = writes.filter(pc.invert(writes["acked"]))
    oldest = pc.min(lost["ack_time"]).as_py() if lost.num_rows else None
    t_fault = index.meta.instants.t_fault
    seconds = 0.0 if oldest is None else (None if t_fault is None else t_fault - oldest)
    return Rpo(
        records=lost.num_rows,
        seconds=seconds,
        oldest_lost_ack_time=oldest,
        acknowledged=pc.sum(expected).as_py() or 0,
        split_brain=pc.sum(writes["split_brain"]).as_py() or 0,
        late_replicated=late_rows(index).num_rows,
        indeterminate=indeterminate.num_rows,
        indeterminate_found=pc.sum(indeterminate["found"]).as_py() or 0,
    )

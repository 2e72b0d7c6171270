"""Late replication: records MirrorMaker 2 wrote into the standby at or above E.

E is snapshotted once MM2 is stopped at cutover, so nothing from the primary
should land above it. Records above E that were written to the serving
cluster itself are post-cutover writes (IDENTITY policy), not late. A late
record also counts as lost for RPO: consumers had cut over without it.
"""

from __future__ import annotations

import numpy as np

from drills.history.cases import LateCase
from drills.history.index import ROLE_CODES, HistoryIndex
from drills.history.model import Role


def late_ranks(index: HistoryIndex) -> np.ndarray:
    """Log ranks of the serving-log rows replicated at or above E, by topic, partition and
    offset (numpy over the index's columns: no filter of the log table)."""
    a = index.arrays
    above = (a["log_role"] == ROLE_CODES[Role.REPLICATED]) & a["log_end_valid"]
    above &= a["log_offset"] >= a["log_end"]
    ranks = np.flatnonzero(above)
    if len(ranks):
        local = a["w_rid"][a["w_cluster"] == a["w_clusters"].code(index.meta.serving)]
        ranks = ranks[~np.isin(a["log_rid"][ranks], local)]
    order = np.lexsort((a["log_offset"][ranks], a["log_partition"][ranks], a["log_tcode"][ranks]))
    return ranks[order]


def late(index: HistoryIndex) -> list[LateCase]:
    """One case per standby partition that received records after its end offset was taken."""
    ranks = late_ranks(index)
    if not len(ranks):
        return []
    a = index.arrays
    tcode, partition = a["log_tcode"][ranks], a["log_partition"][ranks]
    starts = np.flatnonzero(
        np.concatenate([[True], (tcode[1:] != tcode[:-1]) | (partition[1:] != partition[:-1])])
    )
    found = index.found(ranks.tolist())
    cases = []
    for s, e in zip(starts.tolist(), [*starts[1:].tolist(), len(ranks)], strict=True):
        topic = index.topic_names[int(tcode[s])]
        end = int(a["log_end"][ranks[s]])
        cases.append(LateCase(topic, int(partition[s]), end, e - s, tuple(found[s:e])))
    return cases

"""Late replication: records MirrorMaker 2 wrote into the standby at or above E.

E is snapshotted once MM2 is stopped at cutover, so nothing from the primary
should land above it. Records above E that were written to the serving
cluster itself are post-cutover writes (IDENTITY policy), not late. A late
record also counts as lost for RPO: consumers had cut over without it.
"""

from __future__ import annotations

from itertools import groupby

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drills.history.cases import LateCase
from drills.history.index import ROLE_CODES, HistoryIndex
from drills.history.model import Role


def late_rows(index: HistoryIndex) -> pa.Table:
    """Serving-log rows replicated at or above E, by topic, partition and offset."""
    log = index.log
    above = pc.fill_null(
        pc.and_(
            pc.equal(log["role"], ROLE_CODES[Role.REPLICATED]),
            pc.greater_equal(log["offset"], log["end_offset"]),
        ),
        False,
    )
    rows = log.filter(above)
    if rows.num_rows:
        a = index.arrays
        local = a["w_rid"][a["w_cluster"] == a["w_clusters"].code(index.meta.serving)]
        rows = rows.filter(pa.array(~np.isin(rows["rid"].to_numpy(), local)))
    return rows.sort_by(
        [("tcode", "ascending"), ("partition", "ascending"), ("offset", "ascending")]
    )


def late(index: HistoryIndex) -> list[LateCase]:
    """One case per standby partition that received records after its end offset was taken."""
    cases = []
    rows = late_rows(index).select(["tcode", "partition", "end_offset", "rank"]).to_pylist()
    for (tcode, partition), group in groupby(
        rows, key=lambda row: (row["tcode"], row["partition"])
    ):
        group = list(group)
        found = tuple(index.found([row["rank"] for row in group]))
        topic = index.topic_names[tcode]
        cases.append(LateCase(topic, partition, group[0]["end_offset"], len(found), found))
    return cases

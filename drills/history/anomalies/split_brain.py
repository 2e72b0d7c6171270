"""Split-brain writes: the old primary acknowledged writes after it was fenced.

After T_fence the old primary must not acknowledge anything from our clients;
every such acknowledgement is a write the serving region never sees (unless
replication leaked it, counted as ``replicated``). Must be zero.
"""

from __future__ import annotations

from itertools import groupby

import numpy as np
import pyarrow as pa

from drills.history.cases import SplitBrainCase, Write
from drills.history.index import HistoryIndex
from drills.history.model import plain


def split_brain(index: HistoryIndex) -> list[SplitBrainCase]:
    """One case per primary partition that acknowledged writes after T_fence."""
    a = index.arrays
    at = np.flatnonzero(a["w_split_brain"])  # few rows: taken from the ledger, not filtered
    taken = index.history.stored("writes").take(pa.array(at))
    rows = plain(taken.append_column("found", pa.array(a["w_found"][at]))).sort_by(
        [("topic", "ascending"), ("partition", "ascending"), ("offset", "ascending")]
    )
    t_fence = index.meta.instants.t_fence
    cases = []
    for (topic, partition), group in groupby(
        rows.to_pylist(), key=lambda row: (row["topic"], row["partition"])
    ):
        group = list(group)
        replicated = sum(1 for row in group if row["found"])
        written = tuple(Write.from_row(row) for row in group)
        assert t_fence is not None  # split_brain is only ever set when T_fence is known
        cases.append(SplitBrainCase(topic, partition, t_fence, len(written), written, replicated))
    return cases

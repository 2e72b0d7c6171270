"""Skipped by offset: a group resumed past records it had never committed. The worst outcome.

The count comes from the continuity measurement (records in [ideal, resume));
this detector attaches the records themselves, read from the serving log.
"""

from __future__ import annotations

from drills.history.cases import SkippedCase
from drills.history.continuity import Continuity
from drills.history.index import HistoryIndex


def skipped(index: HistoryIndex, continuity: list[Continuity]) -> list[SkippedCase]:
    cases = []
    for c in continuity:
        if not c.skipped or c.resume is None:
            continue
        ranks = index.ranks_between(c.topic, c.partition, c.ideal, c.resume)
        records = tuple(index.found(ranks))
        cases.append(
            SkippedCase(
                c.group,
                c.topic,
                c.partition,
                c.ideal,
                c.resume,
                c.resume_source,
                c.skipped,
                records,
            )
        )
    return cases

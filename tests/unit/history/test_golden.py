"""Golden test: the checker's full output on seeded random histories, unchanged by optimisation.

The property tests compare the checker with an independent oracle on the
figures the definitions fix (RPO, lost, duplicates, skips); they do not pin
every field of every case, nor the order cases come in. This test does:
``golden.json.gz`` holds ``CheckResult.to_dict(full=True)`` of each history
below as computed by the checker before its numpy rewrite for issue 22 (commit
235ab53), and the current checker must reproduce it exactly, from tables held
plain, split into many chunks, and read back from Parquet (dictionary-encoded).

Regenerate only when a change of results is intended, with the checker whose
output is the reference on the path::

    PYTHONPATH=. .venv/bin/python tests/unit/history/test_golden.py
"""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from drills.history import (
    LOST_TAIL,
    CheckPolicy,
    History,
    ReplicationPolicy,
    TopicMapping,
    check,
    continuity,
    read_history,
    write_history,
)
from drills.history.model import TABLES

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import synthesize  # noqa: E402

GOLDEN = Path(__file__).with_name("golden.json.gz")
POLICY = CheckPolicy(tolerate=frozenset({LOST_TAIL}))

#: (records, keys, seed): small and large key counts, so keys repeat often or rarely.
SIZES = [(3000, 40, 1), (3000, 400, 2), (12000, 100, 3), (12000, 3000, 4)]
#: Metadata variants: the other code paths of the same recorded rows.
VARIANTS = ("prefixed", "identity", "no-failover", "no-fence")


def history(records: int, keys: int, seed: int, variant: str) -> History:
    h = synthesize(records, keys, seed)
    meta = h.meta
    if variant == "identity":
        return h.with_meta(mapping=TopicMapping(ReplicationPolicy.IDENTITY, meta.primary))
    if variant == "no-failover":
        return h.with_meta(failover=False)
    if variant == "no-fence":
        return h.with_meta(instants=replace(meta.instants, t_fence=None))
    return h


def chunked(h: History, rows: int = 997) -> History:
    """The same history with every table split into many chunks (as a streamed recorder leaves it)."""

    def split(table: pa.Table) -> pa.Table:
        batches = table.to_batches(max_chunksize=rows) or table.to_batches()
        return pa.Table.from_batches(batches, schema=table.schema)

    return History(h.meta, **{name: split(h.stored(name)) for name in TABLES})


def case_ids() -> list[str]:
    # Under IDENTITY the replicated rows serve no topic, so every primary write is lost: small sizes.
    return [
        f"{r}-{k}-{s}-{v}" for r, k, s in SIZES for v in VARIANTS if v != "identity" or r <= 3000
    ]


def build(case: str) -> History:
    records, keys, seed, variant = case.split("-", 3)
    return history(int(records), int(keys), int(seed), variant)


def output(h: History) -> dict:
    # Through JSON, as the golden file holds it (tuples become lists).
    return json.loads(json.dumps(check(h, POLICY).to_dict(full=True)))


@pytest.fixture(scope="module")
def golden() -> dict:
    with gzip.open(GOLDEN, "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("case", case_ids())
def test_output_is_the_reference(case, golden, tmp_path):
    h = build(case)
    expected = golden[case]
    assert output(h) == expected
    assert output(chunked(h)) == expected
    write_history(h, tmp_path)
    assert output(read_history(tmp_path)) == expected


@pytest.mark.parametrize("case", ["12000-100-3-prefixed", "12000-3000-4-no-fence"])
def test_output_is_the_reference_in_small_blocks(case, golden, monkeypatch):
    """Continuity reads the ledger in blocks (BLOCK writes, 64Ki: one block here); with
    blocks of 97 writes, every block boundary and the batches after them must agree."""
    monkeypatch.setattr(continuity, "BLOCK", 97)
    assert output(build(case)) == golden[case]


if __name__ == "__main__":
    data = {case: output(build(case)) for case in case_ids()}
    with gzip.open(GOLDEN, "wt") as f:
        json.dump(data, f, sort_keys=True)
    print(f"{GOLDEN}: {len(data)} cases", file=sys.stderr)

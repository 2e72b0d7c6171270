"""The numpy paths of the checker: each fast path agrees with its general fallback."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from drills.history.anomalies.lost import _highest_present
from drills.history.cases import Write
from drills.history.columns import (
    Vocabulary,
    _first_appearance,
    ints,
    local_codes,
    member,
    reused,
    rows_where,
    true_runs,
)
from drills.history.index import GSEQ_BITS, _by_key, _dense, _occurrences, _reading_order


def test_the_packed_reading_order_is_the_five_key_stable_sort():
    rng = np.random.default_rng(3)
    n = 5000
    kid = rng.integers(0, 70000, n)  # two 16-bit radix passes
    ptopic = rng.integers(0, 2, n)
    partition = rng.integers(0, 4, n)
    role = rng.integers(0, 2, n)
    offset = rng.integers(0, 50, n)  # repeats: ties keep their input order
    fast = _reading_order(kid, ptopic, partition, role, offset)
    assert fast.tolist() == np.lexsort((offset, role, partition, ptopic, kid)).tolist()


def test_dense_ids_by_arithmetic_or_by_sort_name_the_same_records():
    rng = np.random.default_rng(5)
    p_log, g_log = rng.integers(0, 3, 400), rng.integers(0, 300, 400)
    p_w, g_w = rng.integers(0, 3, 300), rng.integers(0, 300, 300)
    for shift in (0, 1 << 36):  # 2**36: too sparse for arithmetic, sorted instead
        d_log, d_w, size, rid_of = _dense([(p_log, g_log + shift), (p_w, g_w + shift)], 3)
        assert d_log.max() < size and d_w.max() < size
        assert rid_of(d_log).tolist() == ((p_log << GSEQ_BITS) + g_log + shift).tolist()
        assert rid_of(d_w).tolist() == ((p_w << GSEQ_BITS) + g_w + shift).tolist()


def test_reused_pairs_by_count_or_by_sort_agree():
    high = np.array([0, 1, 0, 1, 2, 0])
    low = np.array([5, 5, 6, 5, 7, 5])
    expected = [True, True, False, True, False, True]
    assert reused(high, low).tolist() == expected
    assert reused(high, low * (1 << 40)).tolist() == expected  # too wide to count


def test_member_is_isin():
    values = np.array([3, 1 << 45, 7, 3, -2])
    wanted = np.array([3, -2, 99, 3])
    assert member(values, wanted).tolist() == np.isin(values, wanted).tolist()
    assert member(values, wanted[:0]).tolist() == [False] * 5
    many = np.random.default_rng(19).integers(0, 1 << 41, 5000)
    narrow = np.sort(many)[100:103]  # three neighbours: only the values between them hashed
    few = np.concatenate([narrow, [narrow[0] + 1]])
    assert member(many, few).tolist() == np.isin(many, few).tolist()


def test_rows_where_by_slices_or_by_filter_agree():
    table = pa.table({"x": list(range(40))})
    runs = np.zeros(40, bool)
    runs[3:9] = runs[20:31] = True
    scattered = np.arange(40) % 3 == 0
    for mask in (runs, scattered, np.zeros(40, bool), np.ones(40, bool)):
        expected = table.filter(pa.array(mask))
        assert rows_where(table, mask).equals(expected)
        assert rows_where(table, mask, runs=0).equals(expected)  # always by filter


def test_first_appearance_by_count_or_by_hash_agree():
    rng = np.random.default_rng(9)
    for size in (3, 16, 17, 500):
        rows = rng.integers(0, size, 2000)
        _, first = np.unique(rows, return_index=True)
        expected = rows[np.sort(first)]
        assert _first_appearance(rows, size).tolist() == expected.tolist()


def test_highest_present_dense_or_hashed_agree():
    rng = np.random.default_rng(11)
    unit = rng.integers(0, 50, 3000)
    seq = rng.integers(0, 1000, 3000)
    present = rng.random(3000) < 0.7
    units = np.array([1, 7, 20, 49])
    dense = _highest_present(unit, seq, present, units)
    hashed = _highest_present(unit * (1 << 40), seq, present, units * (1 << 40))
    assert dense[0].tolist() == hashed[0].tolist()
    assert dense[1].tolist() == hashed[1].tolist()
    assert dense[2](units[:2]).tolist() == hashed[2](units[:2] * (1 << 40)).tolist()


def test_local_codes_equal_exactly_where_values_are_equal():
    """Chunks with different dictionaries and a null: codes compare like the strings."""
    chunks = [
        pa.array(["b", "a", "b"]).dictionary_encode(),
        pa.array(["a", None, "c", "a"]).dictionary_encode(),
    ]
    column = pa.chunked_array(chunks)
    codes, values = local_codes(column)
    strings = column.cast(pa.string()).to_pylist()
    assert [values[c] for c in codes.tolist()] == strings
    same = codes[:, None] == codes[None, :]
    assert (same == np.array([[a == b for b in strings] for a in strings])).all()


def test_occurrences_agree_with_a_reduction_over_every_row():
    """The scatter-then-fix-up of first/last ranks equals np.minimum.at / np.maximum.at."""
    rng = np.random.default_rng(7)
    size = 500
    dense = rng.integers(0, size, 2_000)  # many ids repeated, some absent
    count, first, last, repeated, is_first = _occurrences(dense, size)
    ranks = np.arange(len(dense))
    want_first = np.full(size, len(dense))
    np.minimum.at(want_first, dense, ranks)
    want_last = np.full(size, -1)
    np.maximum.at(want_last, dense, ranks)
    assert (count == np.bincount(dense, minlength=size)).all()
    assert (first == want_first).all() and (last == want_last).all()
    assert (repeated == (count[dense] > 1)).all()
    assert (is_first == (want_first[dense] == ranks)).all()
    assert (count == 0).any() and repeated.any() and (~repeated).any()


def test_true_runs_are_the_edges_of_the_mask():
    rng = np.random.default_rng(13)
    for n in (0, 1, 2, 3, 10, 200):
        for density in (0.0, 0.2, 0.8, 1.0):
            mask = rng.random(n) < density
            edges = np.flatnonzero(np.diff(mask.astype(np.int8), prepend=0, append=0))
            starts, stops = true_runs(mask)
            assert starts.tolist() == edges[::2].tolist()
            assert stops.tolist() == edges[1::2].tolist()


def test_keys_in_reading_order_from_a_count_or_by_gather_agree():
    rng = np.random.default_rng(17)
    for high in (50, 1 << 40):  # dense ids: from a count; sparse: the gather
        kid = rng.integers(0, high, 3000)
        order = np.lexsort((rng.integers(0, 9, 3000), kid))
        assert _by_key(kid, order).tolist() == kid[order].tolist()


def test_columns_of_many_chunks_join_as_one():
    column = pa.chunked_array([pa.array([1, None, 3]), pa.array([], pa.int64()), pa.array([4])])
    assert ints(column, fill=-1).tolist() == [1, -1, 3, 4]
    assert ints(pa.chunked_array([], pa.int32())).tolist() == []


def test_writes_from_a_table_are_writes_from_its_rows():
    table = pa.table(
        {
            "producer": ["p0", "p1"],
            "key": ["k0", "k1"],
            "seq": [1, 2],
            "gseq": [10, 20],
            "cluster": ["east", "east"],
            "topic": ["orders", "orders"],
            "partition": pa.array([3, None], pa.int32()),
            "offset": pa.array([7, None], pa.int64()),
            "send_time": [1.0, 2.0],
            "ack_time": [1.5, None],
        }
    )
    assert Write.from_table(table) == [Write.from_row(row) for row in table.to_pylist()]


def test_codes_follow_first_appearance_across_chunks_with_their_own_dictionaries():
    """Row groups each bring a dictionary: codes are as if the strings were encoded in one."""
    chunks = [
        pa.array(["b", "a", "b"]).dictionary_encode(),
        pa.array([], pa.string()).dictionary_encode(),
        pa.array(["c", None, "a", "d"]).dictionary_encode(),
        pa.array(["d", "e"]).dictionary_encode(),
        pa.array(["e", "b"]).dictionary_encode(),
    ]
    column = pa.chunked_array(chunks)
    vocabulary = Vocabulary()
    vocabulary.learn(pa.array(["z"]))
    codes = vocabulary.encode(column)
    strings = column.cast(pa.string()).to_pylist()
    assert vocabulary.values == ["z", "b", "a", "c", "d", "e"]
    assert codes.tolist() == [vocabulary.code(v) if v is not None else -1 for v in strings]

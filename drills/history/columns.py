"""Columns as numpy arrays: strings as dense integer codes, numbers with their validity.

The checker's hot paths run on numpy, not on pyarrow's hash group-bys: every
string column (producer, key, cluster, topic, group) has few distinct values,
so it becomes an int64 code into a small list of values. Parquet already
stores these columns dictionary-encoded and ``read_history`` reads them as
arrow dictionaries, so encoding costs a pass over the dictionary indices, not
over a million strings.

Codes are given in order of first appearance, the order ``pc.unique`` gives,
so numbering is the same whatever the chunking or the dictionaries' order.
"""

from __future__ import annotations

import contextlib

import numpy as np
import numpy.ma  # noqa: F401 - see below
import pyarrow as pa
import pyarrow.compute as pc

# What pyarrow imports on its first use, imported with this module instead: ``pa.array`` of a
# numpy array looks for numpy.ma (a masked array?), and a compute function given a Python
# scalar infers its type with dateutil at hand. Left to pyarrow, those imports (~50 ms, under
# the import lock and the GIL) fall in the middle of the first check of a process, stalling
# both of its threads (issue 22). Not fewer seconds per process: the same ones, spent earlier.
with contextlib.suppress(ImportError):
    import dateutil.relativedelta  # noqa: F401


class Vocabulary:
    """Distinct strings in order of first appearance, shared by the columns encoded into it."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}
        self._array: pa.Array | None = None  # ``values`` as arrow, rebuilt when values grow

    def __len__(self) -> int:
        return len(self.values)

    def code(self, value: str) -> int:
        """The code of ``value``, or -1 when no encoded column holds it."""
        return self.index.get(value, -1)

    def learn(self, column: pa.ChunkedArray | pa.Array) -> None:
        """Add the values of ``column`` in order of first appearance, without encoding it."""
        self.encode(column, codes=False)

    def encode(self, column: pa.ChunkedArray | pa.Array, codes: bool = True) -> np.ndarray:
        """int32 codes of ``column`` (string or dictionary of strings); -1 for nulls.

        int32, not int64: half the memory to fault in and to stream per pass (issue 22);
        arithmetic that combines a code with other columns widens it first (``_affine``).

        Work over the rows is one gather (dictionary index -> code) and, only when
        the column holds values not yet known, one pass finding the order in which
        they first appear; everything else is over the small dictionary. Chunks with
        different dictionaries (a Parquet file's row groups) are taken run by run, each
        run of chunks sharing a dictionary through its own look-up: unifying the
        dictionaries would rewrite every row's index first (issue 22).
        """
        if isinstance(column, pa.Array):
            column = pa.chunked_array([column], column.type)
        if not len(column):
            return np.empty(0, np.int32)
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        runs: list[list[pa.Array]] = []
        for chunk in column.chunks:
            if not len(chunk):
                continue
            if runs and chunk.dictionary.equals(runs[-1][0].dictionary):
                runs[-1].append(chunk)
            else:
                runs.append([chunk])
        parts = [self._encode_run(run, codes) for run in runs]
        if not codes:
            return np.empty(0, np.int32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _encode_run(self, chunks: list[pa.Array], codes: bool) -> np.ndarray | None:
        """``encode`` of chunks that share one dictionary (learning its new values)."""
        first = chunks[0].dictionary
        indices = pa.chunked_array([c.indices for c in chunks], chunks[0].type.index_type)
        if indices.null_count:
            indices = pc.fill_null(indices, len(first))  # the last slot of ``mapping``: null
        mapping = np.full(len(first) + 1, -1, np.int32)
        if self.values:
            known = pc.index_in(first, value_set=self.array())
            mapping[: len(first)] = pc.fill_null(known, -1).to_numpy(zero_copy_only=False)
        rows = None
        if (mapping[: len(first)] < 0).any():
            rows = _numpy(indices)
            seen = _first_appearance(rows, len(first) + 1)
            new = seen[(seen < len(first)) & (mapping[np.minimum(seen, len(first))] < 0)]
            for i, value in zip(new.tolist(), first.take(pa.array(new)).to_pylist(), strict=True):
                mapping[i] = self._add(value)
        if not codes:
            return None
        return mapping[_numpy(indices) if rows is None else rows]

    def _add(self, value: str) -> int:
        code = self.index[value] = len(self.values)
        self.values.append(value)
        self._array = None
        return code

    def array(self) -> pa.Array:
        if self._array is None:
            self._array = pa.array(self.values, pa.string())
        return self._array


def _first_appearance(rows: np.ndarray, size: int) -> np.ndarray:
    """The distinct values of ``rows`` (integers in [0, size)) in order of first appearance.

    For a handful of values, a comparison and a short-circuiting search each
    (arrow's hash unique is slow on so few distinct values, and ``np.bincount``
    would copy int32 rows to int64 first); otherwise arrow's hash unique (it
    returns that order).
    """
    if size <= 16:
        firsts = {}
        for v in range(size):
            at = int(np.argmax(rows == v))
            if rows[at] == v:
                firsts[v] = at
        return np.array(sorted(firsts, key=firsts.__getitem__), np.int64)
    return pc.unique(pa.array(rows)).to_numpy()


def equal_to(column: pa.ChunkedArray | pa.Array, value: str) -> np.ndarray:
    """Whether each row of a string column (plain or dictionary) equals ``value``; nulls do not.

    A dictionary column compares its indices with the value's index in the
    dictionary: one integer comparison per row, where encoding the column first
    would cost a first-appearance pass and an int64 copy.
    """
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], column.type)
    if not pa.types.is_dictionary(column.type):
        return _numpy(pc.fill_null(pc.equal(column, value), False)).astype(bool, copy=False)
    parts = [np.zeros(0, bool)]
    for chunk in column.chunks:
        at = np.flatnonzero(_numpy(pc.fill_null(pc.equal(chunk.dictionary, value), False)))
        indices = chunk.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        rows = _numpy(indices)
        parts.append(rows == at[0] if len(at) == 1 else np.isin(rows, at))
    return np.concatenate(parts) if len(parts) > 2 else parts[-1]


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of True in a boolean ``mask`` starts and stops (exclusive).

    Compares neighbours as booleans: ``np.diff`` with a ``prepend`` would promote a
    million-row mask to int64 (16 MB of fresh pages per call, issue 22).
    """
    if not len(mask):
        return np.empty(0, np.intp), np.empty(0, np.intp)
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    starts, stops = edges[~mask[edges - 1]], edges[mask[edges - 1]]
    if mask[0]:
        starts = np.concatenate([[0], starts])
    if mask[-1]:
        stops = np.concatenate([stops, [len(mask)]])
    return starts, stops


def rows_where(table: pa.Table, mask: np.ndarray, runs: int = 64) -> pa.Table:
    """The rows of ``table`` where ``mask`` holds, in order.

    A log is read back cluster by cluster and partition by partition, so the
    rows of one cluster form a few runs: those are zero-copy slices, where a
    filter would copy every column. Many runs: a filter.
    """
    starts, stops = true_runs(mask)
    if len(starts) > runs:
        return table.filter(pa.array(mask))
    if not len(starts):
        return table.slice(0, 0)
    slices = [table.slice(a, b - a) for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]
    return pa.concat_tables(slices)


def local_codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str | None]]:
    """Integer codes of a string column in no particular order, and the value of each code.

    For checks that only compare values (History's identity check): the column's
    own dictionary indices when it is dictionary-encoded (as read), so no pass
    looks for the order of first appearance. Nulls get their own code.
    """
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], column.type)
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    chunks = column.chunks
    if chunks and not all(c.dictionary.equals(chunks[0].dictionary) for c in chunks[1:]):
        chunks = column.unify_dictionaries().chunks
    if not chunks:
        return np.empty(0, np.int64), []
    values = chunks[0].dictionary.to_pylist()
    indices = pa.chunked_array([c.indices for c in chunks])
    if indices.null_count:
        indices = pc.fill_null(indices, len(values))
        values.append(None)
    return _numpy(indices), values


def codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, Vocabulary]:
    """One column's codes, with a vocabulary of its own."""
    vocabulary = Vocabulary()
    return vocabulary.encode(column), vocabulary


def ints(column: pa.ChunkedArray | pa.Array, fill: int = 0) -> np.ndarray:
    """An integer column as numpy of its own width (int32 partitions stay int32: no copy),
    nulls replaced by ``fill`` (see ``valid``). Arithmetic that could leave 32 bits widens first."""
    if column.null_count:
        column = pc.fill_null(column, fill)
    values = _numpy(column)
    return values if values.dtype.kind == "i" else values.astype(np.int64)


def floats(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A float column as float64, nulls as NaN (every comparison with NaN is False)."""
    if column.null_count:
        column = pc.fill_null(column, float("nan"))
    return _numpy(column).astype(np.float64, copy=False)


def valid(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if not column.null_count:
        return np.ones(len(column), bool)
    return _numpy(pc.is_valid(column))


def _numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as one numpy array: zero-copy for one chunk without nulls.

    Several chunks are joined by numpy, not ``ChunkedArray.to_numpy``: that converts
    through arrow's C++ default pool (mimalloc, whatever pool allocator.py sets for
    pyarrow), i.e. fresh pages that the heap's freed arrays cannot serve (issue 22).
    """
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks != 1:
            parts = [chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks]
            if parts:
                return np.concatenate(parts)
            return np.empty(0, column.type.to_pandas_dtype())
        column = column.chunk(0)
    return column.to_numpy(zero_copy_only=False)


def member(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``np.isin(values, wanted)`` by a hash set of ``wanted`` (arrow's is_in): no sort.

    When the values in ``wanted``'s range are a small part of ``values`` (a few records
    read again, looked for among a million), only those are hashed: two comparisons a
    row cost a tenth of a hash probe.
    """
    if not len(wanted) or not len(values):
        return np.zeros(len(values), bool)
    wanted = np.unique(wanted)
    inside = np.flatnonzero((values >= wanted[0]) & (values <= wanted[-1]))
    if 4 * len(inside) < len(values):
        out = np.zeros(len(values), bool)
        out[inside] = member(values[inside], wanted)
        return out
    found = pc.is_in(pa.array(values), value_set=pa.array(wanted))
    return found.to_numpy(zero_copy_only=False)


def first_seen(keys: np.ndarray) -> np.ndarray:
    """The distinct values of ``keys`` in order of first appearance (a hash pass, no sort)."""
    return pc.unique(pa.array(keys)).to_numpy()


def reused(pairs_high: np.ndarray, pairs_low: np.ndarray) -> np.ndarray:
    """A boolean per row: its (high, low) pair occurs more than once. Integers, high >= 0.

    A dense count when the pairs span a small range (the usual case: low is a
    per-producer sequence from 0), a sort otherwise. The dense ids are built in one
    int64 array (no int64 copy of ``high``, no temporary per operation: issue 22).
    """
    n = len(pairs_low)
    if not n:
        return np.zeros(0, bool)
    lo, hi = int(pairs_low.min()), int(pairs_low.max())
    width = hi - lo + 1
    groups = int(pairs_high.max()) + 1
    if width * groups <= 8 * n + (1 << 20):
        dense = np.multiply(pairs_high, width, dtype=np.int64)
        dense += pairs_low
        if lo:
            dense -= lo
        counts = np.bincount(dense, minlength=width * groups)
        if counts.max() <= 1:
            return np.zeros(n, bool)
        return counts[dense] > 1
    order = np.lexsort((pairs_low, pairs_high))
    h, lw = pairs_high[order], pairs_low[order]
    same = (h[1:] == h[:-1]) & (lw[1:] == lw[:-1])
    out = np.zeros(n, bool)
    out[order[1:][same]] = True
    out[order[:-1][same]] = True
    return out

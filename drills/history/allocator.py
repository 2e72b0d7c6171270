"""How the history's arrays get their memory while it is read and checked: no huge pages.

Why: on these machines transparent huge pages are in ``madvise`` mode, and
both pyarrow's default pool (mimalloc) and numpy (``madvise(MADV_HUGEPAGE)``
on every array of 4 MB or more) ask for them. A huge-page fault zeroes 2 MB
and, when memory is fragmented by other work, compacts memory synchronously,
so the checker's kernel time grew faster than the history and swung from run
to run. Measured on this 2-core machine (other work running), same user time:

- reading a 4M-record history: 2.6-2.9 s in the kernel with mimalloc,
  0.5-0.9 s with malloc (jemalloc is similar to malloc);
- read + check of 1M records: 0.94-1.39 s in the kernel with numpy's huge
  pages, 0.57-0.66 s without; at 4M, 5.1-5.9 s against 2.6 s.

So for the duration of a read or a check, arrow allocates with malloc and
numpy without the huge-page advice. Both settings are process-wide while they
last (at worst another thread's allocations skip huge pages too) and are
restored afterwards; buffers remember their pool, so freeing them later is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyarrow as pa


def _numpy_hugepage_switch() -> Callable[[bool], bool] | None:
    """numpy's setter for its huge-page advice (returns the previous value), if this numpy has one."""
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, "_set_madvise_hugepage", None)


@contextmanager
def without_huge_pages() -> Iterator[None]:
    """Arrow allocates with malloc and numpy without MADV_HUGEPAGE inside the block."""
    previous_pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    switch = _numpy_hugepage_switch()
    previous_advice = switch(False) if switch else None
    try:
        yield
    finally:
        if switch and previous_advice is not None:
            switch(previous_advice)
        pa.set_memory_pool(previous_pool)

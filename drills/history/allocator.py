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

Then the 4 KiB faults themselves (issue 22, third pass): glibc serves every
array of 128 KiB or more with a fresh ``mmap`` and unmaps it on free, so each
of the checker's ~60 temporary arrays of 1-2M rows faults all its pages in
again (~190k faults, 0.7-1.0 s of kernel time per 1M-record check on this
machine). Inside the block glibc keeps them in its heap instead (``mallopt``:
mmap only above 32 MiB, no trimming), so a freed temporary's pages are reused
by the next one: ~25% fewer faults, same peak RSS. On leaving, the thresholds go
back to glibc's defaults and the heap is trimmed (``malloc_trim``), so the
process keeps no more memory than before: in a thread of its own, since giving a
check's ~400 MB of freed pages back takes the kernel 10-30 ms that the caller, who has
its result, need not wait for (issue 22). Not glibc (musl, macOS): unchanged.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import pyarrow as pa


def _numpy_hugepage_switch() -> Callable[[bool], bool] | None:
    """numpy's setter for its huge-page advice (returns the previous value), if this numpy has one."""
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, "_set_madvise_hugepage", None)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
GLIBC_DEFAULT_THRESHOLD = 128 * 1024  # both thresholds' default (DEFAULT_MMAP_THRESHOLD_MIN)
KEEP_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold on 64-bit
KEEP_TRIM_THRESHOLD = 2**31 - 1  # (an int) no trimming below 2 GiB free while inside the block


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (``mallopt`` and ``malloc_trim`` with glibc's meaning)."""
    try:
        libc = ctypes.CDLL("libc.so.6")  # by name: find_library would run ldconfig
        libc.gnu_get_libc_version  # noqa: B018 - present only in glibc
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


@contextmanager
def _heap_reuse() -> Iterator[None]:
    """glibc keeps freed arrays in its heap inside the block (see the module docstring)."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
        try:
            threading.Thread(target=libc.malloc_trim, args=(0,), name="malloc-trim").start()
        except RuntimeError:  # no new threads (interpreter shutting down): trim here
            libc.malloc_trim(0)


@contextmanager
def without_huge_pages() -> Iterator[None]:
    """Arrow allocates with malloc and numpy without MADV_HUGEPAGE inside the block, and glibc
    reuses freed arrays' pages instead of unmapping them."""
    previous_pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    switch = _numpy_hugepage_switch()
    previous_advice = switch(False) if switch else None
    try:
        with _heap_reuse():
            yield
    finally:
        if switch and previous_advice is not None:
            switch(previous_advice)
        pa.set_memory_pool(previous_pool)

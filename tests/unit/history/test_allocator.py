"""The read/check allocation policy is scoped: whatever was set before is set again after."""

from __future__ import annotations

import pyarrow as pa

from drills.history.allocator import _numpy_hugepage_switch, without_huge_pages


def test_pool_and_numpy_advice_are_restored():
    switch = _numpy_hugepage_switch()
    before_pool = pa.default_memory_pool().backend_name
    before_advice = switch(True) if switch else None
    try:
        with without_huge_pages():
            assert pa.default_memory_pool().backend_name == "system"
            if switch:
                assert switch(False) is False  # off inside the block
        assert pa.default_memory_pool().backend_name == before_pool
        if switch:
            assert switch(True) is True  # back on after it
    finally:
        if switch and before_advice is not None:
            switch(before_advice)


def test_restored_after_an_error():
    before_pool = pa.default_memory_pool().backend_name
    try:
        with without_huge_pages():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert pa.default_memory_pool().backend_name == before_pool

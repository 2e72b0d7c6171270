"""Unit tests never touch the installation's own files: the report's signing key goes to a
per-session temporary directory (drills that run on a paper target sign their manifest too)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _signing_key_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("KDRILL_KEY_DIR", str(tmp_path_factory.mktemp("keys")))
    yield
    mp.undo()

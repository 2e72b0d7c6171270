"""Report fixtures: recorded run directories (see fixtures/make_fixtures.py), copied per test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
NAMES = ("passing", "failed", "interrupted", "no_failover")


@pytest.fixture(autouse=True)
def _key_dir(tmp_path, monkeypatch):
    """Signing keys of this test only, never the installation's."""
    monkeypatch.setenv("KDRILL_KEY_DIR", str(tmp_path / "keys"))


@pytest.fixture
def run_dir(tmp_path):
    """run_dir(name) -> a writable copy of the named fixture."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest)
        return dest

    return copy


def evidence(name: str) -> dict:
    return json.loads((FIXTURES / name / "evidence.json").read_text())

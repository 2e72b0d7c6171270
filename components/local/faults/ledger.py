"""The fault ledger: every fault written down before it is applied.

One JSON file per pair (`<state dir>/faults.json`), rewritten atomically under
an flock so several kdrill processes can share it. An entry moves
`applying` -> `applied` -> `cleared` (or `failed`, after a best-effort clear).
Anything not `cleared` may still be in effect, which is what `recover` clears,
also when the process that applied it was SIGKILLed before it could.

Instants are CLOCK_MONOTONIC (one clock for every process on this machine, as
DESIGN.md's drill timeline needs) with the wall time beside them for reports.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.faults.spec import FaultSpec

OPEN = ("applying", "applied")


@dataclass
class Entry:
    id: str
    spec: dict[str, Any]
    status: str  # applying | applied | cleared | failed
    applier_pid: int
    recorded_at: float  # wall clock, when written (before applying)
    t_fault: float | None = None  # monotonic: the action completed
    t_fault_wall: float | None = None
    t_cleared: float | None = None  # monotonic
    undo: dict[str, Any] = field(
        default_factory=dict
    )  # what clearing needs (previous values, pids)
    error: str | None = None
    tag: str | None = None  # the fault's key in the stack's drill-time config, if applied by it

    @property
    def fault(self) -> FaultSpec:
        return FaultSpec.from_dict(self.spec)


class Ledger:
    def __init__(self, state_dir: Path):
        self.path = state_dir / "faults.json"
        self.lock_path = state_dir / "faults.lock"

    @contextmanager
    def _locked(self) -> Iterator[list[Entry]]:
        """Read-modify-write under an exclusive lock; the list is written back on exit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read()
            yield entries
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps([asdict(e) for e in entries], indent=2))
            os.replace(tmp, self.path)

    def _read(self) -> list[Entry]:
        try:
            return [Entry(**e) for e in json.loads(self.path.read_text())]
        except FileNotFoundError:
            return []

    def entries(self) -> list[Entry]:
        return self._read()

    def open_entries(self) -> list[Entry]:
        return [e for e in self._read() if e.status in OPEN]

    def get(self, fault_id: str) -> Entry | None:
        return next((e for e in self._read() if e.id == fault_id), None)

    def record(
        self, spec: FaultSpec, undo: dict[str, Any] | None = None, tag: str | None = None
    ) -> Entry:
        with self._locked() as entries:
            n = 1 + max((int(e.id[1:]) for e in entries), default=0)
            e = Entry(
                f"f{n}",
                spec.to_dict(),
                "applying",
                os.getpid(),
                time.time(),
                undo=undo or {},
                tag=tag,
            )
            entries.append(e)
        return e

    def update(self, fault_id: str, **changes: Any) -> Entry:
        with self._locked() as entries:
            e = next(x for x in entries if x.id == fault_id)
            for k, v in changes.items():
                setattr(e, k, v)
        return e

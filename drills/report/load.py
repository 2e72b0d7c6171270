"""A run directory read back: the evidence document and, when kept, the history.

`RunData` is what every part of the report reads; it is built from files only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.history import History, HistoryError, read_history

#: Evidence schema majors this report reads.
KNOWN_MAJORS = (1,)


class ReportError(Exception):
    """A run directory the report cannot read: one line for the user."""


@dataclass
class RunData:
    run_dir: Path
    ev: dict[str, Any]
    history: History | None
    history_note: str | None  # why there is no history

    @property
    def measurements(self) -> dict[str, Any]:
        return self.ev.get("measurements") or {}

    @property
    def spec(self) -> dict[str, Any]:
        return self.ev.get("spec") or {}

    def instant(self, name: str) -> float | None:
        """An instant in seconds since T_fault (None when the drill never reached it)."""
        t = (self.ev.get("timeline") or {}).get(name) or {}
        return t.get("since_fault_s")

    def monotonic(self, name: str) -> float | None:
        return ((self.ev.get("timeline") or {}).get(name) or {}).get("monotonic")


def read_evidence(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "evidence.json"
    try:
        ev = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{run_dir}: no evidence.json, not a drill run directory") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    version = ev.get("schema_version") if isinstance(ev, dict) else None
    major = int(str(version).split(".")[0]) if str(version).split(".")[0].isdigit() else None
    if major not in KNOWN_MAJORS:
        raise ReportError(
            f"{path}: evidence schema version {version!r} is not one this kdrill reads "
            f"(major {', '.join(map(str, KNOWN_MAJORS))}); use the kdrill that wrote it"
        )
    return ev


def load_run(run_dir: str | Path) -> RunData:
    run_dir = Path(run_dir)
    ev = read_evidence(run_dir)
    history, note = None, None
    hdir = run_dir / "history"
    if hdir.is_dir():
        try:
            history = read_history(hdir)
        except HistoryError as e:
            note = f"history unreadable: {e}"
    else:
        note = "no history kept (the drill stopped before verify)"
    return RunData(run_dir, ev, history, note)

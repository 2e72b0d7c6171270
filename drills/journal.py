"""The run journal: what a drill attempted, step by step, written as it goes.

As in Chaos Toolkit's run journal, each step's record is appended *before*
the step runs and completed in a `finally` (status, output, error, end,
duration), and the file is rewritten after every change, so a crash or a
kill -9 still leaves evidence of what was attempted. Unlike it, the records
are typed and versioned, and rollback runs after failures too.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_VERSION = 1


class DrillInterrupted(Exception):
    """Ctrl-C or SIGTERM during a drill."""


class DrillRefused(Exception):
    """The drill must not start (e.g. its projected cost is over budget); nothing was touched."""


class StepFailed(Exception):
    """A step could not do its job; the drill cannot go on."""


class SteadyStateFailed(StepFailed):
    """A steady-state bound was not met before the fault: the drill must not inject."""


@dataclass
class Step:
    phase: str
    name: str
    status: str = "running"  # running | completed | failed | interrupted
    started: float = field(default_factory=time.time)
    mono_start: float = field(default_factory=time.monotonic)
    ended: float | None = None
    duration: float | None = None
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Journal:
    drill: str
    spec: dict[str, Any]
    path: Path | None = None
    version: int = JOURNAL_VERSION
    host: str = field(default_factory=socket.gethostname)
    platform: str = field(default_factory=platform.platform)
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    duration: float | None = None
    status: str = "running"  # running | completed | failed | aborted | interrupted
    deviated: bool = False  # objectives missed (the drill ran, the system did not meet them)
    steps: list[Step] = field(default_factory=list)
    rollbacks: list[Step] = field(default_factory=list)

    @contextmanager
    def step(self, phase: str, name: str, rollback: bool = False) -> Iterator[Step]:
        s = Step(phase, name)
        (self.rollbacks if rollback else self.steps).append(s)
        try:
            # saved inside the try: an interrupt landing during this save (the file already
            # shows the step running) still marks it interrupted and saves again below
            self.save()
            yield s
            s.status = "completed"
        except (KeyboardInterrupt, DrillInterrupted):
            s.status, s.error = "interrupted", "interrupted"
            raise
        except BaseException as e:
            s.status, s.error = (
                "failed",
                f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
            )
            raise
        finally:
            s.ended = time.time()
            s.duration = round(time.monotonic() - s.mono_start, 3)
            self.save()

    def finish(self, status: str) -> None:
        self.status = status
        self.ended = time.time()
        self.duration = round(self.ended - self.started, 3)
        self.save()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        return d

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        tmp.replace(self.path)

"""Lifecycle hooks: how the progress display, the evidence writer, the cost exporter (and
later the report) plug into a drill without the engine knowing them.

As in Chaos Toolkit's controls, a hook is an object with no-op methods, of which a
listener overrides the ones it needs. The engine calls them in this order:

    started(record)            before anything is touched; may refuse (DrillRefused)
    phase_started(phase, what) a journal step begins (the progress display)
    info(message)              something a person should read now
    before_inject(drill) / after_inject(drill)
                               around the fault (tests build drills whose loss is known)
    finishing(record)          the drill is over and torn down: add sections, write files
    finished(record)           the evidence is written and uploaded: last word

`finishing` and `finished` run on every exit path, interrupts included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drills.record import RunRecord


class Hooks:
    """The no-op base: override what you listen to."""

    def started(self, record: RunRecord) -> None:
        pass

    def phase_started(self, phase: str, what: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def before_inject(self, drill: Any) -> None:
        """Right before the incident is applied (after the timeline's earlier faults)."""

    def after_inject(self, drill: Any) -> None:
        """Right after the incident was applied (T_fault known)."""

    def finishing(self, record: RunRecord) -> None:
        pass

    def finished(self, record: RunRecord) -> None:
        pass


def _noop(*args: Any) -> None:
    return None


class Callbacks(Hooks):
    """Hooks from plain functions, for the CLI and tests: Callbacks(info=print)."""

    def __init__(
        self,
        phase: Callable[[str, str], None] = _noop,
        info: Callable[[str], None] = _noop,
        before_inject: Callable[[Any], None] = _noop,
        after_inject: Callable[[Any], None] = _noop,
    ):
        self.phase, self.on_info, self.before, self.after = phase, info, before_inject, after_inject

    def phase_started(self, phase: str, what: str) -> None:
        self.phase(phase, what)

    def info(self, message: str) -> None:
        self.on_info(message)

    def before_inject(self, drill: Any) -> None:
        self.before(drill)

    def after_inject(self, drill: Any) -> None:
        self.after(drill)


class HookList(Hooks):
    """Several listeners, called in order."""

    def __init__(self, hooks: Iterable[Hooks]):
        self.hooks = list(hooks)

    def started(self, record: RunRecord) -> None:
        for h in self.hooks:
            h.started(record)

    def phase_started(self, phase: str, what: str) -> None:
        for h in self.hooks:
            h.phase_started(phase, what)

    def info(self, message: str) -> None:
        for h in self.hooks:
            h.info(message)

    def before_inject(self, drill: Any) -> None:
        for h in self.hooks:
            h.before_inject(drill)

    def after_inject(self, drill: Any) -> None:
        for h in self.hooks:
            h.after_inject(drill)

    def finishing(self, record: RunRecord) -> None:
        for h in self.hooks:
            h.finishing(record)

    def finished(self, record: RunRecord) -> None:
        for h in self.hooks:
            h.finished(record)

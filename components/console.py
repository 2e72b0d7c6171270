"""Terminal helpers shared by kdrill's commands: the consoles, signals, a progress display.

SIGTERM and SIGHUP are turned into KeyboardInterrupt (as SIGINT already is) so
every long command unwinds through the same clean-up. A KeyboardInterrupt
raised while Python runs at-fork hooks (as when a signal lands inside
subprocess.Popen) is printed as "Exception ignored" and lost, so long commands
also call `check_interrupted()` between their steps, which raises again.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True, soft_wrap=True)  # progress and errors
out = Console()  # results

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_signals: list[int] = []  # signals received, newest last


def _interrupt(signum, frame):
    _signals.append(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    for sig in INTERRUPTS:
        signal.signal(sig, _interrupt)


def check_interrupted() -> None:
    if _signals:
        raise KeyboardInterrupt(signal.Signals(_signals[-1]).name)


def error(message: str) -> None:
    """One line on stderr, printed as is (no markup: messages quote user input)."""
    console.print(message, markup=False, highlight=False)


@contextmanager
def progress_display(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner naming the current step, with each finished step and its time."""
    started = time.monotonic()
    state: dict = {"step": None, "t": started}
    with console.status(title) as status:

        def step(msg: str) -> None:
            check_interrupted()
            now = time.monotonic()
            if state["step"]:
                console.print(f"  [green]✓[/] {state['step']} [dim]({now - state['t']:.1f}s)[/]")
            state.update(step=msg, t=now)
            status.update(f"{title}: {msg}")

        yield step
        step("")  # close the last step
    console.print(f"[bold]{title}[/]: done in {time.monotonic() - started:.1f}s")

"""Waiting on a condition: the one poll loop of the project.

Readiness is proven by a condition becoming true (a broker registered, a
record replicated, a first acknowledgement), never by sleeping a guessed time.
`wait_until` polls `condition` until it returns something truthy, which it
returns; `check` runs between polls so a caller can fail fast (a daemon that
died, a workload thread that raised). When the time runs out it raises
`WaitTimeout`, or what `error` builds from the message, so each layer keeps its
own exception type (`LocalEnvError` in components, `StepFailed` in the engine).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold in time. `str()` is one line naming what was awaited."""


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    check: Callable[[], object] | None = None,
    error: Callable[[str], BaseException] = WaitTimeout,
) -> T:
    """Poll `condition` every `interval` seconds until it is truthy; return its value.

    Raises `error("timed out after <timeout>s waiting for <what>")` once `timeout`
    seconds have passed on the monotonic clock (the condition is tried at least once).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:g}s waiting for {what}")
        if check is not None:
            check()
        time.sleep(interval)

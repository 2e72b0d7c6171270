"""Workload shapes: the rate the producers offer over time -- steady, a step, or a ramp.

A shape multiplies the workload's base `rate` (records/s per producer) by a factor
that depends on the time since an anchor: the fault (T_fault, as the engine records
it) or the start of the workload. Before the anchor is known (a fault not yet
applied) the factor is the shape's `from_factor`.

    steady   factor 1 throughout
    step     from_factor before at_s, factor from at_s on
    ramp     from_factor before at_s, linear to factor over over_s, then factor

`RateSchedule` is what the instrumented producers read between two sends
(`rate_at`), and what the engine integrates to know how many records the shape
offered over a window (`offered`): the load a serving region had to absorb. Plain
arithmetic, no clients: the rate control that applies it is in drills/workload.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Shape", "RateSchedule", "STEADY"]


@dataclass(frozen=True)
class Shape:
    """A rate multiplier over time since the anchor (seconds); see the module docstring."""

    kind: str = "steady"  # steady | step | ramp
    factor: float = 1.0  # the multiplier reached (step: from at_s; ramp: from at_s + over_s)
    from_factor: float = 1.0  # the multiplier before at_s (and before the anchor is known)
    at_s: float = 0.0  # seconds after the anchor the step or the ramp starts
    over_s: float = 0.0  # ramp: seconds from from_factor to factor

    def factor_at(self, since: float | None) -> float:
        """The multiplier `since` seconds after the anchor; None: the anchor is not known yet."""
        if self.kind == "steady":
            return 1.0
        if since is None or since < self.at_s:
            return self.from_factor
        if self.kind == "step" or since >= self.at_s + self.over_s:
            return self.factor
        return (
            self.from_factor + (self.factor - self.from_factor) * (since - self.at_s) / self.over_s
        )

    def integral(self, a: float, b: float) -> float:
        """The multiplier integrated over [a, b] (seconds after the anchor): exact, piecewise."""
        if b <= a:
            return 0.0
        if self.kind == "steady":
            return b - a
        start, end = self.at_s, self.at_s + (self.over_s if self.kind == "ramp" else 0.0)
        total = 0.0
        lo, hi = a, min(b, start)  # before the change
        if hi > lo:
            total += (hi - lo) * self.from_factor
        lo, hi = max(a, end), b  # after it
        if hi > lo:
            total += (hi - lo) * self.factor
        lo, hi = max(a, start), min(b, end)  # on the ramp: a trapezoid
        if hi > lo:
            total += (hi - lo) * (self.factor_at(lo) + self.factor_at(hi)) / 2
        return total

    @property
    def peak(self) -> float:
        """The largest multiplier the shape reaches."""
        return max(self.factor, self.from_factor) if self.kind != "steady" else 1.0

    def describe(self) -> str:
        """One line, e.g. `step x1 -> x5 at +0s`."""
        if self.kind == "steady":
            return "steady"
        at = f"at +{self.at_s:g}s"
        if self.kind == "step":
            return f"step x{self.from_factor:g} -> x{self.factor:g} {at}"
        return f"ramp x{self.from_factor:g} -> x{self.factor:g} over {self.over_s:g}s {at}"


STEADY = Shape()


class RateSchedule:
    """One producer's offered rate over time: `rate` (records/s) times the shape's factor.

    `anchor()` returns the anchor instant (monotonic) or None while it is unknown; it is
    asked on every call, so a schedule anchored on the fault changes the moment the engine
    records T_fault (the producers learn it then, after the fault's stack update returns:
    a step at +0s takes effect up to that update's duration late; the offered series in
    the evidence shows when)."""

    def __init__(
        self, rate: float, shape: Shape = STEADY, anchor: Callable[[], float | None] = lambda: 0.0
    ):
        self.rate, self.shape, self.anchor = rate, shape, anchor

    def rate_at(self, now: float) -> float:
        """Records/s to offer at `now` (monotonic)."""
        if self.shape.kind == "steady":
            return self.rate
        t0 = self.anchor()
        return self.rate * self.shape.factor_at(None if t0 is None else now - t0)

    def offered(self, start: float, end: float) -> float:
        """Records the schedule offers over [start, end] (monotonic), with the anchor known
        now; before an unknown anchor, at from_factor."""
        if self.shape.kind == "steady":
            return self.rate * max(0.0, end - start)
        t0 = self.anchor()
        if t0 is None:
            return self.rate * self.shape.from_factor * max(0.0, end - start)
        return self.rate * self.shape.integral(start - t0, end - t0)

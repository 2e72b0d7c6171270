"""A fault as a value: kind, where, parameters, how long.

In the manner of Trogdor's fault specs, a fault is a small serializable value.
The same value is written to the stack's drill-time config (`kdrill:faults`), passed from a drill spec
to its target, and printed by `describe()`; `components.faults.resolve` checks
it against the registry and fills in its defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from components.faults.errors import FaultError

LINKS = ("client", "backbone")
"""`client`: the clients' access to a region; `backbone`: the replication path between regions."""


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    region: str | None = None
    link: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaultSpec:
        return cls(**d)

    def describe(self) -> str:
        where = "/".join(x for x in (self.region, self.link) if x)
        ps = " ".join(f"{k}={v}" for k, v in self.params.items())
        return " ".join(x for x in (self.kind, where, ps) if x)


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`["percent=30", "x=y"]` -> dict; a malformed pair is one clear error.

    Values stay strings: `resolve` converts them with the kind's parameter model."""
    out = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise FaultError(f"--param {item!r}: write it as name=value, e.g. percent=30")
        out[name] = value
    return out

"""The registry of fault kinds: one entry per kind, everything about it in one place.

An entry says what the kind is (name, help), what it takes (region rule, link,
parameter model), where it runs (`targets`), how the local pair does it (`local`)
and any check that needs the environment (`check`). The generic code — `resolve`,
the drill spec, the AWS stack config, `components.local.faults` — reads entries and
never tests kind names, so adding a kind is one `register(FaultKind(...))` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from components.faults.errors import FaultError
from components.faults.params import NoParams, ParamInfo, Params, param_info
from components.faults.spec import FaultSpec

if TYPE_CHECKING:  # only called with them; importing them would tie the registry to the runtime
    from components.local.env import LocalPair

TARGETS = ("local", "aws")
RegionRule = Literal["primary", "standby", "none"]
RENAMED = {"endpoint-blocked": "blackhole"}
"""Old kind names -> new ones: an old name is an error that says what to write instead."""


@dataclass(frozen=True)
class StackFacts:
    """What `resolve` knows of the stack a fault is meant for (passed to `FaultKind.check`)."""

    regions: tuple[str, ...]
    primary: str
    standby: str
    target: str
    brokers: Mapping[str, int] | None = None  # region -> broker count, when known


@dataclass(frozen=True)
class Placed:
    """A fault as it sits on the local pair: its spec and its key -- the entry's key in the
    stack's drill-time config (`s3`), or a direct fault's id (`direct-blackhole-...`).
    Everything a kind needs to apply, see or clear it is derived from these two and the
    pair (its config, or a live lookup); nothing is written down anywhere else."""

    spec: FaultSpec
    key: str

    @property
    def fault(self) -> FaultSpec:
        return self.spec

    @property
    def direct(self) -> bool:
        return self.key.startswith(DIRECT_PREFIX)

    def describe(self) -> str:
        return f"{self.key}: {self.spec.describe()}"


DIRECT_PREFIX = "direct-"
"""Keys of direct faults (the drill's fence and replication stop) start with it; keys of
the stack's drill-time config must not."""


def _nothing_to_observe(pair: LocalPair, f: Placed) -> dict[str, Any]:
    return {}


def _can_apply(pair: LocalPair, spec: FaultSpec) -> None:
    return None


@dataclass(frozen=True)
class Local:
    """How a kind acts on the local pair. Each function gets the pair (its public
    methods only) and the fault as placed (`Placed`: its resolved spec and its key).

    - `check(pair, spec)`: raises when the fault cannot be applied now (e.g. the broker is
      not running); called before anything is touched.
    - `act(pair, f)`: make it so; returns T_fault (monotonic) when it knows the instant
      reachability went better than "when it returned", else None.
    - `clear(pair, f)`: undo, from the spec and key alone (facts it needs are derived from
      the pair's config or looked up live); idempotent, tolerates what is gone, works
      when the target is not running (a killed broker).
    - `present(pair, f)`: whether the fault is in effect now, seen on the live system
      (a table named for the key, a qdisc, a link down, a process stopped or gone...).
    - `observe(pair, f)`: what can be seen of it from outside right now.
    - `restarts`: clearing starts processes again; skipped when the pair is torn down.
    - `teardown(pair, f)`: for `restarts` kinds, what teardown does instead of clear.
    - `rank`: clear order when several faults are cleared together: 0 first, then 1
      (restarts brokers: after the network is back), then 2 (restarts MirrorMaker 2,
      which can stall if started against an unreachable primary).
    """

    act: Callable[[LocalPair, Placed], float | None]
    clear: Callable[[LocalPair, Placed], None]
    present: Callable[[LocalPair, Placed], bool]
    check: Callable[[LocalPair, FaultSpec], None] = _can_apply
    observe: Callable[[LocalPair, Placed], dict[str, Any]] = _nothing_to_observe
    restarts: bool = False
    teardown: Callable[[LocalPair, Placed], None] | None = None
    rank: int = 0


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault.

    region: "primary" — acts on a region, the stack's primary when none is named;
    "standby" — the same, defaulting to the standby; "none" — acts between the regions
    and takes no region.
    link: takes `link` (client|backbone; backbone when omitted).
    params: the parameter model (a `Params` subclass; see components/faults/params.py).
    targets: where it can be applied: "local" (needs `local`) and/or "aws" (rendered by
    components/aws/faults.py from stack config).
    check: a test needing the environment, run by `resolve` after everything else:
    `check(resolved_spec, stack_facts)` raises FaultError.
    """

    name: str
    help: str
    region: RegionRule = "primary"
    link: bool = False
    params: type[Params] = NoParams
    targets: frozenset[str] = frozenset({"local"})
    local: Local | None = None
    check: Callable[[FaultSpec, StackFacts], None] | None = None

    def __post_init__(self) -> None:
        if self.region not in ("primary", "standby", "none"):
            raise ValueError(f"{self.name}: region must be primary, standby or none")
        if not self.targets or not self.targets <= set(TARGETS):
            raise ValueError(f"{self.name}: targets must be some of {TARGETS}")
        if ("local" in self.targets) != (self.local is not None):
            raise ValueError(f"{self.name}: a kind runs on the local target iff it has `local`")
        if not (isinstance(self.params, type) and issubclass(self.params, Params)):
            raise ValueError(f"{self.name}: params must be a Params subclass")

    @property
    def param_list(self) -> list[ParamInfo]:
        """Its parameters, in declaration order, for help and error messages."""
        return param_info(self.params)


KINDS: dict[str, FaultKind] = {}
"""Every registered kind by name, in registration order (the order help lists them in)."""


def register(kind: FaultKind) -> FaultKind:
    """Add `kind`; a name already taken is a programming error."""
    if kind.name in KINDS or kind.name in RENAMED:
        raise ValueError(f"fault kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    KINDS.pop(name, None)


@contextmanager
def registered(kind: FaultKind) -> Iterator[FaultKind]:
    """`kind` registered for the duration of a `with` block (tests, experiments)."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.name)


def names(target: str | None = None) -> tuple[str, ...]:
    """Registered kind names, those that run on `target` when given."""
    return tuple(k.name for k in KINDS.values() if target is None or target in k.targets)


def get(name: str, target: str | None = None) -> FaultKind:
    """The kind called `name` (that runs on `target`, when given), or a one-line FaultError."""
    if name in RENAMED:
        raise FaultError(
            f"fault kind {name!r} was renamed to {RENAMED[name]}; write {RENAMED[name]} instead"
        )
    kind = KINDS.get(name)
    if kind is None:
        raise FaultError(f"unknown fault kind {name!r}; kinds: {', '.join(names(target))}")
    if target is not None and target not in kind.targets:
        raise FaultError(
            f"{name} does not run on the {target} target (only {', '.join(sorted(kind.targets))}); "
            f"{target} kinds: {', '.join(names(target))}"
        )
    return kind


def kinds(target: str | None = None) -> Sequence[FaultKind]:
    return [KINDS[n] for n in names(target)]

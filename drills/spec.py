"""Drill specs: what a drill does and what it must prove, validated before anything runs.

A drill spec is a small YAML document with a versioned schema (`version: 1`).
It names the workload that stands in for production traffic, the client
timeouts that bound how fast anything can be noticed, the replication under
test, the fault and when it strikes, the steady-state hypothesis checked before
touching anything, the detection and decision rules of the runbook, the cutover
order, the objectives the verdict compares against, and the rollback rule.

`load_spec(path)` / `loads_spec(text)` / `parse_spec(dict)` return a
`DrillSpec` or raise `SpecError`, whose message is one line naming the exact
field path and the fix, e.g.::

    region-loss.yaml: workload.groups[1].commit_interval_ms: must be > 0 (got -5)

No input (a missing file, text that is not YAML, YAML that is a list or a
scalar, wrong types, unknown keys, impossible values, contradictions between
fields) produces anything but a `SpecError`. Region names are checked later,
against the stack the drill runs on (a fault that acts on a region and names none
acts on the stack's primary); the fault's kind, region rule, link and parameters
are checked here against the fault registry (components/faults).
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from components.faults import (
    RENAMED,
    FaultError,
    FaultSpec,
    ParamError,
    check_params,
    get,
    names,
)
from drills.shapes import Shape

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_VERSIONS",
    "FAULT_KINDS",
    "SpecError",
    "DrillSpec",
    "Target",
    "Topic",
    "Group",
    "Workload",
    "WorkloadShape",
    "Clients",
    "Replication",
    "SteadyState",
    "Fault",
    "TimelineFault",
    "Rule",
    "Detection",
    "Decision",
    "Cutover",
    "Objectives",
    "Rollback",
    "load_spec",
    "loads_spec",
    "parse_spec",
]

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)

FAULT_KINDS: tuple[str, ...] = names("local")
"""The built-in kinds a drill can apply on the local pair (the registry may hold more)."""

DAY_S = 86_400.0  # no single wait in a drill is longer than a day
MAX_YAML_NODES = 100_000  # a drill spec is a few hundred nodes; this stops alias bombs

_NAME_RE = re.compile(r"^[a-z0-9-]+$")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_STACK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")


class SpecError(Exception):
    """A drill spec that cannot be used. `str()` is one line: source, field path, problem, fix.

    `problems` holds every problem found (each one line, without the source),
    first one first; the message names the first and counts the rest.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        message = _one_line(message)
        super().__init__(message)
        self.problems = [_one_line(p) for p in problems] if problems else [message]


def _one_line(text: str) -> str:
    return " ".join(str(text).splitlines()).strip()


def _n(x: float) -> str:
    """A number as a person writes it: 5, 0.5, 1e+06."""
    return f"{x:g}"


def _fail(msg: str, at: str = "") -> PydanticCustomError:
    """A validation error with our own message; `at` is a path below the validated field."""
    return PydanticCustomError("kdrill", "{msg}", {"msg": msg, "at": at})


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list" if value else "an empty list"
    r = repr(value) if isinstance(value, str | int | float) else f"a {type(value).__name__}"
    return r if len(r) <= 60 else r[:57] + "..."


class _Model(BaseModel):
    # strict: `partitions: true` or `rate: "fast"` is a mistake, not something to coerce
    # (ints are still accepted where a number is expected).
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


# --- target ---------------------------------------------------------------------------


class Target(_Model):
    """Where the drill runs."""

    stack: str = "local"
    """The stack (stacks/Pulumi.<stack>.yaml) whose regions the drill acts on; `local` is the
    embedded pair of network namespaces on this machine. `kdrill run --stack` overrides it."""

    @field_validator("stack")
    @classmethod
    def _stack_name(cls, v: str) -> str:
        if not _STACK_RE.match(v):
            raise _fail(
                f"not a stack name (got {_got(v)}); use letters, digits, '-', '_', '.', "
                "e.g. local or apache-use1-usw2"
            )
        return v


# --- workload -------------------------------------------------------------------------


class Topic(_Model):
    """A topic the workload writes; created in the primary, replicated to the standby."""

    name: str
    """Kafka topic name. Under the `prefixed` replication policy the standby holds it as
    `<primary>.<name>`; under `identity` with the same name."""
    partitions: int = Field(3, ge=1, le=1000)
    """More partitions spread keys; ordering is only promised per key (one key, one partition)."""

    @field_validator("name")
    @classmethod
    def _topic_name(cls, v: str) -> str:
        if not _TOPIC_RE.match(v) or v in (".", "..") or len(v) > 249:
            raise _fail(
                f"not a Kafka topic name (got {_got(v)}); use up to 249 letters, digits, "
                "'.', '_' or '-'"
            )
        if v.startswith("__"):
            raise _fail(f"topic names starting with '__' are Kafka-internal (got {_got(v)})")
        return v


class Group(_Model):
    """A consumer group reading the workload: the thing whose continuity a drill proves."""

    name: str = Field(min_length=1, max_length=255)
    """The group id, the same in both regions (offsets are synced / translated by group id)."""
    topics: list[str] | None = None
    """The workload topics it reads; omitted: all of them (filled in when the spec is parsed)."""
    process_rate: float = Field(0.0, ge=0)
    """Records/s the group processes; 0 = unlimited. A rate below what the producers write
    gives a consumer group that is already behind when the fault strikes."""
    commit_interval_ms: int = Field(1000, gt=0, le=3_600_000)
    """How often the group commits offsets. Longer intervals mean more re-reads (duplicates)
    after failover: what was processed but not committed is owed again."""


class WorkloadShape(_Model):
    """How the offered rate changes over time: a multiplier of `workload.rate`, applied by
    every producer (drills/shapes.py). `steady` keeps the rate; `step` multiplies it by
    `factor` from `at_s` on; `ramp` goes linearly from `from_factor` to `factor` over
    `over_s`, starting at `at_s`. Times count from `relative_to`: the fault (T_fault, the
    peak arrives with the incident) or the workload's start. The offered rate over time is
    recorded in the evidence (`capacity.offered_series`)."""

    kind: Literal["steady", "step", "ramp"] = "steady"
    """steady | step | ramp."""
    factor: float = Field(1.0, gt=0, le=1000)
    """The multiplier of `rate` reached: from `at_s` on (step), from `at_s + over_s` on (ramp)."""
    from_factor: float = Field(1.0, gt=0, le=1000)
    """The multiplier before `at_s` (and before the fault, when relative to it)."""
    at_s: float = Field(0.0, ge=0, le=DAY_S)
    """Seconds after `relative_to` when the step or the ramp starts."""
    over_s: float = Field(0.0, ge=0, le=DAY_S)
    """ramp: seconds from `from_factor` to `factor` (> 0); step: 0."""
    relative_to: Literal["fault", "start"] = "fault"
    """`fault`: counted from T_fault as the engine records it (the producers learn it when
    the fault's stack update returns, so a step at 0 s lands up to that update's duration
    late); `start`: from the workload's start (the steady-state phase)."""

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadShape:
        if self.kind == "steady":
            for name in ("factor", "from_factor", "at_s", "over_s"):
                default = WorkloadShape.model_fields[name].default
                if getattr(self, name) != default:
                    raise _fail(
                        f"steady takes no {name} (got {_n(getattr(self, name))}); "
                        "set kind: step or ramp, or remove it",
                        name,
                    )
        elif self.kind == "step" and self.over_s:
            raise _fail(
                f"a step has no duration (got over_s: {_n(self.over_s)}); "
                "remove it or set kind: ramp",
                "over_s",
            )
        elif self.kind == "ramp" and self.over_s <= 0:
            raise _fail(
                f"a ramp needs over_s > 0, the seconds from from_factor to factor "
                f"(got {_n(self.over_s)}), e.g. over_s: 10",
                "over_s",
            )
        return self

    def shape(self) -> Shape:
        """The shape as drills/shapes.py applies it."""
        return Shape(self.kind, self.factor, self.from_factor, self.at_s, self.over_s)


class Workload(_Model):
    """The traffic standing in for production: instrumented producers and real consumer groups.

    Every record carries producer id, key, per-key sequence, global sequence and send time,
    so loss, duplicates, gaps and reordering are counted record by record."""

    topics: list[Topic] = Field(min_length=1, max_length=100)
    """The topics written (at least one; names unique)."""
    keys: int = Field(32, ge=1, le=100_000)
    """Distinct keys per producer; per-key ordering is checked on each of them."""
    rate: float = Field(200.0, gt=0, le=1_000_000)
    """Records/s per producer. Sets how many records are in flight when the fault strikes,
    so it drives the RPO a drill can observe."""
    record_bytes: int = Field(200, ge=16, le=1_000_000)
    """Size of each record's value; with `rate` it sets the replication bandwidth needed."""
    producers: int = Field(1, ge=1, le=16)
    """Number of producer instances (indexes 0..producers-1, used by `cutover.producers`)."""
    acks: Literal["all", "1"] = "all"
    """`all`: acknowledged only once in-sync replicas have it; `1`: leader only, so an
    acknowledged record can still be lost inside the region."""
    idempotence: bool = True
    """Idempotent producers: retries cannot duplicate or reorder. Requires acks=all."""
    groups: list[Group] = Field(min_length=1, max_length=100)
    """The consumer groups (at least one; names unique)."""
    shape: WorkloadShape = Field(default_factory=WorkloadShape)
    """How the rate changes over time (steady, a step, a ramp): peak load for capacity."""
    workers: int = Field(1, ge=1, le=64)
    """Processes running the producers and groups (drills/worker.py, `kdrill worker`), each
    writing its own history shard; 1: threads in the drill process. Producers and groups
    are dealt to the workers round robin."""

    @property
    def peak_rate(self) -> float:
        """Records/s per producer at the shape's peak (what a projection must assume)."""
        return self.rate * self.shape.shape().peak

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        if self.idempotence and self.acks != "all":
            raise _fail(
                f"idempotence: true requires acks: all (got acks: {_got(self.acks)}); "
                "set acks: all or idempotence: false",
                "acks",
            )
        if self.peak_rate > 1_000_000:
            raise _fail(
                f"rate * the shape's peak factor is {self.peak_rate:g} records/s; "
                "at most 1e+06: lower rate or the factor",
                "shape",
            )
        names = [t.name for t in self.topics]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise _fail(
                    f"duplicate topic name {_got(name)}; topic names must be unique",
                    f"topics[{i}].name",
                )
        gnames = [g.name for g in self.groups]
        for i, g in enumerate(self.groups):
            if g.name in gnames[:i]:
                raise _fail(
                    f"duplicate group name {_got(g.name)}; group names must be unique",
                    f"groups[{i}].name",
                )
            if g.topics is None:
                g.topics = list(names)
                continue
            if not g.topics:
                raise _fail(
                    "a group must read at least one topic; list some or omit `topics` "
                    "to read all workload topics",
                    f"groups[{i}].topics",
                )
            for j, t in enumerate(g.topics):
                if t not in names:
                    raise _fail(
                        f"{_got(t)} is not a workload topic; topics: {', '.join(names)}",
                        f"groups[{i}].topics[{j}]",
                    )
                if t in g.topics[:j]:
                    raise _fail(f"{_got(t)} is listed twice", f"groups[{i}].topics[{j}]")
        return self


# --- clients --------------------------------------------------------------------------


class Clients(_Model):
    """librdkafka timeouts for the drill's clients.

    They bound detection from below: a client cannot report a failure before its timeout,
    and librdkafka's defaults (message.timeout.ms 300 s, socket.connection.setup.timeout.ms
    30 s, metadata.max.age.ms 900 s) would make every drill a five-minute wait."""

    message_timeout_ms: int = Field(5000, ge=500, le=600_000)
    """message.timeout.ms: how long a record may wait for an ack before its delivery fails.
    The `delivery-errors` detector cannot fire earlier than this."""
    request_timeout_ms: int = Field(3000, ge=100, le=600_000)
    """request.timeout.ms: one produce request's ack timeout; must be <= message_timeout_ms."""
    socket_connection_setup_timeout_ms: int = Field(3000, ge=1000, le=600_000)
    """socket.connection.setup.timeout.ms: how long a TCP connect may hang (a black-holed
    endpoint hangs rather than refuses). librdkafka rejects values below 1000."""
    metadata_max_age_ms: int = Field(5000, ge=1000, le=3_600_000)
    """metadata.max.age.ms: how stale cluster metadata may get before a refresh."""
    fetch_wait_max_ms: int = Field(100, ge=0, le=300_000)
    """fetch.wait.max.ms: how long a consumer's fetch may wait at the broker for new data.
    A fetch waiting on partitions that are caught up (a failed-over group's replicated
    topic, once replication has stopped) holds back the first read of the partitions the
    producers now write until it returns, so it adds up to this to first-consume
    (librdkafka's default, 500, would add up to half a second)."""
    session_timeout_ms: int = Field(6000, ge=1000, le=300_000)
    """session.timeout.ms: how long a silent consumer keeps its partitions. Brokers refuse
    values below their group.min.session.timeout.ms (6000 by default); librdkafka refuses
    values above max.poll.interval.ms (300000 by default)."""

    @model_validator(mode="after")
    def _consistent(self) -> Clients:
        if self.request_timeout_ms > self.message_timeout_ms:
            raise _fail(
                f"must be <= message_timeout_ms ({self.message_timeout_ms}) "
                f"(got {self.request_timeout_ms}); a request cannot outlive the record it carries",
                "request_timeout_ms",
            )
        return self


# --- replication ----------------------------------------------------------------------


class Replication(_Model):
    """The replication under test: what carries records and consumer offsets across regions."""

    engine: Literal[
        "mirrormaker2", "dual-write", "active-active", "backup-restore", "msk-replicator"
    ] = "mirrormaker2"
    """The recovery pattern that runs. `mirrormaker2`: active-passive, MirrorMaker 2
    (dedicated mode) carries records, checkpoints and group-offset sync. `dual-write`: the
    application writes every record to both regions with its idempotency key (producer,
    key, seq); groups move to the survivor by time and deduplicate by the key
    (drills/dualwrite.py; cutover.resume does not apply; needs a region-loss incident).
    `backup-restore`: a backup sink copies the primary's topics to the standby's bucket; after
    the region loss they are restored into the standby and groups resume by timestamp
    (drills/backup.py; cutover.resume does not apply; needs a region-loss incident).
    `msk-replicator`: active-passive on the AWS MSK stack, Amazon MSK Replicator carrying records
    and (approximately) group offsets (drills/targets/aws.py; verified only under mocks).
    `active-active`: both regions take writes of the same keys, MirrorMaker 2 runs both ways
    under the prefixed policy (`east.orders` in west, `west.orders` in east), each region's
    groups read their local topic and the other region's replica; the lost region returns
    and replication resumes both ways (drills/activeactive.py; needs a region-loss incident,
    cutover.failover: false, rollback.rule: none, a prefixed policy)."""
    policy: Literal["prefixed", "identity"] | None = None
    """Topic naming in the standby: `prefixed` (east.orders) or `identity` (orders);
    null: whatever the stack is configured with. Prefixed means producers write a different
    topic after cutover, which consumers must also read."""


# --- steady state ---------------------------------------------------------------------


class SteadyState(_Model):
    """The steady-state hypothesis, checked before anything is touched: if the pair is not
    healthy before the fault, nothing measured after it means anything."""

    duration_s: float = Field(8.0, gt=0, le=DAY_S)
    """How long the workload runs before the hypothesis is checked."""
    max_replication_lag_s: float = Field(5.0, gt=0, le=DAY_S)
    """The standby must be at most this far behind (a paused MirrorMaker 2 fails it)."""
    min_throughput_rps: float | None = Field(None, ge=0)
    """Acknowledged records/s the primary must sustain; default 0.5 * rate * producers
    (filled in when the spec is parsed). Cannot exceed what the producers send."""


# --- fault ----------------------------------------------------------------------------


def _check_params(value: Any, handler: Any) -> Any:
    if not isinstance(value, dict):
        raise _fail(f"must be a mapping of name: value (got {_got(value)}), e.g. {{percent: 30}}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise _fail(f"parameter names must be strings (got {_got(k)})")
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise _fail(f"must be a number or a string (got {_got(v)})", k)
        if isinstance(v, float) and not math.isfinite(v):
            raise _fail(f"must be a finite number (got {_got(v)})", k)
    return handler(value)


def _choices(options: tuple[str, ...]) -> str:
    """'a', 'b' or 'c' — as pydantic words a Literal's choices."""
    quoted = [repr(o) for o in options]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


_TYPE_NEEDS = {"float": "must be a number", "int": "must be an integer", "str": "must be a string"}


def _param_problem(e: ParamError) -> PydanticCustomError:
    """A parameter error from the registry, worded for a drill spec (`fault.params.<name>`)."""
    p, got = e.param, f"(got {_got(e.value)})"
    if e.reason == "unknown" or p is None:
        return _fail(str(e), f"params.{e.name}" if e.name else "params")
    if e.reason == "missing":
        example = _n(p.low) if p.low is not None else "..."
        return _fail(
            f"{e.kind} needs parameter {p.name} ({p.help}), e.g. params: {{{p.name}: {example}}}",
            "params",
        )
    if e.reason == "type":
        problem = _TYPE_NEEDS.get(p.type, f"must be a {p.type}")
    elif e.reason == "choice":
        problem = f"must be one of: {', '.join(p.choices)}"
    elif e.reason == "range":
        problem = f"must be in {p.range}"
    else:  # the model's own check, whose message names the value already
        return _fail(e.detail, f"params.{p.name}")
    return _fail(f"{problem} {got}", f"params.{p.name}")


class _FaultKind(_Model):
    """A fault from the registry: its kind, where it acts, its parameters, how long it lasts."""

    kind: str
    """A registered fault kind (`kdrill local fault --help` lists them with their parameters)."""
    region: str | None = None
    """The region it acts on, for kinds that act on a region; null = the stack's primary.
    Checked against the stack when the drill runs. Kinds acting between the regions
    (partition, latency, replication-*) take none."""
    link: Literal["client", "backbone"] | None = None
    """For link faults (packet-loss, bandwidth): the clients' link or the replication
    backbone; null = backbone."""
    params: Annotated[dict[str, int | float | str], WrapValidator(_check_params)] = Field(
        default_factory=dict
    )
    """The kind's parameters, e.g. {percent: 30} for packet-loss."""
    duration_s: float | None = Field(None, gt=0, le=DAY_S)
    """How long the fault stays applied; null = until cutover / teardown."""

    @field_validator("kind")
    @classmethod
    def _registered(cls, v: str) -> str:
        try:
            get(v)
        except FaultError as e:  # a renamed kind says what to write instead
            msg = str(e) if v in RENAMED else f"must be one of {_choices(names())} (got {_got(v)})"
            raise _fail(msg) from None
        return v

    @model_validator(mode="after")
    def _against_registry(self) -> Fault:
        kind = get(self.kind)
        if kind.region == "none" and self.region is not None:
            raise _fail(
                f"{self.kind} acts between the regions and takes no region "
                f"(got {_got(self.region)}); remove it",
                "region",
            )
        if self.link is not None and not kind.link:
            raise _fail(f"{self.kind} takes no link; remove it", "link")
        try:
            check_params(kind.name, kind.params, self.params, strict=True)
        except ParamError as e:
            raise _param_problem(e) from None
        return self

    def fault_spec(self) -> FaultSpec:
        """The fault as the registry's value, still unresolved: `components.faults.resolve`
        fills in the region (the stack's primary when null), link and parameter defaults."""
        return FaultSpec(self.kind, self.region, self.link, dict(self.params), self.duration_s)


class Fault(_FaultKind):
    """The fault from the registry, and when it strikes. Test the ambiguous middle states
    too (packet loss, a blocked endpoint, high replication lag), not only a clean outage.
    The single `fault:` of a spec is a one-fault timeline (`faults:`) whose fault is the
    incident."""

    after_s: float = Field(0.0, ge=0, le=DAY_S)
    """Delay after the steady-state check before the fault is injected."""


class TimelineFault(_FaultKind):
    """One fault of a timeline (`faults:`): what strikes, when, and whether it is the
    incident RTO and RPO are measured from. Real incidents are rarely one clean fault:
    replication stopped, then the region lost; the standby squeezed, then a failover."""

    at_s: float = Field(0.0, ge=0, le=DAY_S)
    """When it strikes, in seconds after the steady-state check. Faults on one stack are
    applied one after another (each is a stack update, which holds the stack's lock), so a
    fault due while the previous one is still being applied strikes when that one is done;
    the evidence records when each was due and when it was applied."""
    incident: bool = False
    """The fault T_fault (and so RTO and RPO) is measured from; exactly one per timeline
    (a one-fault timeline needs no mark). Detection counts only what clients see from it on."""


# --- detection / decision -------------------------------------------------------------


RULES: tuple[str, ...] = (
    "delivery-errors", "no-acks", "probe", "replication-lag", "consumer-lag", "any", "all",
)  # fmt: skip
PROBE_CHECKS: tuple[str, ...] = ("primary", "standby", "replication")

# Which rule uses which of a rule's fields (a field set away from its default on a rule that
# does not use it is a mistake, said in one line).
_RULE_FIELDS: dict[str, frozenset[str]] = {
    "threshold": frozenset({"delivery-errors", "probe"}),
    "for_s": frozenset({"probe", "replication-lag", "consumer-lag"}),
    "interval_s": frozenset({"probe", "replication-lag", "consumer-lag"}),
    "timeout_ms": frozenset({"probe", "replication-lag", "consumer-lag"}),
    "checks": frozenset({"probe"}),
    "failed_share": frozenset({"probe"}),
    "of_last": frozenset({"probe"}),
    "max_lag_s": frozenset({"replication-lag"}),
    "max_records": frozenset({"replication-lag", "consumer-lag"}),
    "group": frozenset({"consumer-lag"}),
    "rules": frozenset({"any", "all"}),
}


class Rule(_Model):
    """One detection rule: what clients observe that declares the primary unhealthy.

    Every rule reads client-side observations only -- delivery reports, a canary's round
    trips, end offsets and committed offsets read through the clusters' bootstrap -- never
    the fault record or the stack, as an on-call human or an alert would."""

    rule: Literal[
        "delivery-errors", "no-acks", "probe", "replication-lag", "consumer-lag", "any", "all"
    ] = "delivery-errors"
    """`delivery-errors`: `threshold` consecutive failed deliveries; `no-acks`: no
    acknowledgement at all for `window_s`; `probe`: a canary producer and consumer per region
    (their own short timeouts) fail their round trip `threshold` times in a row (or for
    `for_s`); `replication-lag`: the standby behind the primary by more than `max_lag_s` or
    `max_records` for `for_s`; `consumer-lag`: a group behind the primary's end offsets by
    more than `max_records` for `for_s`; `any` / `all`: when any / every rule of `rules` has
    fired."""
    threshold: int = Field(3, ge=1, le=1_000_000)
    """delivery-errors: consecutive failed deliveries; probe: consecutive failed round trips."""
    window_s: float = Field(2.0, gt=0, le=DAY_S)
    """Silence that declares the region unhealthy (no-acks)."""
    for_s: float | None = Field(None, ge=0, le=DAY_S)
    """probe: a round trip failing for this long declares too (null: `threshold` only);
    replication-lag / consumer-lag: how long the lag must stay over its bound (null: 0, the
    first sample over it)."""
    interval_s: float = Field(0.5, ge=0.05, le=3600)
    """probe: one canary round trip every this often; lag rules: one sample every this often."""
    timeout_ms: int = Field(1000, ge=100, le=600_000)
    """probe: a round trip not complete in this long fails (the canary clients' own
    message/request/connection timeouts, far shorter than the workload's); lag rules: a read
    of offsets not answered in this long is no observation."""
    failed_share: float | None = Field(None, gt=0, le=1)
    """probe: declare too when at least this share of the last `of_last` round trips failed
    (null: consecutive failures only). Partial loss fails round trips here and there, rarely
    `threshold` in a row: at 30 % packet loss a quarter of 1 s round trips time out (TCP's
    retransmission backoff) yet two in a row seldom do, while at 5 % almost none fail."""
    of_last: int = Field(20, ge=2, le=10_000)
    """probe: how many of the latest round trips `failed_share` is judged over: it declares once
    failed_share * of_last of them failed (k of n; only round trips since the incident count)."""
    checks: list[Literal["primary", "standby", "replication"]] = Field(
        default_factory=lambda: ["primary"], min_length=1, max_length=3
    )
    """probe: which round trips count: `primary` (produce to and consume from the primary),
    `standby` (the same in the standby), `replication` (produce to the primary, consume the
    record from the standby's replicated topic: MirrorMaker 2's path end to end)."""
    max_lag_s: float | None = Field(None, gt=0, le=DAY_S)
    """replication-lag: the bound in seconds (how long ago the primary had the end offsets the
    standby has reached), as the steady state measures it."""
    max_records: int | None = Field(None, ge=0)
    """replication-lag: the bound in records (primary end offsets minus the standby's, summed);
    consumer-lag: records a group has not committed below the primary's end offsets."""
    group: str | None = Field(None, min_length=1)
    """consumer-lag: the workload group watched; null: any of them."""
    rules: list[Rule] | None = Field(None, min_length=1, max_length=20)
    """any / all: the rules combined (each a rule of its own, nested combinations too)."""

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        defaults = {
            k: Rule.model_fields[k].get_default(call_default_factory=True) for k in _RULE_FIELDS
        }
        for name, users in _RULE_FIELDS.items():
            if self.rule not in users and getattr(self, name) != defaults[name]:
                uses = ", ".join(sorted(users))
                raise _fail(
                    f"{name} is not used by rule {self.rule} (only by {uses}); remove it "
                    "or change the rule",
                    name,
                )
        if self.rule in ("any", "all") and not self.rules:
            raise _fail(
                f"rule {self.rule} combines rules: list them, e.g. rules: "
                "[{rule: probe}, {rule: delivery-errors}]",
                "rules",
            )
        if self.rule == "replication-lag" and (self.max_lag_s is None) == (
            self.max_records is None
        ):
            raise _fail(
                "replication-lag needs one bound: max_lag_s (seconds) or max_records, not "
                f"{'both' if self.max_lag_s is not None else 'neither'}",
                "max_lag_s",
            )
        if self.rule == "consumer-lag" and self.max_records is None:
            raise _fail("consumer-lag needs its bound, max_records, e.g. max_records: 1000",
                        "max_records")  # fmt: skip
        if len(set(self.checks)) != len(self.checks):
            raise _fail("a probe check is listed twice", "checks")
        return self

    def leaves(self, path: str = "detection") -> list[tuple[str, Rule]]:
        """Every non-combining rule below (and including) this one, with its spec path."""
        if not self.rules:
            return [(path, self)]
        return [x for i, r in enumerate(self.rules) for x in r.leaves(f"{path}.rules[{i}]")]

    def earliest_s(self, clients: Clients) -> float:
        """The soonest, after the fault, this rule can fire: what client timeouts allow."""
        r = self.rule
        if r == "delivery-errors":
            return clients.message_timeout_ms / 1000
        if r == "no-acks":
            return self.window_s
        if r == "probe":
            # a failed round lasts its timeout, so rounds come max(interval, timeout) apart;
            # the first may have started just before the fault
            rounds = (self.threshold - 1) * max(self.interval_s, self.timeout_ms / 1000)
            if self.failed_share is not None:  # k failed of the last n: k rounds at least
                k = math.ceil(self.failed_share * self.of_last)
                rounds = min(rounds, (k - 1) * max(self.interval_s, self.timeout_ms / 1000))
            return min(rounds, self.for_s) if self.for_s is not None else rounds
        if r in ("replication-lag", "consumer-lag"):
            return self.for_s or 0.0
        kids = [k.earliest_s(clients) for k in self.rules or []]
        return (min if r == "any" else max)(kids, default=0.0)


class Detection(Rule):
    """How the drill notices the failure: a rule (or a combination of rules) over what clients
    see only, never the fault record or the stack -- as an on-call human or an alert would."""

    timeout_s: float = Field(120.0, gt=0, le=DAY_S)
    """Give up detecting after this long: the drill ends "no failover needed" (a degraded
    region the clients rode through is a result too)."""


class Decision(_Model):
    """Who decides to cut over: the runbook's authority, timed as its own part of RTO."""

    mode: Literal["automatic", "delay", "approval"] = "automatic"
    """`automatic`: on detection; `delay`: a fixed wait (a human's reaction time);
    `approval`: wait for a recorded human approval."""
    delay_s: float = Field(0.0, ge=0, le=DAY_S)
    """The wait for mode: delay (must be > 0 then)."""
    approval_file: str | None = Field(None, min_length=1)
    """mode: approval: the drill waits until this file exists; its content is recorded in
    the timeline as the approver."""
    approval_timeout_s: float = Field(600.0, gt=0, le=DAY_S)
    """How long to wait for the approval before the drill gives up."""

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if self.mode == "delay" and self.delay_s <= 0:
            raise _fail(
                f"mode: delay needs delay_s > 0 (got {_n(self.delay_s)}); "
                "set it or use mode: automatic",
                "delay_s",
            )
        if self.mode != "delay" and self.delay_s > 0:
            raise _fail(
                f"delay_s is only used with mode: delay (got mode: {self.mode}); "
                "set mode: delay or remove delay_s",
                "delay_s",
            )
        if self.mode == "approval" and self.approval_file is None:
            raise _fail(
                "mode: approval needs approval_file, the path whose appearance approves "
                "the cutover, e.g. approval_file: /tmp/kdrill-approve",
                "approval_file",
            )
        if self.mode != "approval" and self.approval_file is not None:
            raise _fail(
                f"approval_file is only used with mode: approval (got mode: {self.mode}); "
                "set mode: approval or remove approval_file",
                "approval_file",
            )
        return self


# --- cutover --------------------------------------------------------------------------


def _check_producers(value: Any, handler: Any) -> Any:
    if isinstance(value, str):
        if value != "all":
            raise _fail(f"must be 'all' or a list of producer indexes (got {_got(value)})")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int):
                raise _fail(f"must be a producer index, an integer (got {_got(v)})", f"[{i}]")
            if v < 0:
                raise _fail(f"must be >= 0 (got {v})", f"[{i}]")
            if v in value[:i]:
                raise _fail(f"producer {v} is listed twice", f"[{i}]")
    else:
        raise _fail(f"must be 'all' or a list of producer indexes (got {_got(value)})")
    return handler(value)


def _check_groups(value: Any, handler: Any) -> Any:
    if isinstance(value, str):
        if value != "all":
            raise _fail(f"must be 'all' or a list of group names (got {_got(value)})")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise _fail(f"must be a group name, a string (got {_got(v)})", f"[{i}]")
            if v in value[:i]:
                raise _fail(f"group {v!r} is listed twice", f"[{i}]")
    else:
        raise _fail(f"must be 'all' or a list of group names (got {_got(value)})")
    return handler(value)


class Cutover(_Model):
    """The cutover: fence the old primary, stop replication from it, snapshot the standby's
    end offsets, then move the chosen clients to the standby."""

    failover: bool = True
    """false: stay on the primary (e.g. one broker killed inside a region); RTO is then
    measured on the primary the same way."""
    producers: Annotated[Literal["all"] | list[int], WrapValidator(_check_producers)] = "all"
    """Producer indexes that move (`all`, or a list of 0..workload.producers-1)."""
    groups: Annotated[Literal["all"] | list[str], WrapValidator(_check_groups)] = "all"
    """Consumer groups that move (`all`, or a list of workload group names)."""
    resume: Literal["synced", "checkpoint", "reset"] = "synced"
    """Where moved consumers start: `synced` group offsets (MM2 sync), `checkpoint`
    translation of the last committed offset, or `reset` (auto.offset.reset)."""
    run_after_s: float = Field(10.0, gt=0, le=DAY_S)
    """How long the workload keeps running on the serving region after cutover (capacity,
    first-consume and continuity are measured in this window)."""
    warm_standby: bool = True
    """Moving clients keep a warm client to the standby from the moment the workload starts,
    and cutover switches to it: each moving producer's is connected, holds its idempotent
    producer id and has the standby topics' metadata before the fault; each moving group's
    consumer is connected but does not join the group until cutover (so MirrorMaker 2 keeps
    syncing offsets into it). false: clients are created at cutover, as an application that
    only reconnects on failover does; a new idempotent producer alone then adds librdkafka's
    fixed 500 ms wait before it asks for its producer id."""


# --- objectives / rollback ------------------------------------------------------------


class Objectives(_Model):
    """What the verdict compares against; a missed objective makes the drill exit 1.
    null = not an objective (measured and reported, not judged)."""

    max_rpo_records: int | None = Field(None, ge=0)
    """Most acknowledged records the standby may be missing at cutover."""
    max_rpo_seconds: float | None = Field(None, ge=0, le=DAY_S)
    """Most time between the oldest lost record's ack and the fault."""
    max_rto_seconds: float | None = Field(None, gt=0, le=DAY_S)
    """Longest time from the fault to every group consuming new records in the serving
    region (detect + decide + cutover + first consume)."""
    max_duplicates: int | None = Field(None, ge=0)
    """Most records a group may read again after resuming (sinks must absorb replay)."""
    max_skipped: int = Field(0, ge=0)
    """Most records a group may skip by resuming past them: loss by offset, the worst outcome."""
    max_split_brain_writes: int = Field(0, ge=0)
    """Most writes the old primary may acknowledge after it was fenced."""
    ordering_per_key: bool = True
    """Per-key order must hold in the standby (no reordered records)."""
    max_throughput_drop: float | None = Field(None, ge=0, le=1)
    """Capacity under peak: the largest fraction of the offered load the serving region may
    fail to acknowledge after cutover. Over the serve window (from the end of cutover, the
    first ack from the serving region, for `cutover.run_after_s`): drop = 1 - A / O, where
    A = records the serving region acknowledged in the window (by ack time, whenever they
    were sent) and O = records the workload's shape offered in the window, i.e. the sum over
    the producers writing to the serving region of the integral of rate x the shape's
    factor (the schedule, not what a starved producer managed to send); 0 when A >= O
    (a backlog served). E.g. 0.2: the standby must acknowledge at least 80% of the peak.
    Missed, the verdict carries a `standby-capacity` finding."""
    max_parity_breaking: int | None = Field(0, ge=0)
    """Most control-state differences that break clients after failover (a topic, user or
    ALLOW ACL the workload relies on missing in the standby; drills/controlstate.py)."""


class Rollback(_Model):
    """What happens after the verdict: who may reverse the switch, under what conditions."""

    rule: Literal["none", "failback"] = "none"
    """`none`: the standby keeps serving; `failback`: restore the primary and move the
    clients back (the old primary is fenced until then, so no split-brain writes land)."""
    require_zero_lag: bool = True
    """failback only once the primary has caught up with what the standby took (reverse
    replication's lag zero, waited for at most `lag_timeout_s`); false: switch back as soon
    as reverse replication runs, and the RPO says what did not make it."""
    window_s: float = Field(5.0, ge=0, le=86_400)
    """Seconds the standby serves after the cutover (counted from T_cut, at least
    `cutover.run_after_s`) before the failback starts."""
    rebuild: bool = False
    """true: delete and recreate the old primary's workload topics before reverse
    replication fills them from the standby, so the records it acknowledged but never
    replicated (the lost tail) are gone; false: keep them, and report every one a consumer
    reads again after the failback as *resurrected*. The identity policy needs true (reverse
    replication into the same topic names would append the standby's whole copy again)."""
    lag_timeout_s: float = Field(60.0, gt=0, le=3600)
    """Bound on each wait for reverse replication (running, then zero lag); exceeding it
    fails the failback with the lag left."""
    run_after_s: float = Field(5.0, gt=0, le=3600)
    """Seconds the workload runs on the old primary after the failback, so that every group
    consumes there (failback RTO needs a post-failback record consumed by each)."""


class Cost(_Model):
    """What the drill may cost (priced by drills/cost from the stack and the spec)."""

    budget_usd: float | None = Field(None, gt=0, le=1_000_000)
    """Refuse to start when the projected cost (every resource for the drill's longest
    possible window, the offered workload crossing regions) exceeds this; null = no budget."""


# --- the spec -------------------------------------------------------------------------


class DrillSpec(_Model):
    """A whole drill: the workload, the fault, the runbook, and what must be proven."""

    version: Literal[1]
    """Schema version (see SUPPORTED_VERSIONS); required so old specs fail loudly."""
    name: str = Field(min_length=1, max_length=63)
    """The drill's name ([a-z0-9-]+): labels the run directory, evidence and cost tags."""
    description: str = ""
    """Free text: what this drill is meant to prove."""
    target: Target = Field(default_factory=Target)
    workload: Workload
    clients: Clients = Field(default_factory=Clients)
    replication: Replication = Field(default_factory=Replication)
    steady_state: SteadyState = Field(default_factory=SteadyState)
    fault: Fault | None = None
    """The fault (a one-fault timeline); or give `faults`. Once parsed, always the incident."""
    faults: list[TimelineFault] | None = Field(None, min_length=1, max_length=20)
    """A timeline of faults, in order of `at_s`, one of them the incident; or give `fault`.
    Once parsed, always the whole timeline (a single `fault` is a timeline of one)."""
    detection: Detection = Field(default_factory=Detection)
    decision: Decision = Field(default_factory=Decision)
    cutover: Cutover = Field(default_factory=Cutover)
    objectives: Objectives = Field(default_factory=Objectives)
    rollback: Rollback = Field(default_factory=Rollback)
    cost: Cost = Field(default_factory=Cost)
    _derived: str | None = PrivateAttr(None)  # "fault" or "faults": filled in from the other

    @field_validator("name")
    @classmethod
    def _drill_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise _fail(f"use lowercase letters, digits and '-' only (got {_got(v)})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DrillSpec:
        w = self.workload
        offered = w.rate * w.producers
        ss = self.steady_state
        if ss.min_throughput_rps is None:
            ss.min_throughput_rps = 0.5 * offered
        elif ss.min_throughput_rps > offered:
            raise _fail(
                f"must be <= workload.rate * workload.producers = {offered:g} records/s, what "
                f"the producers send (got {_n(ss.min_throughput_rps)})",
                "steady_state.min_throughput_rps",
            )

        self._timeline()
        d = self.detection
        if d.rule == "delivery-errors" and d.timeout_s * 1000 <= self.clients.message_timeout_ms:
            raise _fail(
                f"must be > clients.message_timeout_ms ({_n(self.clients.message_timeout_ms / 1000)} s): "
                f"no delivery error can appear before it (got {_n(d.timeout_s)})",
                "detection.timeout_s",
            )
        if d.rule == "no-acks" and d.timeout_s <= d.window_s:
            raise _fail(
                f"must be > detection.window_s ({_n(d.window_s)}) (got {_n(d.timeout_s)})",
                "detection.timeout_s",
            )
        if d.rule in ("probe", "replication-lag", "consumer-lag", "any", "all"):
            soonest = d.earliest_s(self.clients)
            if d.timeout_s <= soonest:
                raise _fail(
                    f"must be > {_n(round(soonest, 3))} s, the soonest rule {d.rule} can fire "
                    f"with its thresholds and timeouts (got {_n(d.timeout_s)})",
                    "detection.timeout_s",
                )
        gnames = [g.name for g in self.workload.groups]
        for path, leaf in d.leaves():
            if leaf.group is not None and leaf.group not in gnames:
                raise _fail(
                    f"{leaf.group!r} is not a workload group; groups: {', '.join(gnames)}",
                    f"{path}.group",
                )

        c = self.cutover
        if isinstance(c.producers, list):
            for i, p in enumerate(c.producers):
                if p >= w.producers:
                    raise _fail(
                        f"no producer {p}: workload.producers is {w.producers}, "
                        f"indexes 0..{w.producers - 1}",
                        f"cutover.producers[{i}]",
                    )
        if isinstance(c.groups, list):
            names = [g.name for g in w.groups]
            for i, g in enumerate(c.groups):
                if g not in names:
                    raise _fail(
                        f"{g!r} is not a workload group; groups: {', '.join(names)}",
                        f"cutover.groups[{i}]",
                    )
        if c.failover and c.producers == [] and c.groups == []:
            raise _fail(
                "failover with no producers and no groups moves nothing; "
                "list some or set cutover.failover: false",
                "cutover",
            )
        if self.replication.engine == "dual-write":
            self._dual_write()
        if self.replication.engine == "backup-restore":
            self._backup_restore()
        if self.replication.engine == "active-active":
            self._active_active()
        if w.workers > 1 and (
            self.replication.engine != "mirrormaker2" or self.rollback.rule == "failback"
        ):
            raise _fail(
                "worker processes run the mirrormaker2 pattern without failback only; "
                "set workload.workers: 1 for other patterns or failback drills",
                "workload.workers",
            )
        if self.rollback.rule == "failback" and not c.failover:
            raise _fail(
                "failback needs cutover.failover: true (there is nothing to fail back); "
                "set rule: none",
                "rollback.rule",
            )
        return self

    def _dual_write(self) -> None:
        """What a dual-write drill needs (drills/dualwrite.py): the lost region comes back to
        have its log read, and nothing replicates to fail back."""
        if self.fault is not None and self.fault.kind != "region-loss":
            raise _fail(
                f"replication.engine dual-write drills a region-loss incident (got "
                f"{self.fault.kind!r}); use kind: region-loss or engine: mirrormaker2",
                "fault.kind" if self._derived == "faults" else "faults",
            )
        if self.rollback.rule != "none":
            raise _fail(
                "dual-write has no replication to fail back; set rollback.rule: none",
                "rollback.rule",
            )
        if not self.cutover.failover:
            raise _fail(
                "dual-write moves the groups to the survivor; set cutover.failover: true",
                "cutover.failover",
            )

    def _backup_restore(self) -> None:
        """What a backup-and-restore drill needs (drills/backup.py): a lost region to restore
        from, a failover to restore into, and nothing replicating to fail back."""
        if self.fault is not None and self.fault.kind != "region-loss":
            raise _fail(
                f"replication.engine backup-restore drills a region-loss incident (got "
                f"{self.fault.kind!r}); use kind: region-loss or engine: mirrormaker2",
                "fault.kind" if self._derived == "faults" else "faults",
            )
        if self.rollback.rule != "none":
            raise _fail(
                "backup-restore has no replication to fail back; set rollback.rule: none",
                "rollback.rule",
            )
        if not self.cutover.failover:
            raise _fail(
                "backup-restore restores into the standby and moves there; set cutover.failover: true",
                "cutover.failover",
            )

    def _active_active(self) -> None:
        """What an active-active drill needs (drills/activeactive.py): the lost region comes
        back (nothing moves), and the regions' copies of each other are prefixed."""
        if self.fault is not None and self.fault.kind != "region-loss":
            raise _fail(
                f"replication.engine active-active drills a region-loss incident (got "
                f"{self.fault.kind!r}); use kind: region-loss or engine: mirrormaker2",
                "fault.kind" if self._derived == "faults" else "faults",
            )
        if self.rollback.rule != "none":
            raise _fail(
                "active-active has no failback (both regions serve throughout); "
                "set rollback.rule: none",
                "rollback.rule",
            )
        if self.cutover.failover:
            raise _fail(
                "active-active moves no client: the lost region returns and serves its own "
                "clients again; set cutover.failover: false",
                "cutover.failover",
            )
        if self.replication.policy == "identity":
            raise _fail(
                "active-active needs the prefixed policy (under identity each region's copies "
                "land in the topic the other region writes, and copy back); set policy: prefixed",
                "replication.policy",
            )

    def _timeline(self) -> None:
        """`fault` or `faults`, one of them; then fill in the other, so that `fault` is always
        the incident and `faults` always the timeline (what was derived is not dumped)."""
        if self.fault is None and self.faults is None:
            raise _fail(
                "missing required key; add it, e.g. `fault: {kind: region-loss, region: east}`, "
                "or give `faults:`, a timeline",
                "fault",
            )
        if self.fault is not None and self.faults is not None:
            if self._derived:  # a copy of a parsed spec: both are there already
                return
            raise _fail(
                "give `fault` (one fault) or `faults` (a timeline of faults), not both", "faults"
            )
        if self.fault is not None:
            f = self.fault
            base = f.model_dump(exclude={"after_s"})
            self.faults = [TimelineFault(**base, at_s=f.after_s, incident=True)]
            self._derived = "faults"
            return
        faults = self.faults or []
        for i in range(1, len(faults)):
            if faults[i].at_s < faults[i - 1].at_s:
                raise _fail(
                    f"the timeline is in order of at_s: {_n(faults[i].at_s)} comes before "
                    f"faults[{i - 1}]'s {_n(faults[i - 1].at_s)}; sort the faults by at_s",
                    f"faults[{i}].at_s",
                )
        marked = [i for i, f in enumerate(faults) if f.incident]
        if len(marked) > 1:
            raise _fail(
                f"only one fault is the incident RTO and RPO are measured from (faults[{marked[0]}] "
                "is already); remove incident: true from all but one",
                f"faults[{marked[1]}].incident",
            )
        if not marked:
            if len(faults) > 1:
                raise _fail(
                    f"{len(faults)} faults and none is the incident; mark the one RTO and RPO "
                    "are measured from with `incident: true`",
                    "faults",
                )
            faults[0].incident = True
            marked = [0]
        k = marked[0]
        inc = faults[k]
        timeout = self.detection.timeout_s
        for i, f in enumerate(faults[k + 1 :], start=k + 1):
            if f.at_s - inc.at_s >= timeout:
                raise _fail(
                    f"{_n(f.at_s)} s is {_n(f.at_s - inc.at_s)} s after the incident (faults[{k}], "
                    f"at_s {_n(inc.at_s)}), beyond detection.timeout_s ({_n(timeout)}): the drill "
                    "may be over before it strikes; move it earlier or raise detection.timeout_s",
                    f"faults[{i}].at_s",
                )
        self.fault = Fault(**inc.model_dump(exclude={"at_s", "incident"}), after_s=inc.at_s)
        self._derived = "fault"

    @property
    def incident_index(self) -> int:
        """The incident's index in `faults`."""
        return next(i for i, f in enumerate(self.faults or []) if f.incident)

    def to_dict(self) -> dict[str, Any]:
        """The spec with every default filled in, JSON-serialisable (for evidence.json);
        `parse_spec(spec.to_dict())` gives the same spec back. Of `fault` / `faults`, the one
        the spec gave (the other is derived from it)."""
        return self.model_dump(mode="json", exclude={self._derived} if self._derived else None)


# --- loading --------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (the second would silently win)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` keys may be overridden by explicit ones
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_got(key)} (line {line}); keep one", None
                    )
                seen[key] = True
            except TypeError:
                pass  # unhashable key: SafeLoader reports it below
        return super().construct_mapping(node, deep=deep)


def _node_count(node: Any) -> int:
    """Nodes after alias expansion; raises ValueError on a cycle or an alias bomb."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def walk(n: Any) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        if key in active:
            raise ValueError("a YAML alias refers to itself (a recursive structure)")
        active.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [x for pair in n.value for x in pair]
        else:
            children = []
        for child in children:
            total += walk(child)
            if total > MAX_YAML_NODES:
                raise ValueError(
                    f"more than {MAX_YAML_NODES} values once YAML aliases are expanded"
                )
        active.discard(key)
        memo[key] = total
        return total

    return walk(node)


def _yaml_problem(e: yaml.YAMLError) -> str:
    if isinstance(e, yaml.MarkedYAMLError):
        what = e.problem or e.context or "invalid YAML"
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{what}{where}"
    if isinstance(e, yaml.reader.ReaderError):
        char = chr(e.character) if isinstance(e.character, int) else e.character
        return f"character {char!r} is not allowed in YAML (position {e.position})"
    return str(e)


def loads_spec(text: str, source: str = "<spec>") -> DrillSpec:
    """Parse a drill spec from YAML text; `source` names it in error messages."""
    source = _one_line(source)
    if not isinstance(text, str):
        raise SpecError(f"{source}: expected YAML text (got {_got(text)})")
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise SpecError(
                f"{source}: the spec is empty; start with `version: {SCHEMA_VERSION}`, "
                "then name, workload and fault"
            )
        _node_count(node)
        data = loader.construct_document(node)
    except yaml.YAMLError as e:
        raise SpecError(f"{source}: not valid YAML: {_yaml_problem(e)}") from None
    except ValueError as e:
        raise SpecError(f"{source}: {e}") from None
    except RecursionError:
        raise SpecError(f"{source}: the YAML is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return parse_spec(data, source)


def load_spec(path: str | Path) -> DrillSpec:
    """Read and validate a drill spec file; errors name the file by its base name."""
    p = Path(path)
    source = p.name or str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(
            f"{path}: no such file; give the path of a drill spec, e.g. "
            "drills/scenarios/region-loss.yaml"
        ) from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a drill spec file") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{source}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    return loads_spec(text, source)


def parse_spec(data: Any, source: str = "<spec>") -> DrillSpec:
    """Validate an already-loaded spec (a dict, e.g. from YAML or evidence.json)."""
    source = _one_line(source)
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: a drill spec is a mapping of keys (version, name, workload, fault, ...), "
            f"not {_got(data) if data is not None else 'empty'}"
        )
    supported = ", ".join(map(str, SUPPORTED_VERSIONS))
    if "version" not in data:
        raise SpecError(
            f"{source}: version: missing; add `version: {SCHEMA_VERSION}` "
            f"(supported versions: {supported})"
        )
    v = data["version"]
    if isinstance(v, bool) or not isinstance(v, int) or v not in SUPPORTED_VERSIONS:
        raise SpecError(
            f"{source}: version: unsupported schema version {_got(v)}; "
            f"supported versions: {supported}"
        )
    try:
        return DrillSpec.model_validate(data)
    except ValidationError as e:
        problems = [_describe(err) for err in e.errors(include_url=False)]
    except RecursionError:
        problems = ["the spec is nested too deeply"]
    first = f"{source}: {problems[0]}"
    if len(problems) > 1:
        first += f" (+{len(problems) - 1} more)"
    raise SpecError(first, problems)


# --- error messages -------------------------------------------------------------------

_EXAMPLES = {
    "name": "name: region-loss",
    "workload": "workload: {topics: [{name: orders}], groups: [{name: billing}]}",
    "workload.topics": "topics: [{name: orders, partitions: 3}]",
    "workload.topics[].name": "name: orders",
    "workload.groups": "groups: [{name: billing}]",
    "workload.groups[].name": "name: billing",
    "fault": "fault: {kind: region-loss, region: east}",
    "faults[].kind": "kind: region-loss",
    "fault.kind": "kind: region-loss",
}

_TYPE_WORDS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            s = str(seg)
            if not re.match(r"^[A-Za-z0-9_-]+$", s):
                s = repr(s)
            out += f".{s}" if out else s
    return out


def _unwrap(tp: Any) -> Any:
    """The model class (if any) a field annotation holds, through Optional/list/Annotated."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated or origin is list:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(tp) if _unwrap(a) is not None]
            if not models:
                return None
            tp = models[0]
        else:
            break
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = DrillSpec
    for seg in loc:
        if model is None:
            return None
        if isinstance(seg, int):
            continue  # list index: same element model
        field = model.model_fields.get(seg)
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model


def _describe(err: Any) -> str:
    """One pydantic error -> `path: problem (got x); fix`."""
    loc = tuple(err.get("loc", ()))
    typ = err.get("type", "")
    ctx = err.get("ctx") or {}
    value = err.get("input")
    got = f" (got {_got(value)})"

    if typ == "kdrill":
        at = ctx.get("at", "")
        path = _path(loc)
        if at:
            path = path + at if at.startswith("[") or not path else f"{path}.{at}"
        return f"{path}: {ctx.get('msg', '')}" if path else str(ctx.get("msg", ""))

    if typ == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        model = _model_at(parent)
        allowed = list(model.model_fields) if model else []
        hint = ""
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        where = f"{_path(parent)}: " if parent else ""
        return (
            f"{where}unknown key {_got(key)}{hint}; allowed keys: {', '.join(allowed)}"
            if allowed
            else f"{where}unknown key {_got(key)}; remove it"
        )

    path = _path(loc) or "(top level)"
    if typ == "missing":
        pattern = re.sub(r"\[\d+\]", "[]", path)
        ex = _EXAMPLES.get(pattern)
        return f"{path}: missing required key; add it" + (f", e.g. `{ex}`" if ex else "")
    if typ == "invalid_key":
        return f"{_path(loc[:-1]) or '(top level)'}: keys must be strings (got {_got(loc[-1])})"
    if typ in _TYPE_WORDS:
        return f"{path}: {_TYPE_WORDS[typ]}{got}"
    if typ == "literal_error":
        return f"{path}: must be one of {ctx.get('expected')}{got}"
    bounds = {
        "greater_than": ("gt", ">"),
        "greater_than_equal": ("ge", ">="),
        "less_than": ("lt", "<"),
        "less_than_equal": ("le", "<="),
    }
    if typ in bounds:
        k, op = bounds[typ]
        limit = ctx.get(k)
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"{path}: must be {op} {limit}{got}"
    if typ == "too_short":
        n = ctx.get("min_length")
        return f"{path}: needs at least {n} item{'s' if n != 1 else ''}{got}"
    if typ == "too_long":
        return f"{path}: at most {ctx.get('max_length')} items{got}"
    if typ == "string_too_short":
        return f"{path}: must not be empty"
    if typ == "string_too_long":
        return f"{path}: at most {ctx.get('max_length')} characters (got {len(str(value))})"
    return f"{path}: {err.get('msg', 'invalid')}{got}"

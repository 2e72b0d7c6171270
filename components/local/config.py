"""The shape of a local region pair, read from a Pulumi stack file.

`stacks/Pulumi.local.yaml` is an ordinary Pulumi stack config file (namespaced
`kdrill:` keys holding structured values), so the same file a `pulumi config`
command reads also tells the local runtime which regions to build. Validation
happens here, once, before anything is created, by the pydantic models below
(the schema of the file); a bad value is reported as one `LocalEnvError` line
naming the key and the fix. Each constrained field's `description` is the rule
the error message states ("<value> must be <description>").

The runtime reads a `LocalConfig`: the validated sections flattened, plus the
stack's name, the file it came from and the raw mapping (kept in the state
file so another process rebuilds the same pair).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from components.local.errors import LocalEnvError

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO_ROOT / "stacks"

POLICIES = {
    "prefixed": "org.apache.kafka.connect.mirror.DefaultReplicationPolicy",
    "identity": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
}
Policy = Literal["prefixed", "identity"]
assert set(get_args(Policy)) == set(POLICIES)


class _Model(BaseModel):
    """Unknown keys are errors (a typo must not silently fall back to a default);
    keys are camelCase in the file, snake_case in Python."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


def _rule(rule: str, **constraints: Any) -> Any:
    """A field whose values must satisfy `rule`: the text every error on it states."""
    return Field(description=rule, **constraints)


class TopicSpec(_Model):
    name: Annotated[str, Field(strict=True, description="a topic name")]
    partitions: Annotated[int, _rule("an integer from 1 to 1000", strict=True, ge=1, le=1000)] = 1


class RegionSpec(_Model):
    """One region as configured. `index` (1-based, its place in the list) fixes its addresses."""

    name: Annotated[
        str,
        _rule(
            "1-8 lowercase letters/digits starting with a letter",
            strict=True,
            pattern=r"^[a-z][a-z0-9]{0,7}$",
        ),
    ]
    role: Annotated[Literal["primary", "standby"], _rule("'primary' or 'standby'")]
    aws_region: Annotated[str, _rule("an AWS region name such as us-east-1", strict=True)] = (
        "us-east-1"
    )
    brokers: Annotated[int, _rule("an integer from 1 to 5", strict=True, ge=1, le=5)] = 1
    cpu_cores: Annotated[
        float, _rule("a number of cores from 0.1 to 64", strict=True, ge=0.1, le=64)
    ] = 1.0
    buckets: Annotated[
        tuple[Annotated[str, Field(strict=True, min_length=1)], ...],
        _rule("a list of non-empty bucket names"),
    ] = ()

    _index: int = PrivateAttr(default=0)

    @property
    def index(self) -> int:
        return self._index

    def at(self, index: int) -> RegionSpec:
        """This region placed at `index` in the stack's list."""
        placed = self.model_copy()
        placed._index = index
        return placed


class ReplicationSpec(_Model):
    engine: Annotated[
        Literal["mirrormaker2"], _rule("'mirrormaker2' (the only engine the local runtime runs)")
    ] = "mirrormaker2"
    policy: Annotated[Policy, _rule(f"one of: {', '.join(POLICIES)}")] = "prefixed"
    offset_lag_max: Annotated[int, _rule("a positive integer", strict=True, ge=1)] = 100
    interval_seconds: Annotated[int, _rule("a positive integer", strict=True, ge=1)] = 2

    @property
    def policy_class(self) -> str:
        return POLICIES[self.policy]


class LocalSpec(_Model):
    """`kdrill:local`: where the pair lives on this machine."""

    network: Annotated[ipaddress.IPv4Network, _rule("an IPv4 network such as 10.77.0.0/16")] = (
        ipaddress.IPv4Network("10.77.0.0/16")
    )
    name_prefix: Annotated[
        str, _rule("1-4 lowercase letters/digits", strict=True, pattern=r"^[a-z][a-z0-9]{0,3}$")
    ] = "kd"
    inter_region_rtt_ms: Annotated[
        int, _rule("an integer from 0 to 5000 (ms)", strict=True, ge=0, le=5000)
    ] = 70  # the default inter-region round trip on the replication path

    @field_validator("network")
    @classmethod
    def _slash_16(cls, v: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if v.prefixlen != 16:
            raise ValueError("must be a /16 (e.g. 10.77.0.0/16)")
        return v


class SecuritySpec(_Model):
    """`kdrill:security`: authentication and authorization of the pair's clusters
    (components/local/security.py). On by default; `enabled: false` runs PLAINTEXT with no
    authorizer (the pair as it was before issue 16)."""

    enabled: Annotated[bool, _rule("true or false", strict=True)] = True
    tls: Annotated[bool, _rule("true or false", strict=True)] = False
    """SASL_SSL instead of SASL_PLAINTEXT on the CLIENT listener (a CA and broker certificates
    per pair, components/local/security.py `tls_material`); needs `enabled`."""
    groups: Annotated[
        tuple[Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9_.-]{1,64}$")], ...],
        _rule("a list of consumer group names (letters, digits, '_', '.', '-')"),
    ] = ()
    producer_byte_rate: Annotated[
        int, _rule("a positive integer (bytes/s)", strict=True, ge=1024)
    ] = 64 * 1024 * 1024
    consumer_byte_rate: Annotated[
        int, _rule("a positive integer (bytes/s)", strict=True, ge=1024)
    ] = 64 * 1024 * 1024


class StackFile(_Model):
    """The `config:` mapping of a local stack file. Keys outside these are left
    alone: a Pulumi stack file may hold other namespaces' settings."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    pattern: str = Field(
        default="local",
        alias="kdrill:pattern",
        description="'local' (the only pattern the local runtime builds)",
    )
    regions: Annotated[
        tuple[RegionSpec, ...],
        Field(
            alias="kdrill:regions",
            description="a list of exactly two regions (one primary, one standby)",
            min_length=2,
            max_length=2,
        ),
    ]
    topics: Annotated[
        tuple[TopicSpec, ...],
        Field(alias="kdrill:topics", description="a list of topics (name, partitions)"),
    ] = ()
    replication: ReplicationSpec = Field(
        default_factory=ReplicationSpec, alias="kdrill:replication"
    )
    local: LocalSpec = Field(default_factory=LocalSpec, alias="kdrill:local")
    security: SecuritySpec = Field(default_factory=SecuritySpec, alias="kdrill:security")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """An empty YAML section (`kdrill:topics:` with nothing under it) means the defaults."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k == "kdrill:pattern"}
        return data

    @field_validator("pattern")
    @classmethod
    def _local(cls, v: str) -> str:
        if v != "local":
            raise ValueError(f"is {v!r}; the local runtime needs 'local'")
        return v

    @field_validator("regions")
    @classmethod
    def _one_of_each(cls, v: tuple[RegionSpec, ...]) -> tuple[RegionSpec, ...]:
        if {r.role for r in v} != {"primary", "standby"}:
            raise ValueError("needs one region with role primary and one with role standby")
        if v[0].name == v[1].name:
            raise ValueError(f"both regions are named {v[0].name!r}; names must differ")
        return tuple(r.at(i) for i, r in enumerate(v, start=1))


@dataclass(frozen=True)
class LocalConfig:
    """Everything `kdrill local up` needs to build a pair."""

    stack: str
    regions: tuple[RegionSpec, RegionSpec]
    topics: tuple[TopicSpec, ...]
    replication: ReplicationSpec
    network: ipaddress.IPv4Network
    prefix: str = "kd"
    rtt_ms: int = 70  # the default inter-region round trip on the replication path
    security: SecuritySpec = field(default_factory=SecuritySpec)
    source: Path | None = field(default=None, compare=False)
    raw: dict[str, Any] = field(
        default_factory=dict, compare=False
    )  # the `config:` mapping as read

    @property
    def primary(self) -> RegionSpec:
        return next(r for r in self.regions if r.role == "primary")

    @property
    def standby(self) -> RegionSpec:
        return next(r for r in self.regions if r.role == "standby")

    def region(self, name: str) -> RegionSpec:
        for r in self.regions:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.regions)
        raise LocalEnvError(f"unknown region {name!r}; this stack has: {known}")


ENV_STACK_PREFIX = "env-"  # stacks `kdrill env create` makes (components/local/envs.py)


def envs_dir() -> Path:
    """Where ephemeral environments' stack files and records live: the state directory,
    never the repository (read when called, so KDRILL_STATE_DIR set later still counts)."""
    return Path(os.environ.get("KDRILL_STATE_DIR", "/var/tmp/kdrill")) / "envs"


def stack_file(stack: str) -> Path:
    """stacks/Pulumi.<stack>.yaml; an ephemeral env's (`env-<id>`) is in the state directory."""
    tracked = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if stack.startswith(ENV_STACK_PREFIX) and not tracked.exists():
        return envs_dir() / f"Pulumi.{stack}.yaml"
    return tracked


def read_stack(stack: str, path: Path | None = None) -> tuple[str, Path, dict[str, Any]]:
    """(stack name, file, its `config:` mapping) of a stack file, unvalidated: what both the
    local runtime and a drill (telling a local stack from an AWS one) read first.

    `stack` may also be a path to a stack file (anything ending in .yaml), which
    lets tests and experiments use a pair of their own without touching stacks/.
    """
    if path is None and stack.endswith((".yaml", ".yml")):
        path = Path(stack)
        stack = path.name.removeprefix("Pulumi.").rsplit(".", 1)[0]
    path = path or stack_file(stack)
    if not path.exists():
        have = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml")
        )
        raise LocalEnvError(
            f"stack {stack!r} does not exist: no {path}; stacks here: {', '.join(have) or 'none'}"
        )
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise LocalEnvError(
            f"{path}: not valid YAML ({e.__class__.__name__}); fix the file"
        ) from None
    cfg = doc.get("config") if isinstance(doc, dict) else None
    return stack, path, cfg if isinstance(cfg, dict) else {}


def load(stack: str = "local", path: Path | None = None) -> LocalConfig:
    """Read and validate a local stack file (default `stacks/Pulumi.<stack>.yaml`)."""
    stack, path, cfg = read_stack(stack, path)
    return parse(cfg, stack=stack, source=path)


def parse(cfg: dict[str, Any], stack: str = "local", source: Path | None = None) -> LocalConfig:
    """Validate the `config:` mapping of a stack file into a LocalConfig."""
    try:
        f = StackFile.model_validate(cfg)
    except ValidationError as err:
        raise LocalEnvError(f"{source or f'stack {stack}'}: {_first_error(err)}") from None
    return LocalConfig(
        stack=stack,
        regions=(f.regions[0], f.regions[1]),
        topics=f.topics,
        replication=f.replication,
        network=f.local.network,
        prefix=f.local.name_prefix,
        rtt_ms=f.local.inter_region_rtt_ms,
        security=f.security,
        source=source,
        raw=cfg,
    )


# --- one line per error -------------------------------------------------------------


def _first_error(err: ValidationError) -> str:
    """`<key>: <what is wrong and the fix>` for the first problem pydantic found."""
    e = err.errors()[0]
    loc = e["loc"]
    key = _key(loc)
    model, info = _field_at(loc)
    keys = ", ".join(_aliases(model))
    if e["type"] == "value_error":  # our own validators: the message is the whole story
        why = str(e["ctx"]["error"])
    elif e["type"] == "extra_forbidden":
        why = f"unknown key; allowed: {keys}"
    elif e["type"] in ("model_type", "model_attributes_type"):
        why = f"must be a mapping with {keys}"
    elif e["type"] == "missing":
        why = f"missing; set it to {info.description}" if info and info.description else "missing"
    else:
        rule = info.description if info and info.description else e["msg"].lower()
        value = e["input"]
        scalar = value is None or isinstance(value, str | int | float | bool)
        why = f"{value!r} must be {rule}" if scalar else f"must be {rule}"
    return f"{key}: {why}" if key else why


def _key(loc: tuple[int | str, ...]) -> str:
    """("kdrill:regions", 0, "brokers") -> "kdrill:regions[0].brokers"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _field_at(loc: tuple[int | str, ...]) -> tuple[type[BaseModel], FieldInfo | None]:
    """The model a location points into and the field it names (None for an unknown key)."""
    model: type[BaseModel] = StackFile
    info: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            continue
        info = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if info is None:
            break
        inner = _model_in(info.annotation)
        if inner is None:
            break
        model = inner
    return model, info


def _model_in(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in get_args(tp):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]

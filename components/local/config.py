"""The shape of a local region pair, read from a Pulumi stack file.

`stacks/Pulumi.local.yaml` is an ordinary Pulumi stack config file (namespaced
`kdrill:` keys holding structured values), so the same file a `pulumi config`
command reads also tells the local runtime which regions to build. Validation
happens here, once, before anything is created: a bad value is reported as one
line naming the key and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.local.errors import LocalEnvError

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO_ROOT / "stacks"

POLICIES = {
    "prefixed": "org.apache.kafka.connect.mirror.DefaultReplicationPolicy",
    "identity": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
}

_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,3}$")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1


@dataclass(frozen=True)
class RegionSpec:
    """One region as configured. `index` (1-based) fixes its addresses."""

    name: str
    role: str  # "primary" or "standby"
    index: int
    aws_region: str
    brokers: int = 1
    cpu_cores: float = 1.0
    buckets: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplicationSpec:
    engine: str = "mirrormaker2"
    policy: str = "prefixed"
    offset_lag_max: int = 100
    interval_seconds: int = 2

    @property
    def policy_class(self) -> str:
        return POLICIES[self.policy]


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


def stack_file(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def load(stack: str = "local", path: Path | None = None) -> LocalConfig:
    """Read and validate a local stack file (default `stacks/Pulumi.<stack>.yaml`).

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
    return parse(doc.get("config") or {}, stack=stack, source=path)


def parse(cfg: dict[str, Any], stack: str = "local", source: Path | None = None) -> LocalConfig:
    """Validate the `config:` mapping of a stack file into a LocalConfig."""
    where = str(source or f"stack {stack}")

    def bad(key: str, why: str) -> LocalEnvError:
        return LocalEnvError(f"{where}: {key}: {why}")

    if cfg.get("kdrill:pattern", "local") != "local":
        raise bad(
            "kdrill:pattern", f"is {cfg['kdrill:pattern']!r}; the local runtime needs 'local'"
        )

    raw_regions = cfg.get("kdrill:regions")
    if not isinstance(raw_regions, list) or len(raw_regions) != 2:
        raise bad("kdrill:regions", "must list exactly two regions (one primary, one standby)")
    regions = []
    for i, r in enumerate(raw_regions, start=1):
        key = f"kdrill:regions[{i - 1}]"
        if not isinstance(r, dict):
            raise bad(key, "must be a mapping with name, role, awsRegion, brokers, cpuCores")
        unknown = set(r) - {"name", "role", "awsRegion", "brokers", "cpuCores", "buckets"}
        if unknown:
            raise bad(
                f"{key}.{sorted(unknown)[0]}",
                "unknown key; allowed: name, role, awsRegion, brokers, cpuCores, buckets",
            )
        name = r.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise bad(
                f"{key}.name",
                f"{name!r} must be 1-8 lowercase letters/digits starting with a letter",
            )
        role = r.get("role")
        if role not in ("primary", "standby"):
            raise bad(f"{key}.role", f"{role!r} must be 'primary' or 'standby'")
        brokers = r.get("brokers", 1)
        if not isinstance(brokers, int) or isinstance(brokers, bool) or not 1 <= brokers <= 5:
            raise bad(f"{key}.brokers", f"{brokers!r} must be an integer from 1 to 5")
        cpu = r.get("cpuCores", 1.0)
        if not isinstance(cpu, int | float) or isinstance(cpu, bool) or not 0.1 <= cpu <= 64:
            raise bad(f"{key}.cpuCores", f"{cpu!r} must be a number of cores from 0.1 to 64")
        buckets = r.get("buckets", [])
        if not isinstance(buckets, list) or not all(isinstance(b, str) and b for b in buckets):
            raise bad(f"{key}.buckets", "must be a list of bucket names")
        regions.append(
            RegionSpec(
                name=name,
                role=role,
                index=i,
                aws_region=str(r.get("awsRegion", "us-east-1")),
                brokers=brokers,
                cpu_cores=float(cpu),
                buckets=tuple(buckets),
            )
        )
    if {r.role for r in regions} != {"primary", "standby"}:
        raise bad("kdrill:regions", "needs one region with role primary and one with role standby")
    if regions[0].name == regions[1].name:
        raise bad(
            "kdrill:regions", f"both regions are named {regions[0].name!r}; names must differ"
        )

    topics = []
    for j, t in enumerate(cfg.get("kdrill:topics") or []):
        key = f"kdrill:topics[{j}]"
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise bad(key, "must be a mapping with a name and partitions")
        parts = t.get("partitions", 1)
        if not isinstance(parts, int) or isinstance(parts, bool) or not 1 <= parts <= 1000:
            raise bad(f"{key}.partitions", f"{parts!r} must be an integer from 1 to 1000")
        topics.append(TopicSpec(name=t["name"], partitions=parts))

    rep = cfg.get("kdrill:replication") or {}
    policy = rep.get("policy", "prefixed")
    if policy not in POLICIES:
        raise bad("kdrill:replication.policy", f"{policy!r} must be one of: {', '.join(POLICIES)}")
    engine = rep.get("engine", "mirrormaker2")
    if engine != "mirrormaker2":
        raise bad(
            "kdrill:replication.engine", f"{engine!r}: the local runtime runs 'mirrormaker2' only"
        )
    lag_max = rep.get("offsetLagMax", 100)
    interval = rep.get("intervalSeconds", 2)
    for k, v in (("offsetLagMax", lag_max), ("intervalSeconds", interval)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise bad(f"kdrill:replication.{k}", f"{v!r} must be a positive integer")

    local = cfg.get("kdrill:local") or {}
    try:
        network = ipaddress.IPv4Network(local.get("network", "10.77.0.0/16"))
    except ValueError:
        raise bad(
            "kdrill:local.network", f"{local.get('network')!r} is not an IPv4 network"
        ) from None
    if network.prefixlen != 16:
        raise bad("kdrill:local.network", "must be a /16 (e.g. 10.77.0.0/16)")
    prefix = local.get("namePrefix", "kd")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise bad("kdrill:local.namePrefix", f"{prefix!r} must be 1-4 lowercase letters/digits")

    rtt = local.get("interRegionRttMs", 70)
    if not isinstance(rtt, int) or isinstance(rtt, bool) or not 0 <= rtt <= 5000:
        raise bad(
            "kdrill:local.interRegionRttMs", f"{rtt!r} must be an integer from 0 to 5000 (ms)"
        )

    return LocalConfig(
        stack=stack,
        rtt_ms=rtt,
        regions=(regions[0], regions[1]),
        topics=tuple(topics),
        replication=ReplicationSpec(engine, policy, lag_max, interval),
        network=network,
        prefix=prefix,
        source=source,
        raw=cfg,
    )

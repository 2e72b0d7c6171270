"""Fault specs: what a fault is, validated before anything is touched.

In the manner of Trogdor's fault specs, a fault is a small serializable value
(kind, target, parameters, optional duration). `validate` checks it against
the catalogue below and the pair's config and raises one line naming the bad
field and the fix; nothing is applied until a spec has passed it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from components.local.config import LocalConfig
from components.local.errors import LocalEnvError

LINKS = ("client", "backbone")


class FaultError(LocalEnvError):
    """A fault spec that cannot be applied (unknown kind, target, parameter, value)."""


@dataclass(frozen=True)
class Param:
    type: type
    low: float | None = None
    high: float | None = None
    default: Any = None  # None: required
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    region: str  # "required", "none", or "primary" / "standby" (default when omitted)
    link: bool = False  # takes --link client|backbone
    params: dict[str, Param] = field(default_factory=dict)


CATALOGUE: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("region-loss", "the region's links down and all its processes killed", "required"),
        Kind(
            "partition",
            "the replication path (backbone) cut; both regions stay up for clients",
            "none",
        ),
        Kind(
            "packet-loss",
            "random drop of a percentage of packets on a region's link (nftables numgen)",
            "primary",
            link=True,
            params={
                "percent": Param(float, 0.1, 100, help="share of packets dropped, each direction")
            },
        ),
        Kind(
            "bandwidth",
            "a token-bucket rate limit on a region's link, egress (tc tbf)",
            "primary",
            link=True,
            params={
                "mbit": Param(float, 0.01, 10_000, help="rate in Mbit/s"),
                "burst_kb": Param(int, 2, 100_000, default=32, help="bucket size in KiB"),
            },
        ),
        Kind(
            "latency",
            "the round trip on the replication path, set through toxiproxy (replaces the default)",
            "none",
            params={
                "ms": Param(float, 0, 60_000, help="round trip in ms"),
                "jitter_ms": Param(float, 0, 60_000, default=0, help="jitter in ms"),
            },
        ),
        Kind(
            "blackhole",
            "silently drop clients' packets to a region endpoint (a blocked private endpoint)",
            "required",
            params={"endpoint": Param(str, default="kafka", choices=("kafka", "s3"))},
        ),
        Kind(
            "broker-kill",
            "SIGKILL one broker; clearing restarts it on its data",
            "required",
            params={"broker": Param(int, 0, 4, default=0, help="node id")},
        ),
        Kind(
            "broker-pause",
            "SIGSTOP one broker; clearing sends SIGCONT",
            "required",
            params={"broker": Param(int, 0, 4, default=0, help="node id")},
        ),
        Kind("replication-pause", "SIGSTOP MirrorMaker 2; clearing sends SIGCONT", "none"),
        Kind("replication-stop", "stop MirrorMaker 2; clearing starts it again", "none"),
        Kind(
            "cpu-squeeze",
            "lower a region's CPU quota (cgroup cpu.cfs_quota_us)",
            "required",
            params={"cores": Param(float, 0.01, 64, help="new quota in cores")},
        ),
    ]
}


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


def validate(spec: FaultSpec, cfg: LocalConfig) -> FaultSpec:
    """Check `spec` against the catalogue and the pair; return it with defaults filled in."""
    kind = CATALOGUE.get(spec.kind)
    if kind is None:
        raise FaultError(f"unknown fault kind {spec.kind!r}; kinds: {', '.join(CATALOGUE)}")

    region = spec.region
    if kind.region == "none" and region is not None:
        raise FaultError(f"{kind.name} takes no --region (it acts between the regions)")
    if kind.region == "required" and region is None:
        raise FaultError(f"{kind.name} needs --region ({' or '.join(r.name for r in cfg.regions)})")
    if kind.region in ("primary", "standby") and region is None:
        region = getattr(cfg, kind.region).name
    if region is not None:
        try:
            cfg.region(region)
        except LocalEnvError as e:  # unknown region, naming the known ones
            raise FaultError(str(e)) from None

    link = spec.link
    if kind.link:
        link = link or "backbone"
        if link not in LINKS:
            raise FaultError(f"unknown link {link!r}; links: {', '.join(LINKS)}")
    elif link is not None:
        raise FaultError(f"{kind.name} takes no --link")

    params: dict[str, Any] = {}
    for name in spec.params:
        if name not in kind.params:
            allowed = ", ".join(kind.params) or "none"
            raise FaultError(f"{kind.name} has no parameter {name!r}; parameters: {allowed}")
    for name, p in kind.params.items():
        raw = spec.params.get(name, p.default)
        if raw is None:
            raise FaultError(f"{kind.name} needs --param {name}=<{p.type.__name__}> ({p.help})")
        try:
            value = p.type(raw)
        except (TypeError, ValueError):
            raise FaultError(f"{kind.name}: {name}={raw!r} is not a {p.type.__name__}") from None
        if p.choices and value not in p.choices:
            raise FaultError(
                f"{kind.name}: {name}={value!r} must be one of: {', '.join(p.choices)}"
            )
        if p.low is not None and not p.low <= value <= p.high:
            raise FaultError(f"{kind.name}: {name}={raw} is out of range {p.low:g}..{p.high:g}")
        params[name] = value
    if kind.name == "broker-kill" or kind.name == "broker-pause":
        n = cfg.region(region).brokers  # type: ignore[arg-type]
        if params["broker"] >= n:
            raise FaultError(
                f"{kind.name}: region {region} has brokers 0..{n - 1}, not {params['broker']}"
            )

    if spec.duration_s is not None and not 0 < spec.duration_s <= 86_400:
        raise FaultError(f"duration {spec.duration_s} s is out of range (0, 86400]")
    return FaultSpec(kind.name, region, link, params, spec.duration_s)


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`["percent=30", "x=y"]` -> dict; a malformed pair is one clear error."""
    out = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise FaultError(f"--param {item!r}: write it as name=value, e.g. percent=30")
        out[name] = value
    return out

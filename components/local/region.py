"""A region of the local pair as clients and drills see it: its namespace, cgroup,
addresses and brokers, all derived from the stack config (nothing here runs).

The primary's brokers advertise their REPLICATION listener through toxiproxy in
the standby (one proxy port per broker), so what MirrorMaker 2 reads crosses the
latency proxy; see components/local/toxiproxy.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.local import kafka, network, objectstore, toxiproxy
from components.local.config import LocalConfig, RegionSpec


@dataclass(frozen=True)
class Region:
    """A running region as clients and drills see it."""

    spec: RegionSpec
    namespace: str
    cgroup: str
    client_ip: str
    backbone_ip: str
    brokers: tuple[kafka.Broker, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def bootstrap(self) -> str:
        """Client bootstrap servers (the CLIENT listeners, reached over the client link)."""
        return ",".join(b.client_address for b in self.brokers)

    @property
    def replication_bootstrap(self) -> str:
        """Where the other region reads this one: the REPLICATION listeners as
        advertised (for the primary, through toxiproxy in the standby)."""
        return ",".join(b.replication_advertised for b in self.brokers)

    @property
    def s3_endpoint(self) -> str:
        return objectstore.endpoint(self.client_ip)


def regions(cfg: LocalConfig) -> tuple[Region, Region]:
    """Both regions of `cfg`, in the stack file's order."""
    first, second = (region(cfg, spec) for spec in cfg.regions)
    return first, second


def region(cfg: LocalConfig, spec: RegionSpec) -> Region:
    a = network.addresses(cfg, spec)
    standby_backbone = network.addresses(cfg, cfg.standby).backbone_ip
    brokers = tuple(
        kafka.Broker(
            spec.name,
            i,
            a.client_ip,
            a.backbone_ip,
            spec.brokers,
            f"{standby_backbone}:{toxiproxy.PROXY_PORT + i}" if spec.role == "primary" else None,
        )
        for i in range(spec.brokers)
    )
    return Region(spec, a.namespace, a.namespace, a.client_ip, a.backbone_ip, brokers)

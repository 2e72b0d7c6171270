"""What `kdrill local status` reports: per region, what runs and what it holds.

Gathering never fails: what cannot be reached (a region down, a fault applied)
is reported in the region's `error`, and the rest is still filled in. The
dataclasses are the JSON `status --json` prints (`dataclasses.asdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.local import cgroups, kafka, objectstore, processes
from components.local.region import Region
from components.local.state import ProcessRegistry


@dataclass
class RegionStatus:
    name: str
    role: str
    namespace: str
    bootstrap: str
    s3_endpoint: str
    cpu_cores: float | None
    brokers_expected: int
    brokers_registered: int
    processes: dict[str, bool] = field(default_factory=dict)  # label -> alive
    topics: dict[str, dict[int, int]] = field(
        default_factory=dict
    )  # topic -> partition -> end offset
    groups: list[str] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PairStatus:
    up: bool
    stack: str
    policy: str
    regions: list[RegionStatus]


def gather(regions: tuple[Region, ...], registry: ProcessRegistry, up: bool) -> PairStatus:
    """Status of every region, processes as the state file records them now."""
    registry.sync()
    return PairStatus(
        up, registry.cfg.stack, registry.policy, [region_status(r, registry) for r in regions]
    )


def region_status(r: Region, registry: ProcessRegistry) -> RegionStatus:
    st = RegionStatus(
        name=r.name,
        role=r.role,
        namespace=r.namespace,
        bootstrap=r.bootstrap,
        s3_endpoint=r.s3_endpoint,
        cpu_cores=cgroups.quota_cores(r.cgroup) if cgroups.exists(r.cgroup) else None,
        brokers_expected=len(r.brokers),
        brokers_registered=0,
        processes={p.label: processes.alive(p.pid) for p in registry.procs if p.region == r.name},
    )
    try:
        inv = kafka.inventory(r.bootstrap, timeout=3)
        st.brokers_registered, st.topics, st.groups = (
            inv["brokers"],
            inv["end_offsets"],
            inv["groups"],
        )
        st.buckets = objectstore.list_buckets(r.s3_endpoint, r.spec.aws_region)
    except Exception as e:  # status reports what it cannot reach; it never fails
        st.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return st

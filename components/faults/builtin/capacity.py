"""Capacity faults on the local pair: a region's CPU quota lowered (its cgroup)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from components.faults.params import Params
from components.faults.registry import FaultKind, Local, Placed, register
from components.local import cgroups

if TYPE_CHECKING:
    from components.local.env import LocalPair


class CpuSqueezeParams(Params):
    cores: float = Field(ge=0.01, le=64, description="new quota in cores")


def _squeeze(pair: LocalPair, f: Placed) -> None:
    cgroups.set_quota(pair.region(f.spec.region).cgroup, f.spec.params["cores"])


def _restore(pair: LocalPair, f: Placed) -> None:
    r = pair.region(f.spec.region)  # back to the quota the stack's config gives the region
    if cgroups.exists(r.cgroup):
        cgroups.set_quota(r.cgroup, r.spec.cpu_cores)


def quota_now(pair: LocalPair, region: str) -> float | None:
    r = pair.region(region)
    return cgroups.quota_cores(r.cgroup) if cgroups.exists(r.cgroup) else None


def same_quota(a: float | None, b: float | None) -> bool:
    """Quotas are written in whole microseconds per 100 ms period."""
    if a is None or b is None:
        return a is b
    return int(a * cgroups.PERIOD_US) == int(b * cgroups.PERIOD_US)


def _squeezed(pair: LocalPair, f: Placed) -> bool:
    return same_quota(quota_now(pair, f.spec.region), f.spec.params["cores"])


register(
    FaultKind(
        "cpu-squeeze",
        "lower a region's CPU quota (cgroup cpu.cfs_quota_us)",
        params=CpuSqueezeParams,
        local=Local(
            act=_squeeze,
            clear=_restore,
            present=_squeezed,
            observe=lambda pair, f: {"cores": quota_now(pair, f.spec.region)},
        ),
    )
)

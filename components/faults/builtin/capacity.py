"""Capacity faults on the local pair: a region's CPU quota lowered (its cgroup)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from components.faults.params import Params
from components.faults.registry import FaultKind, Local, register
from components.local import cgroups

if TYPE_CHECKING:
    from components.faults.spec import FaultSpec
    from components.local.env import LocalPair
    from components.local.faults.ledger import Entry


class CpuSqueezeParams(Params):
    cores: float = Field(ge=0.01, le=64, description="new quota in cores")


def _quota_before(pair: LocalPair, f: FaultSpec) -> dict[str, Any]:
    r = pair.region(f.region)
    return {"cgroup": r.cgroup, "restore_cores": r.spec.cpu_cores}


def _squeeze(pair: LocalPair, e: Entry) -> None:
    cgroups.set_quota(e.undo["cgroup"], e.fault.params["cores"])


def _restore(pair: LocalPair, e: Entry) -> None:
    group = e.undo.get("cgroup")
    if group and cgroups.exists(group):
        cgroups.set_quota(group, e.undo["restore_cores"])


register(
    FaultKind(
        "cpu-squeeze",
        "lower a region's CPU quota (cgroup cpu.cfs_quota_us)",
        params=CpuSqueezeParams,
        local=Local(
            plan=_quota_before,
            act=_squeeze,
            clear=_restore,
            observe=lambda pair, e: {"cores": cgroups.quota_cores(e.undo["cgroup"])},
        ),
    )
)

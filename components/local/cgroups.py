"""A CPU quota per region (cgroup v1 `cpu` controller).

Every process a region runs (brokers, its S3 endpoint, MirrorMaker 2 in the
standby) joins the region's cgroup before it execs, so a standby configured
with half a core really has half a core: an undersized standby is a real
condition a drill can measure, not a label.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from components.local.errors import LocalEnvError

CPU_ROOT = Path(os.environ.get("KDRILL_CGROUP_CPU_ROOT", "/sys/fs/cgroup/cpu"))
PERIOD_US = 100_000


def path(group: str) -> Path:
    return CPU_ROOT / "kdrill" / group


def create(group: str, cores: float) -> Path:
    if not (CPU_ROOT / "cpu.cfs_quota_us").exists():
        raise LocalEnvError(
            f"no cgroup v1 cpu controller at {CPU_ROOT}; mount it or set KDRILL_CGROUP_CPU_ROOT"
        )
    p = path(group)
    p.mkdir(parents=True, exist_ok=True)
    set_quota(group, cores)
    return p


def set_quota(group: str, cores: float) -> None:
    p = path(group)
    (p / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (p / "cpu.cfs_quota_us").write_text(str(int(cores * PERIOD_US)))


def quota_cores(group: str) -> float | None:
    """The quota in cores, or None when unlimited."""
    q = int((path(group) / "cpu.cfs_quota_us").read_text())
    period = int((path(group) / "cpu.cfs_period_us").read_text())
    return None if q < 0 else q / period


def procs(group: str) -> list[int]:
    f = path(group) / "cgroup.procs"
    return [int(x) for x in f.read_text().split()] if f.exists() else []


def exec_in(group: str, argv: list[str]) -> list[str]:
    """`argv` run by a shell that first moves itself into the group, then execs it (same pid).

    Not a preexec_fn: that makes Python fork() instead of vfork(), and in a process that
    runs gRPC (Pulumi's dynamic provider) fork() runs gRPC's atfork handlers in the child,
    which then dies before it execs ("epoll_wait error: Bad file descriptor")."""
    procs_file = str(path(group) / "cgroup.procs")
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs_file, *argv]


def remove(group: str) -> bool:
    """Remove the group (it must be empty); True if it existed."""
    p = path(group)
    if not p.exists():
        return False
    p.rmdir()
    with contextlib.suppress(OSError):
        p.parent.rmdir()  # the shared kdrill/ parent, once no pair uses it
    return True


def exists(group: str) -> bool:
    return path(group).exists()

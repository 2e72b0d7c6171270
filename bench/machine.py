"""What a bench figure ran on, in one line: every bench script prints it beside its figures.

Figures on a 2-core machine move with the load other work puts on it, so the line carries the
load average (1, 5, 15 min) at the moment it is taken; scripts print it at start and at end.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def _first(path: str, prefix: str) -> str | None:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith(prefix)), None)


def machine() -> str:
    """Cores, CPU model, memory, kernel, load average now, UTC time."""
    model = _first("/proc/cpuinfo", "model name") or platform.machine()
    mem_kib = _first("/proc/meminfo", "MemTotal")
    memory = f"{int(mem_kib.split()[0]) / 2**20:.1f} GiB memory, " if mem_kib else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"{os.cpu_count()} cores ({model}), {memory}{platform.system()} {platform.release()}, "
        f"load average {load}, {when}"
    )

"""Where a local env goes, and whether the machine can take it.

A local env (components/local/envs.py) needs a name prefix and a /16 no other pair on this
machine uses: prefixes `e0`..`e9`, `ea`..`ez`, networks 10.100.0.0/16 upward, skipping
network namespaces' prefixes, /var/tmp/kdrill/<prefix> state dirs, the prefixes and
networks of stacks/ and of other envs, networks recorded in pairs' state files and any 10.x
address on the root namespace. The caller holds the envs' allocation lock.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import string
import subprocess
from pathlib import Path
from typing import Any

import yaml

from components.local import config, network
from components.local.errors import LocalEnvError

PREFIXES = [f"e{c}" for c in string.digits + string.ascii_lowercase]
FIRST_NET, LAST_NET = 100, 199  # 10.100.0.0/16 .. 10.199.0.0/16

# What one local pair needs, measured (2026-12-01, default local stack, 1 broker per region):
# RSS of its processes 1.2 GiB (two brokers ~300 MiB each, MirrorMaker 2 ~430 MiB, two moto
# ~76 MiB, toxiproxy 13 MiB); MemAvailable dropped by 1.9 GiB with page cache. Required free:
# MIB_PER_BROKER per broker plus MIB_BASE (3 GiB for the default stack).
MIB_PER_BROKER = 1024
MIB_BASE = 1024
MAX_LOAD_PER_CORE = 8.0  # 1-minute load average per core above which no env is started


def in_use(
    root: Path, envs_dir: Path, records: list[Any]
) -> tuple[set[str], set[ipaddress.IPv4Network]]:
    """Prefixes and /16 networks taken on this machine (see the module docstring)."""
    prefixes: set[str] = set()
    nets: set[ipaddress.IPv4Network] = set()
    for ns in network.namespaces():
        prefixes.add(ns.split("-", 1)[0])
    if root.exists():
        for d in root.iterdir():
            if d.is_dir() and d.name != "envs":
                prefixes.add(d.name)
                state = d / "state.json"
                with contextlib.suppress(Exception):
                    raw = json.loads(state.read_text()).get("config") or {}
                    nets.add(ipaddress.IPv4Network(raw["kdrill:local"]["network"]))
    for f in [*config.STACKS_DIR.glob("Pulumi.*.yaml"), *envs_dir.glob("Pulumi.*.yaml")]:
        with contextlib.suppress(Exception):
            loc = (yaml.safe_load(f.read_text())["config"] or {}).get("kdrill:local") or {}
            prefixes.add(str(loc.get("namePrefix", "kd")))
            nets.add(ipaddress.IPv4Network(loc.get("network", "10.77.0.0/16")))
    for rec in records:
        if rec.prefix:
            prefixes.add(rec.prefix)
        if rec.network:
            nets.add(ipaddress.IPv4Network(rec.network))
    nets |= _root_networks()
    return prefixes, nets


def allocate(root: Path, envs_dir: Path, records: list[Any]) -> tuple[str, ipaddress.IPv4Network]:
    prefixes, nets = in_use(root, envs_dir, records)
    prefix = next((p for p in PREFIXES if p not in prefixes), None)
    net = next(
        (
            n
            for i in range(FIRST_NET, LAST_NET + 1)
            if (n := ipaddress.IPv4Network(f"10.{i}.0.0/16")) not in nets
        ),
        None,
    )
    if prefix is None or net is None:
        raise LocalEnvError(
            "no free env prefix (e0-ez) or network (10.100-10.199.0.0/16) left: "
            "`kdrill env list`, then `kdrill env destroy NAME` or `kdrill env reap`"
        )
    return prefix, net


def _root_networks() -> set[ipaddress.IPv4Network]:
    """/16s of the 10/8 addresses on the root namespace's interfaces (pairs' client links)."""
    try:
        text = subprocess.run(
            ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    nets = set()
    for m in re.finditer(r"inet (10\.\d+)\.\d+\.\d+/", text):
        nets.add(ipaddress.IPv4Network(f"{m.group(1)}.0.0/16"))
    return nets


def meminfo_available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def capacity_problem(
    brokers: int, available_mib: int | None = None, load1: float | None = None, cores: int = 0
) -> str | None:
    """Why the machine cannot take another pair of `brokers` brokers, or None. Thresholds:
    MemAvailable >= MIB_PER_BROKER x brokers + MIB_BASE; 1-minute load per core <=
    MAX_LOAD_PER_CORE. KDRILL_ENV_MIN_FREE_MIB / KDRILL_ENV_MAX_LOAD_PER_CORE override them."""
    available_mib = meminfo_available_mib() if available_mib is None else available_mib
    load1 = os.getloadavg()[0] if load1 is None else load1
    cores = cores or os.cpu_count() or 1
    need = int(os.environ.get("KDRILL_ENV_MIN_FREE_MIB", MIB_PER_BROKER * brokers + MIB_BASE))
    max_load = float(os.environ.get("KDRILL_ENV_MAX_LOAD_PER_CORE", MAX_LOAD_PER_CORE))
    if available_mib < need:
        return (
            f"{available_mib} MiB of memory available, a pair of {brokers} brokers needs "
            f"{need} MiB; destroy an env (`kdrill env list`) or free memory"
        )
    if load1 / cores > max_load:
        return (
            f"load average {load1:.1f} on {cores} cores is over {max_load:g} per core; "
            "wait for the machine to quieten or destroy an env"
        )
    return None

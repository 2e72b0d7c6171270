"""Kernel-level levers for faults: nftables tables and tc qdiscs inside a region's
namespace, root-side links, process states.

Each fault that drops packets gets an nftables table of its own, named after
its key (`inet kdrill_s7` for the stack's fault `s7`, `inet kdrill_direct_...` for a
drill's fence), so clearing it is deleting that one table: idempotent, and it cannot
disturb another fault's rules or the byte counters (`kdrill_counters`). The names are
the record: what is applied is read back from the tables that exist.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from components.local.errors import LocalEnvError


def _run(
    ns: str, argv: list[str], stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], input=stdin, capture_output=True, text=True
    )
    if check and p.returncode != 0:
        raise LocalEnvError(
            f"{argv[0]} in {ns} failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}"
        )
    return p


TABLE_PREFIX = "kdrill_"
COUNTERS_TABLE = "kdrill_counters"


def table_name(key: str) -> str:
    """The nftables table of the fault with this key (characters nft does not take in a
    name become `_`)."""
    return TABLE_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", key)


def fault_tables(ns: str) -> list[str]:
    """The fault tables in a namespace: kdrill-named, other than the byte counters."""
    return [t for t in tables(ns) if t.startswith(TABLE_PREFIX) and t != COUNTERS_TABLE]


def delete_table_named(ns: str, name: str) -> bool:
    return _run(ns, ["nft", "delete", "table", "inet", name], check=False).returncode == 0


def add_marker_table(ns: str, key: str) -> None:
    """An empty table named for the fault: it drops nothing, it says the fault is held."""
    _run(ns, ["nft", "add", "table", "inet", table_name(key)])


def add_drop_table(ns: str, key: str, input_rules: list[str], output_rules: list[str]) -> None:
    """One table with an input and an output chain; each rule should end in `counter drop`."""

    def chain(hook: str, rules: list[str]) -> str:
        body = "".join(f"    {r}\n" for r in rules)
        return f"  chain {hook} {{\n    type filter hook {hook} priority -10; policy accept;\n{body}  }}\n"

    name = table_name(key)
    # add + delete first: one atomic transaction that replaces a table a half-done apply left
    script = (
        f"add table inet {name}\ndelete table inet {name}\n"
        f"table inet {name} {{\n{chain('input', input_rules)}{chain('output', output_rules)}}}\n"
    )
    _run(ns, ["nft", "-f", "-"], stdin=script)


def delete_table(ns: str, key: str) -> bool:
    """Delete the fault's table; False when it was not there (already cleared)."""
    return delete_table_named(ns, table_name(key))


def tables(ns: str) -> list[str]:
    out = _run(ns, ["nft", "-j", "list", "tables"], check=False).stdout
    if not out:
        return []
    return [x["table"]["name"] for x in json.loads(out)["nftables"] if "table" in x]


def dropped(ns: str, key: str) -> dict[str, int]:
    """Packets and bytes the fault's rules dropped so far."""
    out = _run(ns, ["nft", "-j", "list", "table", "inet", table_name(key)], check=False).stdout
    packets = bytes_ = 0
    for item in json.loads(out)["nftables"] if out else []:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                packets += expr["counter"]["packets"]
                bytes_ += expr["counter"]["bytes"]
    return {"packets": packets, "bytes": bytes_}


def set_tbf(ns: str, dev: str, mbit: float, burst_kb: int) -> None:
    _run(
        ns,
        ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", f"{mbit}mbit", "burst", f"{burst_kb}kb",
         "latency", "400ms"],
    )  # fmt: skip


def clear_qdisc(ns: str, dev: str) -> None:
    _run(ns, ["tc", "qdisc", "del", "dev", dev, "root"], check=False)


def qdisc(ns: str, dev: str) -> str:
    return _run(ns, ["tc", "qdisc", "show", "dev", dev], check=False).stdout.strip()


def link_set(dev: str, up: bool) -> None:
    """Set a root-namespace interface (a region's veth end) up or down."""
    p = subprocess.run(
        ["ip", "link", "set", dev, "up" if up else "down"], capture_output=True, text=True
    )
    if p.returncode != 0 and up:
        raise LocalEnvError(f"could not bring {dev} up: {p.stderr.strip()}")


def link_is_up(dev: str) -> bool:
    p = subprocess.run(["ip", "-o", "link", "show", dev], capture_output=True, text=True)
    return p.returncode == 0 and "state DOWN" not in p.stdout and ",UP" in p.stdout


def process_state(pid: int) -> str | None:
    """The state letter of a process (R, S, T for stopped, Z...), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return None

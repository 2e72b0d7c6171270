"""Kernel-level levers for faults: nftables tables and tc qdiscs inside a region's
namespace, root-side links, process states.

Each fault that drops packets gets an nftables table of its own, named after
its ledger id (`inet kdrill_f7`), so clearing it is deleting that one table:
idempotent, and it cannot disturb another fault's rules or the byte counters.
"""

from __future__ import annotations

import json
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


def table_name(fault_id: str) -> str:
    return f"kdrill_{fault_id}"


def add_drop_table(ns: str, fault_id: str, input_rules: list[str], output_rules: list[str]) -> None:
    """One table with an input and an output chain; each rule should end in `counter drop`."""

    def chain(hook: str, rules: list[str]) -> str:
        body = "".join(f"    {r}\n" for r in rules)
        return f"  chain {hook} {{\n    type filter hook {hook} priority -10; policy accept;\n{body}  }}\n"

    script = f"table inet {table_name(fault_id)} {{\n{chain('input', input_rules)}{chain('output', output_rules)}}}\n"
    _run(ns, ["nft", "-f", "-"], stdin=script)


def delete_table(ns: str, fault_id: str) -> bool:
    """Delete the fault's table; False when it was not there (already cleared)."""
    return (
        _run(ns, ["nft", "delete", "table", "inet", table_name(fault_id)], check=False).returncode
        == 0
    )


def tables(ns: str) -> list[str]:
    out = _run(ns, ["nft", "-j", "list", "tables"], check=False).stdout
    if not out:
        return []
    return [x["table"]["name"] for x in json.loads(out)["nftables"] if "table" in x]


def dropped(ns: str, fault_id: str) -> dict[str, int]:
    """Packets and bytes the fault's rules dropped so far."""
    out = _run(ns, ["nft", "-j", "list", "table", "inet", table_name(fault_id)], check=False).stdout
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

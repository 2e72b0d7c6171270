"""Regions as Linux network namespaces, and the two kinds of link between them.

Each region gets its own namespace (`<prefix>-<region>`) with two links:

- the *client link*: a point-to-point veth to the root namespace, where the
  drill runner and its clients live. Region i is 10.N.i.2, the root side
  10.N.i.1. A region has no route to the other region's client subnet, so
  nothing crosses between regions on this link.
- the *backbone link*: a veth into a bridge (`<prefix>-bb`) in the root
  namespace that joins the regions and nothing else (the root namespace has no
  address on it). Region i is 10.N.100.(10+i). Replication (MirrorMaker 2 in
  the standby reading the primary's REPLICATION listener) takes this path.

So "clients' access to a region" and "the path replication takes between the
regions" are separate links: a fault can cut or slow one and leave the other.
Inside the namespace the links are named `client` and `backbone`.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass

from components.local.config import LocalConfig, RegionSpec
from components.local.errors import LocalEnvError

BACKBONE_OCTET = 100


@dataclass(frozen=True)
class RegionAddresses:
    namespace: str
    client_ip: str  # the region's address on its client link
    client_host_ip: str  # the root namespace's end of that link
    backbone_ip: str  # the region's address on the backbone
    client_link: str  # root-side interface name of the client veth
    backbone_link: str  # root-side interface name of the backbone veth


def bridge_name(cfg: LocalConfig) -> str:
    return f"{cfg.prefix}-bb"


def addresses(cfg: LocalConfig, region: RegionSpec) -> RegionAddresses:
    base = int(cfg.network.network_address)
    i = region.index
    ip = lambda third, fourth: str(ipaddress.IPv4Address(base + third * 256 + fourth))  # noqa: E731
    return RegionAddresses(
        namespace=f"{cfg.prefix}-{region.name}",
        client_ip=ip(i, 2),
        client_host_ip=ip(i, 1),
        backbone_ip=ip(BACKBONE_OCTET, 10 + i),
        client_link=f"{cfg.prefix}-{region.name}-c",
        backbone_link=f"{cfg.prefix}-{region.name}-b",
    )


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an iproute2-style command; failures become one readable line."""
    p = subprocess.run(args, capture_output=True, text=True)
    if check and p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise LocalEnvError(f"`{' '.join(args)}` failed: {msg[-1] if msg else p.returncode}")
    return p


def namespaces() -> set[str]:
    out = run("ip", "netns", "list", check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def links() -> set[str]:
    out = run("ip", "-o", "link", "show", check=False).stdout
    names = set()
    for line in out.splitlines():
        # "12: kd-east-c@if11: <...>"
        names.add(line.split(":")[1].strip().split("@")[0])
    return names


def create(cfg: LocalConfig) -> None:
    """Build the bridge, the namespaces and both links of each region."""
    for region in cfg.regions:
        create_region(cfg, region)


def create_bridge(cfg: LocalConfig) -> None:
    """The backbone bridge the regions' backbone links join (once: the first region creates it)."""
    br = bridge_name(cfg)
    if br not in links():
        made = run("ip", "link", "add", br, "type", "bridge", check=False)
        if made.returncode != 0 and br not in links():  # not the other region, just made
            raise LocalEnvError(f"`ip link add {br} type bridge` failed: {made.stderr.strip()}")
    run("ip", "link", "set", br, "up")


def create_region(cfg: LocalConfig, region: RegionSpec) -> None:
    """One region's namespace, client link and backbone link (the bridge if missing)."""
    create_bridge(cfg)
    br = bridge_name(cfg)
    a = addresses(cfg, region)
    ns = a.namespace
    run("ip", "netns", "add", ns)
    run("ip", "-n", ns, "link", "set", "lo", "up")
    # client link: root <-> region, point to point
    run("ip", "link", "add", a.client_link, "type", "veth", "peer", "name", "client", "netns", ns)
    run("ip", "addr", "add", f"{a.client_host_ip}/24", "dev", a.client_link)
    run("ip", "link", "set", a.client_link, "up")
    run("ip", "-n", ns, "addr", "add", f"{a.client_ip}/24", "dev", "client")
    run("ip", "-n", ns, "link", "set", "client", "up")
    # backbone link: region <-> bridge <-> other region
    run(
        "ip",
        "link",
        "add",
        a.backbone_link,
        "type",
        "veth",
        "peer",
        "name",
        "backbone",
        "netns",
        ns,
    )
    run("ip", "link", "set", a.backbone_link, "master", br)
    run("ip", "link", "set", a.backbone_link, "up")
    run("ip", "-n", ns, "addr", "add", f"{a.backbone_ip}/24", "dev", "backbone")
    # A WAN carries MTU-sized packets; veth would pass 64 KB GSO super-packets, and a
    # packet-loss fault dropping one of those is not what 30 % loss means on a real link.
    run("ip", "-n", ns, "link", "set", "backbone", "gso_max_segs", "1")
    run("ip", "-n", ns, "link", "set", "backbone", "up")
    add_counters(ns)


COUNTERS = """\
table inet kdrill_counters {
  counter backbone_in {}
  counter backbone_out {}
  chain input { type filter hook input priority -200; policy accept; iifname "backbone" counter name "backbone_in"; }
  chain output { type filter hook output priority -200; policy accept; oifname "backbone" counter name "backbone_out"; }
}
"""


def add_counters(namespace: str) -> None:
    """Byte counters on the region's backbone link (what crosses regions), before any fault's drops."""
    p = subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-f", "-"],
        input=COUNTERS,
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise LocalEnvError(
            f"nftables in {namespace} failed: {p.stderr.strip()}; is nftables installed?"
        )


def read_counters(namespace: str) -> dict[str, int]:
    """{"in_bytes", "in_packets", "out_bytes", "out_packets"} on the region's backbone link."""
    p = run(
        "ip",
        "netns",
        "exec",
        namespace,
        "nft",
        "-j",
        "list",
        "counters",
        "table",
        "inet",
        "kdrill_counters",
    )
    out: dict[str, int] = {}
    for item in json.loads(p.stdout)["nftables"]:
        c = item.get("counter")
        if c:
            side = c["name"].removeprefix("backbone_")
            out[f"{side}_bytes"], out[f"{side}_packets"] = c["bytes"], c["packets"]
    return out


def pids_in(namespace: str) -> list[int]:
    out = run("ip", "netns", "pids", namespace, check=False).stdout
    return [int(x) for x in out.split()]


def destroy(cfg: LocalConfig) -> list[str]:
    """Remove every namespace, link and bridge this pair's prefix names.

    Works from names alone (no state file needed), so it also cleans up after
    an `up` that was killed half way. Returns what it removed.
    """
    removed = []
    for region in cfg.regions:
        removed += destroy_region(cfg, region)
    return removed + destroy_bridge(cfg)


def destroy_region(cfg: LocalConfig, region: RegionSpec) -> list[str]:
    """One region's links and namespace, by name."""
    removed = []
    have_ns, have_links = namespaces(), links()
    a = addresses(cfg, region)
    for link in (a.client_link, a.backbone_link):
        if link in have_links:
            run("ip", "link", "del", link, check=False)
            removed.append(f"link {link}")
    if a.namespace in have_ns:
        run("ip", "netns", "del", a.namespace, check=False)
        removed.append(f"namespace {a.namespace}")
    return removed


def destroy_bridge(cfg: LocalConfig) -> list[str]:
    if bridge_name(cfg) in links():
        run("ip", "link", "del", bridge_name(cfg), check=False)
        return [f"bridge {bridge_name(cfg)}"]
    return []


def region_present(cfg: LocalConfig, region: RegionSpec) -> bool:
    """The region's namespace and both root-side links exist (whatever their state)."""
    a = addresses(cfg, region)
    return a.namespace in namespaces() and {a.client_link, a.backbone_link} <= links()


def leftovers(cfg: LocalConfig) -> list[str]:
    """What of this pair's network still exists (empty after a clean `down`)."""
    have_ns, have_links = namespaces(), links()
    left = []
    for region in cfg.regions:
        a = addresses(cfg, region)
        left += [f"namespace {a.namespace}"] if a.namespace in have_ns else []
        left += [f"link {n}" for n in (a.client_link, a.backbone_link) if n in have_links]
    if bridge_name(cfg) in have_links:
        left.append(f"bridge {bridge_name(cfg)}")
    return left

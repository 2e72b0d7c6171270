"""Inter-region latency: toxiproxy on the replication path.

`tc netem` does not exist on these kernels, so latency is added in user space.
Toxiproxy runs in the standby region with one proxy per primary broker:

    MM2 (standby) -> standby-backbone:19192+i (toxiproxy) -> primary-backbone:9192+i (REPLICATION)

and the primary's REPLICATION listener advertises the proxy address, so every
byte MirrorMaker 2 reads from the primary passes through it. The stack's
`interRegionRttMs` (70 ms by default) is applied as two latency toxics, half
the round trip each way; the latency fault replaces them and clearing it puts
the default back. Its HTTP API listens on the standby's client address so the
drill runner in the root namespace can reach it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from components.local.errors import LocalEnvError
from components.wait import wait_until

API_PORT = 8474
PROXY_PORT = 19192


def binary() -> str:
    exe = Path(sys.executable).with_name("toxiproxy-server")
    if exe.exists():
        return str(exe)
    found = shutil.which("toxiproxy-server")
    if not found:
        raise LocalEnvError(
            "toxiproxy-server not found; run tools/bootstrap.sh (it builds it from the Go module proxy)"
        )
    return found


def argv(api_host: str) -> list[str]:
    return [binary(), "-host", api_host, "-port", str(API_PORT)]


class Toxiproxy:
    """A small client for the toxiproxy HTTP API (the parts kdrill uses)."""

    def __init__(self, api_host: str):
        self.base = f"http://{api_host}:{API_PORT}"

    def _call(self, method: str, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise LocalEnvError(
                f"toxiproxy {method} {path}: HTTP {e.code} {e.read().decode()[:200]}"
            ) from None
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:  # /version answers in plain text
            return raw.decode()

    def wait_ready(self, deadline: float, still_alive: Callable[[], object]) -> None:
        """Wait until the API answers (by `deadline`, monotonic), checking
        `still_alive()` between tries so a dead server fails fast."""

        def answers() -> bool:
            try:
                self._call("GET", "/version")
                return True
            except (urllib.error.URLError, OSError):
                return False

        wait_until(
            answers,
            deadline - time.monotonic(),
            f"toxiproxy at {self.base}",
            interval=0.1,
            check=still_alive,
            error=lambda _: LocalEnvError(f"toxiproxy at {self.base} did not answer in time"),
        )

    def create_proxy(self, name: str, listen: str, upstream: str) -> None:
        self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": listen, "upstream": upstream, "enabled": True},
        )

    def proxies(self) -> dict[str, dict]:
        return self._call("GET", "/proxies")  # type: ignore[return-value]

    def set_latency(self, proxy: str, rtt_ms: float, jitter_ms: float = 0) -> None:
        """Replace the proxy's latency toxics: half the round trip in each direction."""
        for stream in ("upstream", "downstream"):
            name = f"latency_{stream}"
            with contextlib.suppress(LocalEnvError):  # not there yet
                self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")
            if rtt_ms > 0 or jitter_ms > 0:
                self._call(
                    "POST",
                    f"/proxies/{proxy}/toxics",
                    {
                        "name": name,
                        "type": "latency",
                        "stream": stream,
                        "toxicity": 1.0,
                        "attributes": {"latency": int(rtt_ms / 2), "jitter": int(jitter_ms / 2)},
                    },
                )

    def latency(self, proxy: str) -> tuple[int, int]:
        """(round trip ms, jitter ms) the proxy currently adds."""
        toxics = self._call("GET", f"/proxies/{proxy}/toxics") or []
        lat = sum(t["attributes"]["latency"] for t in toxics if t["type"] == "latency")  # type: ignore[union-attr]
        jit = sum(t["attributes"]["jitter"] for t in toxics if t["type"] == "latency")  # type: ignore[union-attr]
        return lat, jit

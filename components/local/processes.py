"""Starting a region's daemons inside its namespace and cgroup, and stopping them.

A daemon is started with `ip netns exec NS CMD` in a new session (so a Ctrl-C
at the terminal reaches only kdrill, which then tears down in order) after
joining the region's cgroup (a shell joins it, then execs: see cgroups.exec_in), with
stdout/stderr to a log file and no other descriptor open. Its pid is the
JVM's or Python's own pid: `ip netns exec` execs the command in place.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from components.local import cgroups
from components.wait import WaitTimeout, wait_until


def start(
    namespace: str,
    group: str,
    argv: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """`cwd`: the daemon's working directory (the caller's when None)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(
            cgroups.exec_in(group, ["ip", "netns", "exec", namespace, *argv]),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    return p.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still answers kill(0); reap it if so.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return _state(pid) not in ("Z", "X", None)


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return None


def kill_all(pids: list[int], timeout: float = 5.0) -> None:
    """SIGKILL and wait until every pid is gone. Kafka's data is thrown away
    with the environment, so there is nothing a graceful shutdown would save."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(WaitTimeout):  # a task stuck in the kernel: callers check again
        wait_until(
            lambda: not any(alive(p) for p in pids),
            timeout,
            f"{len(pids)} killed process(es) to exit",
            interval=0.01,  # a drill's cutover waits on this (stopping MirrorMaker 2): look often
        )


def tail(log: Path, lines: int = 5) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return ""

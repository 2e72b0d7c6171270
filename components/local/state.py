"""The daemons a local pair runs, recorded in its state file.

`<state root>/<prefix>/state.json` holds the pair's phase ("creating" while `up`
runs, "up" once it serves), its stack name, replication policy, the stack
config it was built from and one entry per daemon (role, region, pid, log,
broker node). It is what lets `status`, `down`, a fault applied by `kdrill
local fault` and a drill in another process all act on the same pair: several
kdrill processes restart daemons, so every lookup re-reads the file first
(`sync`) and every change writes it back at once, atomically (write a
temporary file, rename it over).

Daemon logs live beside it: `<prefix>/<region>/<role>.log`, and
`<prefix>/<region>/broker-<n>/broker.log` for brokers.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.local import processes
from components.local.config import LocalConfig
from components.local.errors import LocalEnvError

if TYPE_CHECKING:
    from components.local.region import Region


@dataclass
class Proc:
    """One recorded daemon."""

    role: str  # "broker", "s3", "toxiproxy", "mirrormaker2"
    region: str
    pid: int
    log: str
    node: int | None = None

    @property
    def label(self) -> str:
        return f"{self.role} {self.region}" + (f"/{self.node}" if self.node is not None else "")


class ProcessRegistry:
    """The state file of one pair and the daemons it records.

    `procs` and `policy` are this process's copy; `sync()` takes them from the
    file, `write()` puts them there.
    """

    def __init__(self, directory: Path, cfg: LocalConfig):
        self.dir = directory
        self.path = directory / "state.json"
        self.cfg = cfg
        state = self.read()
        self.policy: str = state.get("policy", cfg.replication.policy)
        self.procs: list[Proc] = [Proc(**p) for p in state.get("processes", [])]

    # --- the file ---------------------------------------------------------------------

    @staticmethod
    def load(path: Path) -> dict[str, Any]:
        """A state file's content; empty when there is none (the pair is down)."""
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def read(self) -> dict[str, Any]:
        return self.load(self.path)

    @property
    def phase(self) -> str | None:
        return self.read().get("phase")

    def write(self, phase: str | None = None) -> None:
        """Record this copy's processes and policy under `phase` (default: the phase
        already recorded, else "creating")."""
        state = {
            "phase": phase or self.phase or "creating",
            "stack": self.cfg.stack,
            "policy": self.policy,
            "config": self.cfg.raw,
            "processes": [asdict(p) for p in self.procs],
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.path)

    def sync(self) -> None:
        """Take the process list and policy from the state file: another kdrill process
        (a drill, `kdrill local fault`, `recover`) may have restarted daemons since."""
        state = self.read()
        if "processes" in state:
            self.procs = [Proc(**p) for p in state["processes"]]
            self.policy = state.get("policy", self.policy)

    # --- daemons ----------------------------------------------------------------------

    def workdir(self, region: str, node: int | None = None) -> Path:
        """Where a region's daemon keeps its files (a broker: its own subdirectory)."""
        base = self.dir / region
        return base / f"broker-{node}" if node is not None else base

    def start(self, r: Region, role: str, argv: list[str], node: int | None = None) -> Proc:
        """Start one daemon of region `r` (in its namespace and cgroup) and record it."""
        log = self.workdir(r.name, node) / ("broker.log" if role == "broker" else f"{role}.log")
        pid = processes.start(r.namespace, r.cgroup, argv, log)
        proc = Proc(role, r.name, pid, str(log), node)
        self.record(proc)
        return proc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Read-modify-write of the file under an exclusive lock: the stack's parts are
        created in parallel by one provider process, and drills restart daemons from others."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "state.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.sync()
            yield

    def record(self, proc: Proc) -> None:
        """Add `proc`, replacing an entry of the same label (a dead daemon restarted)."""
        with self._locked():
            self.procs = [p for p in self.procs if p.label != proc.label] + [proc]
            self.write()

    def forget(self, which: Callable[[Proc], bool]) -> list[Proc]:
        """Drop the entries `which` selects (daemons that were killed); returns them."""
        with self._locked():
            gone = [p for p in self.procs if which(p)]
            self.procs = [p for p in self.procs if not which(p)]
            self.write()
        return gone

    def set_policy(self, policy: str) -> None:
        with self._locked():
            self.policy = policy
            self.write()

    def set_phase(self, phase: str) -> None:
        """Record the pair's phase, keeping what other processes recorded."""
        with self._locked():
            self.write(phase)

    def find(self, role: str, region: str, node: int | None = None) -> Proc | None:
        self.sync()
        return next(
            (p for p in self.procs if (p.role, p.region, p.node) == (role, region, node)), None
        )

    def running(self, role: str, region: str, node: int | None = None) -> bool:
        p = self.find(role, region, node)
        return p is not None and processes.alive(p.pid)

    def kill(self, proc: Proc) -> None:
        """SIGKILL one recorded daemon (as recorded now: it may have been restarted) and forget it."""
        self.sync()
        proc = next((p for p in self.procs if p.label == proc.label), proc)
        processes.kill_all([proc.pid])
        self.forget(lambda p: p.pid == proc.pid)

    def kill_region(self, r: Region, cgroup_pids: list[int]) -> list[Proc]:
        """SIGKILL every recorded daemon of `r` and whatever else runs in its cgroup
        (`cgroup_pids`); forget them."""
        self.sync()
        mine = [p.pid for p in self.procs if p.region == r.name]
        processes.kill_all(cgroup_pids + mine)
        return self.forget(lambda p: p.region == r.name)

    def check_alive(self, region: str | None = None) -> None:
        """Raise LocalEnvError naming the first recorded daemon that exited, with the
        last line of its log (a taken port said plainly): used while waiting for
        readiness, so a dead daemon fails fast instead of at the deadline."""
        self.sync()
        for p in self.procs:
            if region not in (None, p.region):
                continue
            if not processes.alive(p.pid):
                last = processes.tail(Path(p.log), 30)
                if "Address already in use" in last:
                    raise LocalEnvError(
                        f"{p.label}: a port it needs is taken; stop what holds it and retry"
                    )
                last_line = next(
                    (ln for ln in reversed(last.splitlines()) if ln.strip()), "no output"
                )
                raise LocalEnvError(
                    f"{p.label} exited while starting: {last_line[:300]} (log: {p.log})"
                )

    def alive_pids(self) -> list[int]:
        """Recorded pids still running this pair's daemons (pid reuse ruled out)."""
        return [p.pid for p in self.procs if processes.alive(p.pid) and is_ours(p.pid, self.dir)]


def is_ours(pid: int, state_dir: Path) -> bool:
    """Guard against pid reuse: a recorded pid is ours only if its command line names
    our state directory (a JVM's config and log4j files live there; daemons whose
    command line does not are found by their cgroup and namespace instead)."""
    try:
        return str(state_dir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return False

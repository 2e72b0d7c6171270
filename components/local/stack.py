"""The engine side of the local stack: backend, passphrase, drill-time config, engine sessions.

Everything the engine needs lives in the pair's state directory, never in the repository:

    <state dir>/pulumi/                the file backend (PULUMI_BACKEND_URL=file://...)
    <state dir>/passphrase             the stack passphrase: generated once, mode 0600; handed
                                       to the engine as PULUMI_CONFIG_PASSPHRASE_FILE (a path),
                                       so it never appears in a command line, an env dump or a log
    <state dir>/Pulumi.<stack>.yaml    the drill-time stack config: the tracked
                                       stacks/Pulumi.<stack>.yaml, the stack's encryption salt and
                                       the fault entries (`kdrill:faults`); every engine command
                                       gets it as --config-file, so `git status` stays clean
    <state dir>/engine-sessions.json   the session id of every engine command still running

The drill-time config also holds the stack's credentials (`kdrill:credentials`, a Pulumi
secret: ciphertext under the stack's passphrase), generated once per stack by
`ensure_credentials` and handed to the value to `pulumi config set --secret` on its
standard input, never on its command line.

Each engine command runs in a new session whose id is recorded before it starts and
dropped when it returns. A `pulumi` CLI killed with SIGKILL leaves its language host and
dynamic provider running (they are in its session, not its process group), a pending
operation and the stack lock; `recover_engine` kills every process of each recorded
session, cancels the update (the lock) and refreshes (pending operations).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.local.errors import LocalEnvError

ROOT = Path(__file__).resolve().parents[2]
FAULTS_KEY = "kdrill:faults"
# The stack's credentials (components/local/security.py): one Pulumi secret, a JSON
# object principal -> password, encrypted with the stack's passphrase in the drill-time config.
CREDENTIALS_KEY = "kdrill:credentials"


def pulumi_binary() -> str:
    """`pulumi` on PATH, else the one tools/bootstrap.sh linked into this interpreter's venv."""
    found = shutil.which("pulumi") or str(Path(sys.prefix) / "bin" / "pulumi")
    if not Path(found).exists():
        raise LocalEnvError("no pulumi CLI on PATH or in the venv: run tools/bootstrap.sh")
    return found


@dataclass
class EngineResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> EngineResult:
        if self.returncode != 0:
            lines = (self.stdout + "\n" + self.stderr).splitlines()
            errors = [x.strip() for x in lines if "error" in x.lower() or "Exception" in x]
            tail = errors[-4:] or [x.strip() for x in lines if x.strip()][-3:]
            raise LocalEnvError(
                f"pulumi {self.args[0]} failed ({self.returncode}): {' / '.join(tail)[:600]}"
            )
        return self


class LocalStack:
    """One local stack's engine plumbing, rooted at the pair's state directory."""

    def __init__(
        self,
        state_dir: Path,
        stack: str = "local",
        stack_file: Path | None = None,
        root: Path = ROOT,
        config: dict[str, Any] | None = None,
    ):
        """`config`: the stack's tracked `config:` mapping (default: read from `stack_file`,
        itself defaulting to stacks/Pulumi.<stack>.yaml)."""
        self.dir = state_dir
        self.stack = stack
        self.root = root
        self.stack_file = stack_file or root / "stacks" / f"Pulumi.{stack}.yaml"
        self.tracked = config
        self.policy: str | None = None  # a replication policy overriding the tracked one
        self.backend_dir = state_dir / "pulumi"
        self.passphrase_file = state_dir / "passphrase"
        self.config_file = state_dir / f"Pulumi.{stack}.yaml"
        self.sessions_file = state_dir / "engine-sessions.json"
        self.project = yaml.safe_load((root / "Pulumi.yaml").read_text())["name"]

    # --- secrets and environment ---------------------------------------------------

    def ensure_passphrase(self) -> Path:
        """Create the passphrase file once (0600, exclusive create); never rewrite it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(self.passphrase_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return self.passphrase_file

    def env(self) -> dict[str, str]:
        """What the engine needs beyond the caller's environment. No secret values: the
        passphrase is passed by path; a PULUMI_CONFIG_PASSPHRASE inherited is dropped."""
        return {
            "PULUMI_BACKEND_URL": self.backend_dir.resolve().as_uri(),
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.passphrase_file.resolve()),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            "KDRILL_STATE_DIR": str(self.dir.parent.resolve()),
        }

    def _full_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PULUMI_CONFIG_PASSPHRASE"}
        venv_bin = str(Path(sys.prefix) / "bin")
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **self.env()}

    # --- engine sessions -----------------------------------------------------------

    @contextlib.contextmanager
    def _sessions(self) -> Iterator[list[dict[str, Any]]]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "engine-sessions.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                items = json.loads(self.sessions_file.read_text())
            except (FileNotFoundError, ValueError):
                items = []
            yield items
            tmp = self.sessions_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(items, indent=2))
            os.replace(tmp, self.sessions_file)

    def recorded_sessions(self) -> list[dict[str, Any]]:
        try:
            return json.loads(self.sessions_file.read_text())
        except (FileNotFoundError, ValueError):
            return []

    def start(self, args: list[str]) -> subprocess.Popen[str]:
        """Start `pulumi ARGS -s STACK` in a new session and record the session's id."""
        self.ensure_passphrase()
        argv = [pulumi_binary(), *args, "--stack", self.stack, "--non-interactive"]
        p = subprocess.Popen(
            argv,
            cwd=self.root,
            env=self._full_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        with self._sessions() as items:  # sid == pid of a session leader
            items.append(
                {"sid": p.pid, "args": args[:1], "kdrill_pid": os.getpid(), "t": time.time()}
            )
        return p

    def finish(
        self,
        p: subprocess.Popen[str],
        args: list[str],
        t0: float,
        timeout: float,
        on_line: Callable[[str], None] | None = None,
    ) -> EngineResult:
        """Wait for an engine command; `on_line` sees its output lines as they come.
        An interrupt (or the timeout) ends the command's whole session first."""
        streams = {"out": p.stdout, "err": p.stderr}
        got: dict[str, list[str]] = {"out": [], "err": []}

        def drain(which: str) -> None:
            for line in streams[which]:  # type: ignore[union-attr]
                got[which].append(line)
                if on_line is not None and which == "out":
                    with contextlib.suppress(Exception):
                        on_line(line.rstrip())

        readers = [threading.Thread(target=drain, args=(w,), daemon=True) for w in streams]
        for t in readers:
            t.start()
        note = ""
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_session(p.pid)
            p.wait()
            note = f"\n(timed out after {timeout:.0f} s; session killed)"
        except BaseException:
            kill_session(p.pid)
            p.wait()
            raise
        finally:
            for t in readers:
                t.join(timeout=5)
            with self._sessions() as items:
                items[:] = [s for s in items if s["sid"] != p.pid or session_members(p.pid)]
        out, err = "".join(got["out"]), "".join(got["err"]) + note
        return EngineResult(args, p.returncode, out, err, time.monotonic() - t0)

    def run(
        self,
        args: list[str],
        timeout: float = 600.0,
        on_line: Callable[[str], None] | None = None,
    ) -> EngineResult:
        t0 = time.monotonic()
        return self.finish(self.start(args), args, t0, timeout, on_line)

    # --- the stack and its drill-time config ---------------------------------------

    def exists(self) -> bool:
        return (
            self.backend_dir / ".pulumi" / "stacks" / self.project / f"{self.stack}.json"
        ).exists()

    def update_count(self) -> int:
        """How many updates `pulumi stack history` lists (read from the file backend's
        history directory: no engine start). A file backend numbers every version 0, so this
        count is the number of the latest update."""
        d = self.backend_dir / ".pulumi" / "history" / self.project / self.stack
        return len(list(d.glob("*.history.json"))) if d.exists() else 0

    def resource_urns(self) -> list[str]:
        """The stack's resources as its last checkpoint records them (read from the file
        backend directly: no engine start)."""
        f = self.backend_dir / ".pulumi" / "stacks" / self.project / f"{self.stack}.json"
        try:
            latest = json.loads(f.read_text())["checkpoint"].get("latest") or {}
        except (FileNotFoundError, ValueError, KeyError):
            return []
        return [r["urn"] for r in latest.get("resources") or []]

    def ensure(self, policy: str | None = None) -> None:
        """Create the backend, the passphrase, the stack and the drill-time config file
        (the tracked stack file is read, never written). `policy`: the replication policy
        to bring the pair up under, when not the tracked one."""
        self.policy = policy or self.policy
        self.backend_dir.mkdir(parents=True, exist_ok=True)
        self.ensure_passphrase()
        if not self.exists():
            # `stack init` writes the encryption salt into the stack's config file; run it
            # from a scratch project in the state dir so the tracked one is not touched.
            scratch = self.dir / "stack-init"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            (scratch / "Pulumi.yaml").write_text(f"name: {self.project}\nruntime: python\n")
            r = subprocess.run(
                [
                    pulumi_binary(),
                    "stack",
                    "init",
                    self.stack,
                    "--secrets-provider",
                    "passphrase",
                    "--non-interactive",
                ],
                cwd=scratch,
                env=self._full_env(),
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            if r.returncode != 0:
                raise LocalEnvError(f"pulumi stack init failed: {r.stderr.strip()[:300]}")
            salt = yaml.safe_load((scratch / f"Pulumi.{self.stack}.yaml").read_text())
            self._write_config(salt.get("encryptionsalt"))
            shutil.rmtree(scratch, ignore_errors=True)
        elif not self.config_file.exists():
            # Its encryption salt went with the file: a stack holding nothing is removed and
            # made again; one still holding parts cannot be read without it.
            if self.resource_urns():
                raise LocalEnvError(
                    f"stack {self.stack!r} lists resources but {self.config_file} (its salt) is "
                    f"gone; run `kdrill local down`, then remove {self.backend_dir}"
                )
            self.run(["stack", "rm", "--yes", "--force", "--preserve-config"]).check()
            self.ensure(self.policy)
            return
        else:
            self._write_config(self._read_config().get("encryptionsalt"), keep_faults=True)

    def _write_config(self, salt: str | None, keep_faults: bool = False) -> None:
        if self.tracked is None:
            self.tracked = (yaml.safe_load(self.stack_file.read_text()) or {}).get("config") or {}
        faults = self.faults() if keep_faults else {}
        kept = (self._read_config().get("config") or {}).get(CREDENTIALS_KEY)
        data: dict[str, Any] = {"config": {**self.tracked}}
        if kept is not None and salt:  # a secret is readable only under the salt it was made with
            data["config"][CREDENTIALS_KEY] = kept
        rep = data["config"].get("kdrill:replication")
        if self.policy and isinstance(rep, dict):
            data["config"]["kdrill:replication"] = {**rep, "policy": self.policy}
        if salt:
            data["encryptionsalt"] = salt
        data["config"][FAULTS_KEY] = faults
        self._save(data)

    def has_credentials(self) -> bool:
        return CREDENTIALS_KEY in (self._read_config().get("config") or {})

    def ensure_credentials(self, principals: list[str]) -> None:
        """Generate the stack's credentials once (a password per principal) and keep them as
        a Pulumi secret of the drill-time config; kept as they are afterwards."""
        from components.local import security

        if self.has_credentials():
            return
        value = json.dumps(security.generate(principals))
        argv = [pulumi_binary(), "config", "set", "--secret", CREDENTIALS_KEY, *self._cfg(),
                "--stack", self.stack, "--non-interactive"]  # fmt: skip
        r = subprocess.run(argv, cwd=self.root, env=self._full_env(), input=value,
                           capture_output=True, text=True, timeout=120,
                           start_new_session=True)  # fmt: skip
        if r.returncode != 0 or not self.has_credentials():
            raise LocalEnvError(
                f"pulumi config set --secret {CREDENTIALS_KEY} failed: {r.stderr.strip()[:300]}"
            )

    def _read_config(self) -> dict[str, Any]:
        try:
            return yaml.safe_load(self.config_file.read_text()) or {}
        except FileNotFoundError:
            return {}

    def _save(self, data: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(tmp, self.config_file)

    def faults(self) -> dict[str, dict[str, Any]]:
        """The fault entries of the drill-time config: id -> fault spec (as a dict)."""
        return dict((self._read_config().get("config") or {}).get(FAULTS_KEY) or {})

    def set_faults(self, faults: dict[str, dict[str, Any]]) -> None:
        data = self._read_config()
        data.setdefault("config", {})[FAULTS_KEY] = faults
        self._save(data)

    def drill_setting(self, key: str) -> Any:
        """Another drill-time config value (e.g. `kdrill:reverseReplication`); None if unset.
        `ensure` drops them: a new drill starts from the tracked config and its faults."""
        return (self._read_config().get("config") or {}).get(key)

    def set_drill_setting(self, key: str, value: Any) -> None:
        data = self._read_config()
        cfg = data.setdefault("config", {})
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
        self._save(data)

    def add_fault(self, fault_id: str, spec: dict[str, Any]) -> None:
        self.set_faults({**self.faults(), fault_id: spec})

    def remove_fault(self, fault_id: str) -> None:
        self.set_faults({k: v for k, v in self.faults().items() if k != fault_id})

    # --- engine commands -------------------------------------------------------------

    def _cfg(self) -> list[str]:
        return ["--config-file", str(self.config_file)]

    def up(
        self,
        targets: list[str] = (),
        timeout: float = 600.0,
        on_line: Callable[[str], None] | None = None,
        refresh: bool = False,
    ) -> EngineResult:
        """`refresh`: read the targets' live state first (a part killed outside the engine
        is then seen as not running, and its provider's update starts it again)."""
        args = ["up", "--yes", "--skip-preview", *self._cfg(), *(["--refresh"] if refresh else [])]
        for t in targets:
            args += ["--target", t]
        return self.run(args, timeout, on_line).check()

    def stack_outputs(self) -> dict[str, Any]:
        """The stack's outputs as its last checkpoint records them (read from the file
        backend: no engine start). Secret outputs are not returned."""
        f = self.backend_dir / ".pulumi" / "stacks" / self.project / f"{self.stack}.json"
        try:
            latest = json.loads(f.read_text())["checkpoint"].get("latest") or {}
        except (FileNotFoundError, ValueError, KeyError):
            return {}
        for r in latest.get("resources") or []:
            if r.get("type") == "pulumi:pulumi:Stack":
                return dict(r.get("outputs") or {})
        return {}

    def refresh(self, preview_only: bool = False) -> EngineResult:
        args = ["refresh", *self._cfg()]
        if preview_only:
            args += ["--preview-only"]
        else:
            args += ["--yes", "--clear-pending-creates", "--skip-preview"]
        return self.run(args)

    def preview(self, expect_no_changes: bool = False) -> EngineResult:
        return self.run(
            ["preview", *self._cfg(), *(["--expect-no-changes"] if expect_no_changes else [])]
        )

    def destroy(self) -> EngineResult:
        return self.run(["destroy", "--yes", "--skip-preview", *self._cfg()]).check()

    def outputs(self) -> dict[str, Any]:
        r = self.run(["stack", "output", "--json"]).check()
        return json.loads(r.stdout or "{}")

    def history(self) -> list[dict[str, Any]]:
        r = self.run(["stack", "history", "--json", "--page-size", "100000"]).check()
        return json.loads(r.stdout or "[]")

    def urn(self, type_: str, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    def recover_engine(self) -> list[str]:
        """After a kill: end every recorded engine session (CLI, language host, provider),
        release the lock, clear pending operations. Returns what was done, for the journal."""
        done: list[str] = []
        for s in self.recorded_sessions():
            killed = kill_session(s["sid"])
            if killed:
                done.append(f"killed {len(killed)} process(es) of engine session {s['sid']}")
        with self._sessions() as items:
            items.clear()
        if not self.exists():
            return done
        c = self.run(["cancel", "--yes"])
        if c.returncode == 0 and "canceled" in (c.stdout + c.stderr).lower():
            done.append("cancelled the stack's update (lock released)")
        r = self.refresh()
        if r.returncode != 0:
            raise LocalEnvError(f"pulumi refresh failed after recovery: {r.stderr.strip()[-300:]}")
        done.append("refreshed the stack (pending operations cleared)")
        return done

    def locked(self) -> bool:
        locks = self.backend_dir / ".pulumi" / "locks"
        return any(p.is_file() for p in locks.rglob("*")) if locks.exists() else False

    def kept(self) -> set[str]:
        """What of the state dir outlives `kdrill down`: the stacks' history and their keys
        (every stack config here: stacks of one name prefix share the directory)."""
        configs = {p.name for p in self.dir.glob("Pulumi.*.yaml")} if self.dir.exists() else set()
        return {self.backend_dir.name, self.passphrase_file.name, self.config_file.name, *configs}

    def teardown(self) -> list[str]:
        """For `kdrill down` (faults already cleared): end recorded engine sessions, empty the
        drill-time faults and destroy the stack's resources, keeping its history. Without
        the passphrase or the config there is nothing the engine can do: the pair is then
        cleaned by name only."""
        done = []
        for s in self.recorded_sessions():
            if kill_session(s["sid"]):
                done.append(f"engine session {s['sid']}")
        if self.sessions_file.exists():
            self.sessions_file.unlink()
        if not (self.exists() and self.passphrase_file.exists() and self.config_file.exists()):
            return done
        self.set_faults({})
        if self.locked():
            self.run(["cancel", "--yes"], timeout=60)
        r = self.run(["destroy", "--yes", "--skip-preview", *self._cfg()], timeout=120)
        if r.returncode == 0:
            done.append(f"stack {self.stack!r} resources (history kept)")
        else:
            done.append(f"stack {self.stack!r}: destroy failed, {r.stderr.strip()[-200:]}")
        return done


def session_members(sid: int) -> list[int]:
    """Pids whose session id is `sid` (from /proc/<pid>/stat, field 6)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
            continue
        if fields[0] not in ("Z", "X") and int(fields[3]) == sid:  # state ppid pgrp session
            found.append(int(d.name))
    return found


def kill_session(sid: int, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process of session `sid`, until none is left (a provider may fork)."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while (pids := session_members(sid)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.05)
    return sorted(killed)

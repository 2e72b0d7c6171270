"""Ephemeral drill environments: create from a template stack, list, destroy, reap.

An environment is a Pulumi stack `env-<id>` made by `kdrill env create` from a template
stack (stacks/Pulumi.<template>.yaml) with `--set` overrides, and brought up. Everything
about it lives in the state directory, never in the repository:

    <state root>/envs/Pulumi.env-<id>.yaml   its stack file (found by name: config.stack_file)
    <state root>/envs/env-<id>.json          its record: template, owner, times, prefix,
                                             network, state (creating | ready | destroying)
    <state root>/envs/env-<id>.lock          held (flock) while it is created or destroyed
    <state root>/<prefix>/pulumi/            local envs: the pair's backend, holding the stack

The stamp. The stack carries stack tags `environment=ephemeral`, `kdrill:expires-at` (what
the policy pack's `ephemeral-stack-expiry` rule requires), `kdrill:env-id`,
`kdrill:created-at`, `kdrill:created-by`, `owner`, `kdrill:template` and `kdrill:drill-id`
(= the env id: the tag Cost Explorer reconciliation filters on). An AWS env also has them as
cost tags on every resource (kdrill:envId / createdAt / drillId / expiresAt in its config,
components/aws/tags.py). `reap` destroys only environments that have a record and, once
their stack exists, the matching `kdrill:env-id` + `kdrill:created-by` stack tags; an expired
ephemeral stack without the stamp is reported and left alone.

Crash safety. The record goes to `destroying` before anything is removed and is deleted
last, so a reap (or destroy) killed with SIGKILL leaves a record that the next reap
finishes whatever its expiry; `LocalPair.down` ends the engine sessions the kill left and
works by name. Reaps take a non-blocking lock: a second one (cron overlapping CI) says so
and does nothing.

Side by side. A local env gets its own name prefix (`e0`..`e9`, `ea`..`ez`) and /16 network
(10.100.0.0/16 upward), skipping any in use: network namespaces, /var/tmp/kdrill/<prefix>
state dirs, the prefixes and networks of the stacks under stacks/, other envs' records and
pairs' recorded configs, and the addresses of the root namespace. `create` refuses in one
line when the machine lacks memory or CPU for another pair (`capacity_problem`).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from components.local import config, network
from components.local.errors import LocalEnvError
from components.local.stack import LocalStack

Progress = Callable[[str], None]

MAX_TTL = timedelta(hours=72)  # the policy pack's default maxTtlHours
CREATED_BY = "kdrill env create"
PREFIXES = [f"e{c}" for c in string.digits + string.ascii_lowercase]
FIRST_NET, LAST_NET = 100, 199  # 10.100.0.0/16 .. 10.199.0.0/16
# What one local pair needs, measured (2026-12-01, default local stack, 1 broker per region):
# RSS of its processes 1.2 GiB (two brokers ~300 MiB each, MirrorMaker 2 ~430 MiB, two moto
# ~76 MiB, toxiproxy 13 MiB); MemAvailable dropped by 1.9 GiB with page cache. Required free:
# MIB_PER_BROKER per broker plus MIB_BASE (3 GiB for the default stack).
MIB_PER_BROKER = 1024
MIB_BASE = 1024
MAX_LOAD_PER_CORE = 8.0  # 1-minute load average per core above which no env is started

TAG_ENV_ID = "kdrill:env-id"
TAG_EXPIRES = "kdrill:expires-at"
TAG_CREATED = "kdrill:created-at"
TAG_CREATED_BY = "kdrill:created-by"
TAG_TEMPLATE = "kdrill:template"
TAG_DRILL_ID = "kdrill:drill-id"
TAG_ENVIRONMENT = "environment"
TAG_OWNER = "owner"


# --- values -----------------------------------------------------------------------------------

_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> timedelta:
    """'30s', '15m', '2h', '1h30m', '1d': a positive duration within MAX_TTL."""
    parts = re.fullmatch(r"(?:\d+[smhd])+", text.strip().lower() or "x")
    if not parts:
        raise LocalEnvError(
            f"--ttl {text!r} is not a duration; use a number with a unit: 30s, 15m, 2h, 1h30m, 1d"
        )
    seconds = sum(int(n) * _TTL_UNITS[u] for n, u in re.findall(r"(\d+)([smhd])", text.lower()))
    ttl = timedelta(seconds=seconds)
    if ttl <= timedelta(0):
        raise LocalEnvError(f"--ttl {text!r} must be longer than 0s")
    if ttl > MAX_TTL:
        raise LocalEnvError(
            f"--ttl {text!r} is longer than {MAX_TTL.total_seconds() / 3600:g}h, the most the "
            "policy pack allows an ephemeral stack; use a shorter --ttl"
        )
    return ttl


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def duration_text(td: timedelta) -> str:
    s = int(td.total_seconds())
    sign, s = ("-", -s) if s < 0 else ("", s)
    if s < 120:
        return f"{sign}{s}s"
    if s < 7200:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"


def check_name(name: str) -> str:
    """An env id given with --name: what follows `env-` in the stack name."""
    name = name.removeprefix(config.ENV_STACK_PREFIX)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", name):
        raise LocalEnvError(
            f"--name {name!r}: use 1-20 lowercase letters, digits or '-', starting with a "
            "letter or digit"
        )
    return name


def apply_sets(cfg: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """A copy of a stack's `config:` mapping with `--set KEY=VALUE` overrides. KEY is a
    `pulumi config set --path` path (`kdrill:regions[1].brokers`; `kdrill:` may be left
    out); VALUE is read as YAML (2 is a number, [a, b] a list)."""
    out = copy.deepcopy(cfg)
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise LocalEnvError(f"--set {item!r}: use KEY=VALUE, e.g. kdrill:regions[1].brokers=2")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise LocalEnvError(f"--set {item!r}: the value is not valid YAML") from None
        steps = re.findall(r"[^.\[\]]+|\[\d+\]", key.strip())
        if not steps or steps[0].startswith("["):
            raise LocalEnvError(f"--set {item!r}: the key must start with a name")
        if ":" not in steps[0]:
            steps[0] = f"kdrill:{steps[0]}"
        node: Any = out
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if step.startswith("["):
                idx = int(step[1:-1])
                if not isinstance(node, list) or idx >= len(node):
                    raise LocalEnvError(f"--set {item!r}: no item {idx} at that path")
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            elif last:
                if not isinstance(node, dict):
                    raise LocalEnvError(f"--set {item!r}: {step!r} is not under a mapping")
                node[step] = value
            else:
                if not isinstance(node, dict):
                    raise LocalEnvError(f"--set {item!r}: {step!r} is not under a mapping")
                node = node.setdefault(step, [] if steps[i + 1].startswith("[") else {})
    return out


# --- records ----------------------------------------------------------------------------------


@dataclass
class EnvRecord:
    env_id: str
    template: str
    kind: str  # "local" (a pair on this machine) or "aws"
    owner: str
    created_at: str  # ISO 8601, UTC
    expires_at: str
    state: str = "creating"  # creating | ready | destroying
    prefix: str | None = None  # local: the pair's name prefix and network
    network: str | None = None
    overrides: list[str] = field(default_factory=list)
    pid: int = 0  # the process that created it (or is destroying it)

    @property
    def stack(self) -> str:
        return f"{config.ENV_STACK_PREFIX}{self.env_id}"

    @property
    def expires(self) -> datetime:
        return parse_time(self.expires_at)

    @property
    def created(self) -> datetime:
        return parse_time(self.created_at)

    def tags(self) -> dict[str, str]:
        return {
            TAG_ENVIRONMENT: "ephemeral",
            TAG_EXPIRES: self.expires_at,
            TAG_ENV_ID: self.env_id,
            TAG_CREATED: self.created_at,
            TAG_CREATED_BY: CREATED_BY,
            TAG_OWNER: self.owner,
            TAG_TEMPLATE: self.template,
            TAG_DRILL_ID: self.env_id,
        }


class Envs:
    """The environments under one state root (default /var/tmp/kdrill, KDRILL_STATE_DIR)."""

    def __init__(self, state_root: Path | None = None):
        self.root = state_root or config.envs_dir().parent
        self.dir = self.root / "envs"

    # --- files ------------------------------------------------------------------------

    def record_path(self, stack: str) -> Path:
        return self.dir / f"{stack}.json"

    def stack_path(self, stack: str) -> Path:
        return self.dir / f"Pulumi.{stack}.yaml"

    def records(self) -> list[EnvRecord]:
        out = []
        for f in sorted(self.dir.glob(f"{config.ENV_STACK_PREFIX}*.json")):
            try:
                out.append(EnvRecord(**json.loads(f.read_text())))
            except (ValueError, TypeError):
                continue  # a torn write: the stack file and tags still name it
        return out

    def get(self, name: str) -> EnvRecord:
        stack = name if name.startswith(config.ENV_STACK_PREFIX) else f"env-{name}"
        f = self.record_path(stack)
        if not f.exists():
            have = ", ".join(r.stack for r in self.records()) or "none"
            raise LocalEnvError(f"no environment {stack!r} (environments: {have})")
        return EnvRecord(**json.loads(f.read_text()))

    def save(self, rec: EnvRecord) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path(rec.stack).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rec), indent=2))
        os.replace(tmp, self.record_path(rec.stack))

    @contextlib.contextmanager
    def lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        """An exclusive flock on envs/<name>.lock; yields False (not held) when `wait` is
        off and another process holds it. The kernel drops it when its holder dies."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f"{name}.lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    def local_stack(self, rec: EnvRecord) -> LocalStack:
        """A local env's stack: in its pair's state dir (what LocalPair.stack is)."""
        d = self.root / rec.prefix if rec.kind == "local" and rec.prefix else self.dir / rec.stack
        return LocalStack(d, stack=rec.stack, stack_file=self.stack_path(rec.stack))

    def stack_tags(self, rec: EnvRecord) -> dict[str, str] | None:
        """The stack's tags as the file backend holds them; None when it has no stack."""
        return read_tags(self.local_stack(rec))

    # --- allocation ---------------------------------------------------------------------

    def in_use(self) -> tuple[set[str], set[ipaddress.IPv4Network]]:
        """Prefixes and /16 networks taken on this machine (see the module docstring)."""
        prefixes: set[str] = set()
        nets: set[ipaddress.IPv4Network] = set()
        for ns in network.namespaces():
            prefixes.add(ns.split("-", 1)[0])
        if self.root.exists():
            for d in self.root.iterdir():
                if d.is_dir() and d.name != "envs":
                    prefixes.add(d.name)
                    state = d / "state.json"
                    with contextlib.suppress(Exception):
                        raw = json.loads(state.read_text()).get("config") or {}
                        nets.add(ipaddress.IPv4Network(raw["kdrill:local"]["network"]))
        for f in [*config.STACKS_DIR.glob("Pulumi.*.yaml"), *self.dir.glob("Pulumi.*.yaml")]:
            with contextlib.suppress(Exception):
                loc = (yaml.safe_load(f.read_text())["config"] or {}).get("kdrill:local") or {}
                prefixes.add(str(loc.get("namePrefix", "kd")))
                nets.add(ipaddress.IPv4Network(loc.get("network", "10.77.0.0/16")))
        for rec in self.records():
            if rec.prefix:
                prefixes.add(rec.prefix)
            if rec.network:
                nets.add(ipaddress.IPv4Network(rec.network))
        nets |= _root_networks()
        return prefixes, nets

    def allocate(self) -> tuple[str, ipaddress.IPv4Network]:
        prefixes, nets = self.in_use()
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

    # --- create -------------------------------------------------------------------------

    def create(
        self,
        template: str,
        ttl: timedelta,
        owner: str,
        name: str | None = None,
        sets: list[str] = (),
        progress: Progress = lambda s: None,
        now: datetime | None = None,
    ) -> EnvRecord:
        """Stack file, record, stack, stamp, then `up`. Anything failing or interrupted after
        the record exists is destroyed before re-raising (nothing half-created stays)."""
        tmpl_name, tmpl_path, tmpl_cfg = config.read_stack(template)
        if tmpl_name.startswith(config.ENV_STACK_PREFIX):
            raise LocalEnvError(f"--from {template}: an env is not a template; name a stack")
        env_id = check_name(name) if name else secrets.token_hex(3)
        stack = f"{config.ENV_STACK_PREFIX}{env_id}"
        kind = "local" if str(tmpl_cfg.get("kdrill:pattern", "local")) == "local" else "aws"
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        cfg = apply_sets(tmpl_cfg, list(sets))
        with self.lock("allocate"):
            if self.record_path(stack).exists() or self.stack_path(stack).exists():
                raise LocalEnvError(f"environment {stack!r} exists; choose another --name")
            rec = EnvRecord(
                env_id=env_id,
                template=tmpl_name,
                kind=kind,
                owner=owner,
                created_at=iso(now),
                expires_at=iso(now + ttl),
                overrides=list(sets),
                pid=os.getpid(),
            )
            if kind == "local":
                prefix, net = self.allocate()
                rec.prefix, rec.network = prefix, str(net)
                cfg["kdrill:local"] = {
                    **(cfg.get("kdrill:local") or {}),
                    "namePrefix": prefix,
                    "network": str(net),
                }
                try:
                    parsed = config.parse(cfg, stack=stack, source=self.stack_path(stack))
                except LocalEnvError as e:  # name what the user gave, not a file not yet written
                    why = str(e).removeprefix(f"{self.stack_path(stack)}: ")
                    raise LocalEnvError(f"--from {tmpl_name} with --set: {why}") from None
                problem = capacity_problem(sum(r.brokers for r in parsed.regions))
                if problem:
                    raise LocalEnvError(f"cannot create an env: {problem}")
            else:
                cfg = aws_env_config(cfg, rec)
                _validate_aws(cfg, stack)
            self.dir.mkdir(parents=True, exist_ok=True)
            header = (
                f"# {stack}: made by `kdrill env create --from {tmpl_name}` "
                f"({tmpl_path}); owner {owner}; expires {rec.expires_at}. Do not edit: "
                "`kdrill env destroy` removes it.\n"
            )
            tmp = self.stack_path(stack).with_suffix(".tmp")
            tmp.write_text(header + yaml.safe_dump({"config": cfg}, sort_keys=False))
            os.replace(tmp, self.stack_path(stack))
            self.save(rec)
        with self.lock(stack):
            try:
                progress(f"{stack}: stack and stamp (expires {rec.expires_at})")
                st = self.local_stack(rec)
                st.ensure()
                if kind == "aws":
                    _drop_local_faults_key(st)
                for k, v in rec.tags().items():
                    st.run(["stack", "tag", "set", k, v], timeout=60).check()
                if kind == "local":
                    self._up_local(rec, progress)
                else:
                    progress(f"{stack}: pulumi up (AWS)")
                    st.up(timeout=3600)
                rec.state = "ready"
                self.save(rec)
            except BaseException:
                with contextlib.suppress(BaseException):
                    progress(f"{stack}: failed or interrupted, destroying it")
                with held_signals():
                    self._destroy_held(rec)
                raise
        return rec

    def _up_local(self, rec: EnvRecord, progress: Progress) -> None:
        from components.local import faultswitch
        from components.local.env import LocalPair

        pair = LocalPair(config.load(rec.stack, self.stack_path(rec.stack)), self.root)
        pair.up(progress=progress)
        progress(f"{rec.stack}: the fault switch")
        faultswitch.deploy(pair)

    # --- destroy ------------------------------------------------------------------------

    def destroy(self, name: str) -> list[str]:
        rec = self.get(name)
        with self.lock(rec.stack, wait=False) as held:
            if not held:
                raise LocalEnvError(
                    f"{rec.stack} is being created or destroyed by another process; try later"
                )
            with held_signals():
                return self._destroy_held(self.get(name))

    def destroy_locked(self, rec: EnvRecord) -> list[str]:
        """Destroy an env whose lock the caller holds (`kdrill run --env create`)."""
        return self._destroy_held(rec)

    def _destroy_held(self, rec: EnvRecord) -> list[str]:
        """Tear the env down (its lock held). The record is `destroying` first and removed
        last: killed anywhere in between, the next destroy or reap finishes."""
        rec.state, rec.pid = "destroying", os.getpid()
        self.save(rec)
        done: list[str] = []
        if rec.kind == "local":
            from components.local.env import LocalPair

            if self.stack_path(rec.stack).exists():
                pair = LocalPair(config.load(rec.stack, self.stack_path(rec.stack)), self.root)
                done += pair.down()
                left = pair.leftovers()
                left = [x for x in left if not x.startswith("state ")]
                if left:
                    raise LocalEnvError(f"{rec.stack}: down left {', '.join(left)}; run reap again")
            if rec.prefix and (self.root / rec.prefix).exists():
                shutil.rmtree(self.root / rec.prefix)  # backend, passphrase, stack config
                done.append(f"state {self.root / rec.prefix}")
        else:
            st = self.local_stack(rec)
            if st.exists() and st.resource_urns():
                if not st.config_file.exists():
                    raise LocalEnvError(
                        f"{rec.stack}: its stack lists resources but {st.config_file} is gone; "
                        "destroy them with pulumi, then run reap again"
                    )
                if st.locked():
                    st.run(["cancel", "--yes"], timeout=60)
                # raises when AWS refuses: the record stays `destroying` and the state is kept,
                # so nothing that still costs money is forgotten
                st.run(
                    ["destroy", "--yes", "--skip-preview", "--config-file", str(st.config_file)],
                    timeout=3600,
                ).check()
                done.append(f"stack {rec.stack} resources")
            if st.dir.exists():
                shutil.rmtree(st.dir)
                done.append(f"state {st.dir}")
        self.stack_path(rec.stack).unlink(missing_ok=True)
        self.record_path(rec.stack).unlink(missing_ok=True)
        (self.dir / f"{rec.stack}.lock").unlink(missing_ok=True)  # held by us: harmless
        done.append(f"stack {rec.stack}")
        return done

    # --- reap ---------------------------------------------------------------------------

    def reap(
        self,
        dry_run: bool = False,
        now: datetime | None = None,
        report: Progress = lambda s: None,
    ) -> list[tuple[str, str]]:
        """Destroy every expired env and finish every destroy a kill interrupted.
        Returns (stack, what happened) pairs. Safe to run from cron and CI at once."""
        now = now or datetime.now(UTC)
        out: list[tuple[str, str]] = []
        with self.lock("reap", wait=False) as held:
            if not held:
                return [("-", "another reap is running; nothing done")]
            for rec in self.records():
                verdict = self._reap_verdict(rec, now)
                if verdict is None:
                    continue
                if verdict.startswith("skip"):
                    out.append((rec.stack, verdict))
                    report(f"{rec.stack}: {verdict}")
                    continue
                if dry_run:
                    out.append((rec.stack, f"would destroy ({verdict})"))
                    continue
                with self.lock(rec.stack, wait=False) as mine:
                    if not mine:
                        out.append((rec.stack, "skip: being created or destroyed right now"))
                        continue
                    report(f"{rec.stack}: destroying ({verdict})")
                    try:
                        with held_signals():
                            self._destroy_held(rec)
                        out.append((rec.stack, f"destroyed ({verdict})"))
                    except LocalEnvError as e:
                        out.append((rec.stack, f"failed: {e}"))
            out += [(s, why) for s, why in self.unstamped_expired(now)]
        return out

    def _reap_verdict(self, rec: EnvRecord, now: datetime) -> str | None:
        """Why `rec` is reaped ("expired ...", "unfinished destroy"), why not ("skip: ..."),
        or None when it is simply not due."""
        tags = self.stack_tags(rec)
        if tags is not None and (
            tags.get(TAG_ENV_ID) != rec.env_id or tags.get(TAG_CREATED_BY) != CREATED_BY
        ):
            return "skip: its stack does not carry this env's stamp (kdrill:env-id, created-by)"
        if rec.state == "destroying":
            return "unfinished destroy"
        if rec.state == "creating" and not _alive(rec.pid):
            return "abandoned create (its creator is gone)"
        expires = parse_time(tags[TAG_EXPIRES]) if tags and TAG_EXPIRES in tags else rec.expires
        if expires > now:
            return None
        if rec.state == "creating" and _alive(rec.pid):
            return None  # its creator runs on (and holds its lock); reaped once it is ready
        return f"expired {duration_text(now - expires)} ago"

    def unstamped_expired(self, now: datetime) -> list[tuple[str, str]]:
        """Stacks in this state root's backends tagged ephemeral and expired that `env create`
        did not stamp: reported, never touched."""
        ours = {(r.prefix, r.stack) for r in self.records()}
        found = []
        for tags_file in self.root.glob("*/pulumi/.pulumi/stacks/*/*.pulumi-tags"):
            stack = tags_file.name.removesuffix(".pulumi-tags")
            prefix = tags_file.parents[4].name
            tags = _read_tags_file(tags_file)
            if tags.get(TAG_ENVIRONMENT) != "ephemeral" or (prefix, stack) in ours:
                continue
            with contextlib.suppress(ValueError, KeyError):
                if parse_time(tags[TAG_EXPIRES]) > now:
                    continue
            found.append(
                (f"{stack} ({prefix})", "skip: expired but not stamped by `kdrill env create`")
            )
        return found


# --- helpers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored while an env is torn down, so a second Ctrl-C
    (or a CI runner's TERM) cannot leave it half destroyed; SIGKILL still can, and the next
    reap finishes it. Handlers are restored after. Main thread only (Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def read_tags(st: LocalStack) -> dict[str, str] | None:
    f = st.backend_dir / ".pulumi" / "stacks" / st.project / f"{st.stack}.pulumi-tags"
    if not st.exists():
        return None
    return _read_tags_file(f)


def _read_tags_file(f: Path) -> dict[str, str]:
    try:
        return dict(json.loads(f.read_text()).get("tags") or {})
    except (FileNotFoundError, ValueError, AttributeError):
        return {}


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def aws_env_config(cfg: dict[str, Any], rec: EnvRecord) -> dict[str, Any]:
    """An AWS template's config stamped as an ephemeral env: the cost tags every resource
    carries (components/aws/tags.py) get the env id as drill id, the owner and the expiry."""
    out = dict(cfg)
    out["kdrill:environment"] = "ephemeral"
    out["kdrill:owner"] = rec.owner
    out["kdrill:drillId"] = rec.env_id
    out["kdrill:envId"] = rec.env_id
    out["kdrill:createdAt"] = rec.created_at
    out["kdrill:expiresAt"] = rec.expires_at
    if isinstance(out.get("kdrill:buckets"), dict) and out["kdrill:buckets"].get("prefix"):
        out["kdrill:buckets"] = {**out["kdrill:buckets"], "prefix": None}  # per-stack names
    return out


def _drop_local_faults_key(st: LocalStack) -> None:
    """LocalStack's config file carries the local fault switch's `kdrill:faults` mapping;
    an AWS stack's `kdrill:faults` is a list (components/aws/faults.py): take it out."""
    data = yaml.safe_load(st.config_file.read_text()) or {}
    (data.get("config") or {}).pop("kdrill:faults", None)
    st.config_file.write_text(yaml.safe_dump(data, sort_keys=False))


def _validate_aws(cfg: dict[str, Any], stack: str) -> None:
    from components.aws.config import ConfigError, parse_stack_config

    try:
        parse_stack_config({k.split(":", 1)[1]: v for k, v in cfg.items() if ":" in k})
    except (ConfigError, ValueError) as e:
        raise LocalEnvError(f"{stack}: {str(e).splitlines()[0]}") from None

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

Side by side. A local env gets its own name prefix and /16, allocated under a lock by
components/local/envplaces.py, which also says when the machine cannot take another pair
(`capacity_problem`); the values the commands take are parsed in envvalues.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from components.local import config, envplaces
from components.local.envplaces import capacity_problem
from components.local.envvalues import (
    MAX_TTL,
    apply_sets,
    check_name,
    duration_text,
    iso,
    parse_time,
    parse_ttl,
)
from components.local.errors import LocalEnvError
from components.local.stack import LocalStack

__all__ = [
    "MAX_TTL",
    "EnvRecord",
    "Envs",
    "apply_sets",
    "capacity_problem",
    "check_name",
    "duration_text",
    "held_signals",
    "iso",
    "parse_time",
    "parse_ttl",
]

Progress = Callable[[str], None]

CREATED_BY = "kdrill env create"
TAG_ENV_ID = "kdrill:env-id"
TAG_EXPIRES = "kdrill:expires-at"
TAG_CREATED = "kdrill:created-at"
TAG_CREATED_BY = "kdrill:created-by"
TAG_TEMPLATE = "kdrill:template"
TAG_DRILL_ID = "kdrill:drill-id"
TAG_ENVIRONMENT = "environment"
TAG_OWNER = "owner"


# --- values -----------------------------------------------------------------------------------

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

    def allocate(self) -> tuple[str, ipaddress.IPv4Network]:
        """A free prefix and /16 for a local env (components/local/envplaces.py)."""
        return envplaces.allocate(self.root, self.dir, self.records())

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

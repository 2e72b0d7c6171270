"""The values `kdrill env` takes: TTLs, env names, `--set` overrides, times.

Each bad value is one LocalEnvError line naming the option and the fix.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from components.local import config
from components.local.errors import LocalEnvError

MAX_TTL = timedelta(hours=72)  # the policy pack's default maxTtlHours

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

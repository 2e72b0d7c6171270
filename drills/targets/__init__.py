"""Drill targets: the environments a drill can run in, behind one protocol.

`open_target(stack)` picks the target for a stack name (or a stack file path):
the local pair for a `local` pattern stack; an AWS stack is refused with one
line until a Pulumi-stack target exists.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components.local import config
from drills.targets.base import Progress, Target, TargetError, TargetFacts
from drills.targets.local import LocalTarget, decode_checkpoint

__all__ = [
    "LocalTarget",
    "Progress",
    "Target",
    "TargetError",
    "TargetFacts",
    "decode_checkpoint",
    "open_target",
    "stack_pattern",
]


def stack_pattern(stack: str) -> str:
    """The stack's `kdrill:pattern` (default `local`); a stack file that does not exist is
    left for the target to report."""
    path = Path(stack) if stack.endswith((".yaml", ".yml")) else config.stack_file(stack)
    if not path.exists():
        return "local"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise TargetError(
            f"{path}: not YAML ({str(e).splitlines()[0]}); fix the stack file"
        ) from None
    cfg = raw.get("config") if isinstance(raw, dict) else None
    return str((cfg or {}).get("kdrill:pattern", "local"))


def open_target(stack: str, keep: bool = False) -> Target:
    """The target for `stack`. Reads files only: nothing is started or touched."""
    pattern = stack_pattern(stack)
    if pattern != "local":
        raise TargetError(
            f"stack {stack!r} is an AWS stack ({pattern}); drills run on the local stack only so far "
            "(a Pulumi-stack target is not implemented yet): use --stack local"
        )
    return LocalTarget.for_stack(stack, keep)

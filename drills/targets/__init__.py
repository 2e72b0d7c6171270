"""Drill targets: the environments a drill can run in, behind one protocol.

`open_target(stack)` picks the target for a stack name (or a stack file path):
the local pair for a `local` pattern stack, `AwsTarget` (drills/targets/aws.py) for
an AWS stack. A stack that does not exist is one line naming the stacks that do.
"""

from __future__ import annotations

from components.local import config
from components.local.errors import LocalEnvError
from drills.targets.aws import AwsTarget
from drills.targets.base import Progress, Target, TargetError, TargetFacts
from drills.targets.kafka_side import decode_checkpoint
from drills.targets.local import LocalTarget

__all__ = [
    "AwsTarget",
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
    """The stack's `kdrill:pattern` (`local` when it names none)."""
    try:
        _, _, cfg = config.read_stack(stack)
    except LocalEnvError as e:
        raise TargetError(str(e)) from None
    return str(cfg.get("kdrill:pattern", "local"))


def open_target(stack: str, keep: bool = False) -> Target:
    """The target for `stack`. Reads files only: nothing is started or touched."""
    pattern = stack_pattern(stack)
    if pattern != "local":
        return AwsTarget.for_stack(stack)
    return LocalTarget.for_stack(stack, keep)

"""Render a kdrill stack under Pulumi's mocks and keep every resource it registers.

`render(config, stack)` (components/aws/mocks.py, shared with `kdrill run --plan`) returns a
`Rendered` with the resources (type, name, inputs, provider, options) and the stack
outputs. Mock ids and outputs are deterministic, so two renders of the same config are
comparable input for input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components.aws.mocks import RecordingMocks, Rendered, Res, render

__all__ = [
    "AWS_STACKS",
    "REPO",
    "RecordingMocks",
    "Rendered",
    "Res",
    "render",
    "render_stack",
    "stack_config",
]

REPO = Path(__file__).resolve().parents[3]
STACKS = REPO / "stacks"
AWS_STACKS = ("msk-use1-usw2", "apache-use1-usw2", "automq-use1-usw2")


def stack_config(stack: str) -> dict[str, Any]:
    """The `kdrill:*` keys of stacks/Pulumi.<stack>.yaml, namespace stripped."""
    data = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in data["config"].items() if k.startswith("kdrill:")}


def render_stack(stack: str) -> Rendered:
    """A checked-in stack file, rendered once per test session."""
    if stack not in _CACHE:
        _CACHE[stack] = render(stack_config(stack), stack)
    return _CACHE[stack]


_CACHE: dict[str, Rendered] = {}

"""What an ephemeral environment has cost so far (`kdrill env list`).

The cost model (drills/cost/model.py) prices the env's inventory -- its template with
overrides, as the stack file in the state directory has it -- from its creation to now.
Every resource was launched for the env, so every line is incremental. A local env is
priced as the AWS regions its regions stand for (as a drill on it would be); traffic is
not counted here (a drill's own cost export has it).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from components.local import config
from components.local.envs import EnvRecord
from drills.cost.catalog import Catalog
from drills.cost.model import Usage, inventory_aws, inventory_local, price


def cost_so_far(
    rec: EnvRecord,
    now: datetime | None = None,
    cat: Catalog | None = None,
    stack_file: Path | None = None,
) -> float:
    """USD at list prices from the env's creation to `now` (0 before it exists).
    `stack_file`: the env's stack file (default: found by name in the state directory)."""
    now = now or datetime.now(UTC)
    _, _, raw = config.read_stack(rec.stack, stack_file)
    if rec.kind == "local":
        inv = inventory_local(config.parse(raw, stack=rec.stack))
    else:
        from components.aws.config import parse_stack_config

        cfg = parse_stack_config({k.split(":", 1)[1]: v for k, v in raw.items() if ":" in k})
        inv = inventory_aws(rec.stack, cfg)
    inv.resources = [replace(r, launched=True) for r in inv.resources]
    end = max(now, rec.created)
    return price(inv, Usage(start=rec.created, end=end), cat or Catalog.load()).total

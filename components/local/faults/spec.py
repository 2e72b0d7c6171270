"""`validate`: a fault spec checked against a local stack's config, before anything is touched.

A thin wrapper over `components.faults.resolve` with the stack's regions and broker
counts; FaultSpec, FaultError and parse_params are re-exported for older imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.faults.errors import FaultError
from components.faults.resolve import resolve
from components.faults.spec import FaultSpec, parse_params

if TYPE_CHECKING:
    from components.local.config import LocalConfig

__all__ = ["FaultError", "FaultSpec", "parse_params", "validate"]


def validate(spec: FaultSpec, cfg: LocalConfig) -> FaultSpec:
    """Check `spec` against the registry and the pair's config; return it with defaults
    filled in (region: the primary unless the kind says otherwise; link: backbone)."""
    return resolve(
        spec,
        regions=[r.name for r in cfg.regions],
        primary=cfg.primary.name,
        standby=cfg.standby.name,
        target="local",
        brokers={r.name: r.brokers for r in cfg.regions},
    )

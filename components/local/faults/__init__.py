"""The fault catalogue for the local regions: specs, the ledger, and apply / clear / observe."""

from components.local.faults.catalogue import apply, clear, ledger, observe, recover
from components.local.faults.spec import CATALOGUE, FaultError, FaultSpec, parse_params, validate

__all__ = [
    "CATALOGUE",
    "FaultError",
    "FaultSpec",
    "apply",
    "clear",
    "ledger",
    "observe",
    "parse_params",
    "recover",
    "validate",
]

"""Faults on the local region pair: the ledger, and apply / clear / recover / observe.

What each kind is and does is its entry in the registry (components/faults/); this
package runs the entries' local behaviour against a LocalPair and keeps the ledger.
"""

from components.local import kernel
from components.local.faults.lifecycle import (
    apply,
    clear,
    clear_many,
    clear_order,
    ledger,
    observe,
    recover,
)
from components.local.faults.spec import FaultError, FaultSpec, parse_params, validate

__all__ = [
    "FaultError",
    "FaultSpec",
    "apply",
    "clear",
    "clear_many",
    "clear_order",
    "kernel",
    "ledger",
    "observe",
    "parse_params",
    "recover",
    "validate",
]

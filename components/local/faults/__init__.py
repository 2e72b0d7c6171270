"""Faults on the local region pair: apply / clear / sweep / recover / observe, with no file.

What each kind is and does is its entry in the registry (components/faults/); this
package runs the entries' local behaviour against a LocalPair. What is applied is read
from the live system; a stack fault's record is its entry in the stack's drill-time
config, a direct fault's is the drill's journal (and `DIRECT`, in the process that
applied it).
"""

from components.faults.registry import Placed
from components.local import kernel
from components.local.faults.lifecycle import (
    DIRECT,
    Applied,
    apply,
    clear,
    clear_many,
    clear_order,
    leftovers,
    observe,
    place,
    present,
    recover,
    sweep,
)
from components.local.faults.spec import FaultError, FaultSpec, parse_params, validate

__all__ = [
    "DIRECT",
    "Applied",
    "FaultError",
    "FaultSpec",
    "Placed",
    "apply",
    "clear",
    "clear_many",
    "clear_order",
    "kernel",
    "leftovers",
    "observe",
    "parse_params",
    "place",
    "present",
    "recover",
    "sweep",
    "validate",
]

"""The old import path of the fault lifecycle (`from components.local.faults import
catalogue; catalogue.apply(...)`), kept while callers move to `components.local.faults`.
Kinds live in the registry, components/faults/."""

from components.local.faults.lifecycle import apply, clear, clear_many, observe, recover

__all__ = ["apply", "clear", "clear_many", "observe", "recover"]

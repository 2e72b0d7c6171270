"""The built-in fault kinds, one module per mechanism, each entry beside its local actions.

Importing this package registers them; the order of the imports below is the order
help and error messages list them in.
"""

# isort: off
from components.faults.builtin import network, processes, capacity, aws, mm2requests, topics
# isort: on

__all__ = ["network", "processes", "capacity", "aws", "mm2requests", "topics"]

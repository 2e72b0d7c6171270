"""The one exception fault code raises for input a user can fix.

It is a `LocalEnvError`, so every CLI path that already prints those as one line
and exits non-zero does the same for faults.
"""

from __future__ import annotations

from components.local.errors import LocalEnvError


class FaultError(LocalEnvError):
    """A fault that cannot be applied as given (unknown kind, region, link, parameter,
    value). Its message is one line naming the bad field and the fix."""

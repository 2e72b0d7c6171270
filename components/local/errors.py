"""The one exception the local runtime raises for conditions a user can fix.

Its message is a single line naming what is wrong and how to fix it; the CLI
prints it as is and exits non-zero, never with a traceback.
"""


class LocalEnvError(Exception):
    """A local-environment problem the user can act on (bad config, not root, already up...)."""

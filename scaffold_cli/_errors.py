"""The one exception type the command line turns into a message."""

from __future__ import annotations


class ScaffoldError(Exception):
    """A failure the user can act on.

    The message is a single line that says what is wrong and what to do about it; the command
    line prints it as ``Error: <message>`` on stderr and exits with status 1, without a traceback.
    """

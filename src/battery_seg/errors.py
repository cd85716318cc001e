"""User-facing errors.

Every problem a user can cause (a missing file, a shape mismatch, a wrong phase set) is raised as
a :class:`BatterySegError` whose message names the problem and the fix. The CLI prints such
messages without a traceback; the widgets show them as notifications. Anything else escaping is a
bug in this package.
"""

from __future__ import annotations


class BatterySegError(ValueError):
    """A problem with the user's input or request, with an actionable message."""


class CancelledError(BatterySegError):
    """The user cancelled a running job; nothing partial was kept."""

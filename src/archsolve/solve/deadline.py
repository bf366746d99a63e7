"""One deadline for a whole solve: tables, counting, Z3 and the explanation share it.

Every loop that can grow calls :meth:`Deadline.check`; Z3 gets
:meth:`Deadline.remaining` as its timeout.  The message quotes the limit the
solve actually ran under (``--time-limit`` beats the file's
``search.time_limit``), so the user knows which number to raise.
"""

from __future__ import annotations

import time

from ..errors import SolverTimeout


class Deadline:
    """A wall-clock limit in seconds, started when the object is made."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = time.monotonic()
        self.at = self.started + limit

    def expired(self) -> bool:
        return time.monotonic() > self.at

    def check(self, phase: str) -> None:
        """Raise :class:`SolverTimeout` naming ``phase`` once the limit has passed."""
        if time.monotonic() > self.at:
            raise self.timeout(phase)

    def timeout(self, phase: str) -> SolverTimeout:
        return SolverTimeout(
            f"no answer within the time limit of {self.limit:g} s ({phase}); "
            "raise search.time_limit or --time-limit, or narrow the search ranges"
        )

    def remaining(self) -> float:
        """Seconds left, at least a millisecond (Z3 reads a zero timeout as "no limit")."""
        return max(self.at - time.monotonic(), 0.001)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

"""One deadline for a whole solve: tables, counting, Z3 and the explanation share it.

Every loop that can grow calls :meth:`Deadline.check`; Z3 gets
:meth:`Deadline.remaining` as its timeout.  The message quotes the limit the
solve actually ran under (``--time-limit`` beats the file's
``search.time_limit``), so the user knows which number to raise.

The deadline also carries the solve's progress to whoever asked for it
(:class:`SolveProgress` at each step of each phase): the library never prints,
the command line draws a status line from these.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError, SolverTimeout


@dataclass(frozen=True)
class SolveProgress:
    """Where a solve is: ``phase`` ("tables", "counting", "optimising", "explaining"), step ``step`` of ``steps``."""

    phase: str
    step: int
    steps: int
    elapsed_s: float


ProgressCallback = Callable[[SolveProgress], None]


class Deadline:
    """A wall-clock limit in seconds, started when the object is made, and the progress listener."""

    def __init__(self, limit: float, progress: ProgressCallback | None = None) -> None:
        if not (isinstance(limit, int | float) and math.isfinite(limit) and limit > 0):
            raise InputError(f"time_limit: expected a positive, finite number of seconds, got {limit!r}")
        self.limit = float(limit)
        self.started = time.monotonic()
        self.at = self.started + self.limit
        self.progress = progress

    def check(self, phase: str) -> None:
        """Raise :class:`SolverTimeout` naming ``phase`` once the limit has passed."""
        if time.monotonic() > self.at:
            raise self.timeout(phase)

    def timeout(self, phase: str) -> SolverTimeout:
        return SolverTimeout(
            f"no answer within the time limit of {self.limit:g} s ({phase}); "
            "raise search.time_limit or --time-limit, or narrow the search ranges"
        )

    def report(self, phase: str, step: int, steps: int) -> None:
        """Tell the listener (if any) where the solve is, and check the deadline."""
        if self.progress is not None:
            self.progress(SolveProgress(phase, step, steps, self.elapsed()))
        self.check(phase)

    def remaining(self) -> float:
        """Seconds left, at least a millisecond (Z3 reads a zero timeout as "no limit")."""
        return max(self.at - time.monotonic(), 0.001)

    def remaining_ms(self) -> int:
        """:meth:`remaining` in whole milliseconds, as Z3's ``timeout`` takes it (an unsigned 32-bit value)."""
        return min(max(int(self.remaining() * 1000), 1), 2**32 - 1)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

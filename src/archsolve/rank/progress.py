"""Progress events: the library never prints, it hands a :class:`RankProgress` to the caller's callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from .values import Candidate, RankProgress


class Reporter:
    """Builds :class:`RankProgress` events (elapsed time since the run started) for an optional callback."""

    def __init__(self, callback: Callable[[RankProgress], None] | None) -> None:
        self.callback = callback
        self.started = time.perf_counter()

    @property
    def active(self) -> bool:
        return self.callback is not None

    def __call__(
        self,
        phase: Literal["model", "search", "race"],
        done: int,
        total: int,
        eta: float | None,
        best: Candidate | None,
        message: str,
    ) -> None:
        if self.callback is None:
            return
        self.callback(
            RankProgress(
                phase=phase,
                done=done,
                total=total,
                elapsed_s=time.perf_counter() - self.started,
                eta_s=eta,
                best_throughput=best.throughput if best else None,
                best_keys=best.keys if best else None,
                message=message,
            )
        )

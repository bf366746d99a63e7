"""Progress events: the library never prints, it hands a :class:`RankProgress` to the caller's callback.

The one exception is a notebook: when ``archsolve.rank`` is called from a
Jupyter kernel without a callback, :func:`notebook_progress` draws a rich
progress bar per phase in the cell's output (a display, not a print to
stdout).  Anywhere else no callback means silence.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Literal

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


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython already imported, its shell a kernel's)."""
    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class NotebookProgress:
    """A rich progress bar per phase in a notebook cell, fed by :class:`RankProgress` events; ``close`` ends it."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[best]}"),
        )
        self.tasks: dict[str, Any] = {}
        self.bars.start()

    def __call__(self, event: RankProgress) -> None:
        task = self.tasks.get(event.phase)
        best = f"best {event.best_throughput:,.1f} samples/s" if event.best_throughput else ""
        if task is None:
            task = self.tasks[event.phase] = self.bars.add_task(event.phase, total=event.total or None, best=best)
        self.bars.update(task, completed=event.done, total=event.total or None, best=best, description=event.phase)

    def close(self) -> None:
        self.bars.stop()


def notebook_progress() -> NotebookProgress | None:
    """A notebook's progress display, or None outside a notebook (or without rich): the library stays silent."""
    if not in_notebook():
        return None
    try:
        return NotebookProgress()
    except ImportError:
        return None

"""Progress of a command's long phases on stderr: a live rich bar per phase, or one line per phase.

The library never prints; the solver and the ranker report events to a
callback, and the command line turns them into :meth:`PhaseProgress.update`
calls.  On a terminal each phase gets its own bar (what it is, done/total,
elapsed, ETA, best so far), and bars stay on screen once finished.  Off a
terminal (a pipe, a file, CI) nothing is drawn while a phase runs: each phase
writes one plain line when it ends, and :meth:`PhaseProgress.close` one
summary line after two phases or more, so a log gets a handful of lines and
no ANSI codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


@dataclass(frozen=True)
class Phase:
    """A phase a command may go through: its short label and what it does, in a few words."""

    label: str
    what: str


#: The phases archsolve reports, by the name the library's events carry.
PHASES = {
    "solve": Phase("solving", "counting every valid design and finding the best (Z3)"),
    "model": Phase("timing steps", "each distinct step alone, to predict whole designs"),
    "search": Phase("measuring designs", "whole designs, the predicted-fastest first"),
    "race": Phase("final race", "finalists and the reference re-timed in turns"),
}


def phase(name: str) -> Phase:
    """The phase called ``name`` (an unknown name is shown as itself)."""
    return PHASES.get(name, Phase(name, ""))


def duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class _State:
    """One phase as reported so far."""

    name: str
    started: float
    #: When the last event came.
    last: float
    done: int = 0
    total: int = 0
    best: str | None = None
    detail: str | None = None
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or self.started) - self.started

    def line(self) -> str:
        """The phase's one line off a terminal: ``measuring designs: 12/12 in 2 min 05 s, best 31.2 samples/s``."""
        best = f", best {self.best}" if self.best else ""
        return f"{phase(self.name).label}: {self.done}/{self.total} in {duration(self.seconds)}{best}"


class PhaseProgress:
    """Draws phases as they are reported; one phase is current, a new name ends it.

    ``enabled`` false (``--quiet``, ``--json``) draws nothing at all.
    ``live`` (default: whether ``stream`` is a terminal) chooses bars over lines.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        enabled: bool = True,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import sys

        from ..core.console import isatty

        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = isatty(self.stream) if live is None else live
        self.clock = clock
        self.started = clock()
        self.phases: list[_State] = []
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    @property
    def current(self) -> _State | None:
        last = self.phases[-1] if self.phases else None
        return last if last is not None and last.ended is None else None

    def update(
        self,
        name: str,
        done: int,
        total: int,
        *,
        eta_s: float | None = None,
        best: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Phase ``name`` has ``done`` of ``total`` finished; ``best`` is the best result so far, as text."""
        if not self.enabled:
            return
        now = self.clock()
        state = self.current
        if state is None or state.name != name:
            self._end(now)
            # Events come as work finishes, so a phase began when the one before it last reported.
            began = self.phases[-1].last if self.phases else self.started
            state = _State(name, began, now)
            self.phases.append(state)
        state.done, state.total, state.detail, state.last = done, total, detail, now
        state.best = best or state.best
        if self.live:
            self._draw(state, eta_s)

    def close(self) -> None:
        """End the current phase and write the summary (off a terminal); safe to call twice."""
        if not self.enabled:
            return
        self._end(self.clock())
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
        elif len(self.phases) > 1 and not self.live:  # one phase has said it all in its own line
            total = duration(self.clock() - self.started)
            parts = ", ".join(
                f"{phase(p.name).label} {duration((p.ended or p.started) - p.started)}" for p in self.phases
            )
            self._write(f"done in {total}: {parts}")
        self.enabled = False

    def __enter__(self) -> PhaseProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- drawing ---------------------------------------------------------------------------------
    def _end(self, now: float) -> None:
        state = self.current
        if state is None:
            return
        state.ended = state.last if state.done >= state.total else now
        if self.live and state.name in self._tasks and self._bars is not None:
            self._bars.update(self._tasks[state.name], completed=state.done, eta="", refresh=True)
        elif not self.live:
            self._write(state.line())

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _draw(self, state: _State, eta_s: float | None) -> None:
        bars = self._bars or self._start_bars()
        fields: dict[str, Any] = {
            "eta": f"ETA {duration(eta_s)}" if eta_s is not None and state.done < state.total else "",
            "best": f"best {state.best}" if state.best else "",
        }
        what = phase(state.name)
        description = f"[bold]{what.label}[/] [dim]{state.detail or what.what}[/]"
        if state.name not in self._tasks:
            self._tasks[state.name] = bars.add_task(description, total=max(state.total, 1), **fields)
        bars.update(
            self._tasks[state.name],
            description=description,
            completed=state.done,
            total=max(state.total, 1),
            **fields,
        )

    def _start_bars(self) -> Progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from ..core.console import make_console

        console = make_console(self.stream)
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[best]}"),
            console=console,
            transient=False,
        )
        self._bars.start()
        return self._bars

"""Clocks for the measuring harness, one per device kind behind one protocol, and the per-device lock.

A :class:`Timer` answers how long ``iterations`` back-to-back calls took.
:class:`CpuTimer` reads ``perf_counter`` (or the process's CPU time);
:class:`CudaTimer` brackets the calls with CUDA events, overwrites a buffer
larger than the L2 cache before each sample (so a sample never starts with the
previous sample's weights and activations still cached, which would flatter
small models), and with ``graphs`` replays a CUDA graph captured once instead
of launching every kernel from Python.

:class:`DeviceLock` is an exclusive file lock per device, held while a module
is being timed, so parallel workers on one machine (several processes sharing
a study, two problems ranked at once) take turns instead of timing each
other's load.  Torch is imported only by the CUDA timer.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..errors import MeasureError, first_line

if TYPE_CHECKING:
    import torch

#: What the flush buffer is sized against when the device does not say how large its L2 is.
FALLBACK_L2_BYTES = 64 * 2**20


class Timer(Protocol):
    """A clock for ``iterations`` back-to-back calls of ``run``.

    ``module`` is what is being timed; real timers ignore it, a fake timer
    can derive a deterministic duration from it.
    """

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float: ...


class CpuTimer:
    """``perf_counter`` around the calls: CPU work is synchronous.

    With ``cpu_clock`` it reads the process's CPU time instead: time the
    process was descheduled (another job on a shared machine) is not counted.
    That equals wall time only when torch runs one thread (``threads = 1``);
    with more threads it sums their CPU time.
    """

    def __init__(self, cpu_clock: bool = False) -> None:
        self.clock = time.process_time if cpu_clock else time.perf_counter

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
        start = self.clock()
        for _ in range(iterations):
            run()
        return self.clock() - start


def flush_bytes(l2_bytes: int | None) -> int:
    """Bytes to overwrite between samples: twice the L2 cache (a buffer merely as large can stay partly cached)."""
    return 2 * (l2_bytes if l2_bytes and l2_bytes > 0 else FALLBACK_L2_BYTES)


class CudaTimer:
    """CUDA events around the calls, synchronised on the end event (host timers would miss queued kernels).

    Before each sample a buffer of :func:`flush_bytes` is zeroed (outside the
    timed window), evicting L2.  With ``graphs`` the first call of a runner
    captures it into a CUDA graph (after three warm-up calls on a side stream,
    as torch requires) and every timed call replays that graph: what is timed
    is the kernels, without Python's launch overhead.
    """

    def __init__(self, device: torch.device, graphs: bool = False) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.graphs = graphs
        l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", None)
        self.flush = torch.empty(flush_bytes(l2) // 4, dtype=torch.float32, device=device)
        self.captured: weakref.WeakKeyDictionary[Callable[[], object], Callable[[], object]] = (
            weakref.WeakKeyDictionary()
        )

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
        torch = self.torch
        call = self._graph(run) if self.graphs else run
        self.flush.zero_()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iterations):
            call()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / 1000.0

    def _graph(self, run: Callable[[], object]) -> Callable[[], object]:
        found = self.captured.get(run)
        if found is not None:
            return found
        torch = self.torch
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                run()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        self.captured[run] = graph.replay
        return graph.replay


#: What a timed call may raise and still leave the other modules to time (a failing forward).
FAILURES = (RuntimeError, ValueError, TypeError, IndexError)


def round_robin(
    timer: Timer,
    prepared: list[Any],
    samples: list[list[float]],
    timed: list[float],
    rounds: int,
    keep: Callable[[Sequence[Sequence[float]]], Sequence[bool]] | None,
) -> None:
    """Take ``rounds`` rounds of one sample per module, rotating the first, into ``samples`` and ``timed``.

    ``prepared[i]`` is ``(run, module, inner)``, or an exception for a module
    that could not run (skipped); a module that raises while timed is
    replaced by its exception.  ``keep`` (if given) answers after each round
    which modules stay in; none left ends the rounds.
    """
    active = [True] * len(prepared)
    for r in range(rounds):
        if not any(active):
            return
        for k in range(len(prepared)):
            i = (k + r) % len(prepared)
            entry = prepared[i]
            if isinstance(entry, Exception) or not active[i]:
                continue
            run, module, inner = entry
            window = time.perf_counter()
            try:
                samples[i].append(timer.time(run, inner, module) / inner)
            except FAILURES as exc:
                prepared[i] = MeasureError(first_line(exc))
            timed[i] += time.perf_counter() - window
        if keep is not None:
            active = [a and bool(v) for a, v in zip(active, keep(samples), strict=True)]


def make_timer(device: torch.device, *, cpu_clock: bool, graphs: bool) -> Timer:
    """The device's timer: CUDA events (optionally graph replay) on CUDA, ``perf_counter``/CPU time on CPU."""
    if device.type == "cuda":
        return CudaTimer(device, graphs=graphs)
    return CpuTimer(cpu_clock)


def lock_path(device: str, directory: Path | None = None) -> Path:
    """The lock file of ``device`` (``cpu``, ``cuda:0``): one per machine, in the temporary directory by default."""
    base = directory or Path(os.environ.get("ARCHSOLVE_LOCK_DIR") or tempfile.gettempdir())
    return base / f"archsolve-measure-{re.sub(r'[^a-z0-9]+', '-', device.lower())}.lock"


class DeviceLock:
    """An exclusive ``flock`` on the device's lock file while a module is timed; re-entrant within one process.

    Where the platform has no ``fcntl`` (Windows) it does nothing: timings may
    then overlap, as they did before the lock.  ``waited_s`` adds up the time
    spent waiting for another process.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.depth = 0
        self.waited_s = 0.0
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self.depth > 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def _acquire(self) -> None:
        self.depth += 1
        if self.depth > 1:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "ab")  # noqa: SIM115 - held open for as long as the lock is
        started = time.perf_counter()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            self.depth -= 1
            raise
        self.waited_s += time.perf_counter() - started
        self._file = handle

    def _release(self) -> None:
        self.depth -= 1
        if self.depth > 0 or self._file is None:
            return
        handle, self._file = self._file, None
        handle.close()  # closing the descriptor releases the flock

"""The one place that times a torch module: devices, warm-up, synchronisation and statistics.

FLOP counts do not predict speed (a k2 s2 and a k4 s2 p1 transposed conv
differ several-fold in real time, and the ratio depends on device, dtype and
memory layout), so archsolve measures.  Measuring right is easy to get wrong,
hence one module:

* the device is resolved once (``auto`` = first CUDA device if there is one);
* dtypes other than float32 run under ``torch.autocast`` (CUDA: bfloat16 or
  float16; CPU: bfloat16 only — CPU float16 autocast is refused, since it is
  slow and poorly supported);
* ``inference`` runs under ``torch.inference_mode`` with the module in eval
  mode; ``train`` times forward + backward with the module in train mode;
* warm-up runs first (they also let cuDNN's autotuner and oneDNN pick and
  compile kernels): at least ``warmup`` runs, continuing (up to four times as
  many) while runs still get markedly faster; then ``repeats`` timed samples.
  Each sample runs the module ``inner`` times back to back, ``inner`` chosen
  from the fastest warm-up so one sample lasts at least ``min_sample_s`` (tiny
  modules finish in microseconds, below the timer's useful resolution);
* CUDA samples are timed with CUDA events and synchronised on the end event,
  after a write larger than L2 (optionally replaying a CUDA graph,
  ``cuda_graphs``); CPU samples with ``time.perf_counter``, or with ``clock = "cpu"`` the
  process's CPU time (``time.process_time``), which ignores time the process
  was descheduled — steadier on a shared machine, equal to wall time with
  ``threads = 1``;
* median and inter-quartile range summarise the samples; when IQR/median
  exceeds ``max_spread`` the samples are taken again (at most ``retries``
  times) and the tightest attempt is kept, flagged if still too wide;
* peak memory is CUDA's ``max_memory_allocated`` above what was allocated
  before the runs (activations, gradients, workspaces).  On CPU it is
  ``None``: torch keeps no CPU allocator statistics, tracemalloc does not see
  torch's allocations, and RSS deltas hide memory the allocator reuses.

* one measurement at a time per device on a machine: a file lock
  (:class:`~.timers.DeviceLock`) is held while a module is timed, so parallel
  workers take turns instead of timing each other.

The timing source is injectable (:class:`Timer`, :mod:`.timers`) so the ranking logic can be
tested deterministically with a fake clock.  Torch is imported only when a
:class:`Measurer` is created; :class:`MeasureSettings` is light to validate.
"""

from __future__ import annotations

import contextlib
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import InputError, Issue, MeasureError, first_line
from .settings import MeasureSettings
from .timers import DeviceLock, Timer, lock_path, make_timer, round_robin

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Environment:
    """Where a measurement was taken: enough to tell whether two results are comparable."""

    torch: str
    device: str
    device_name: str
    threads: int
    cuda: str | None
    cudnn: int | None
    python: str
    platform: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    """One candidate's timing: per-batch seconds, their spread, throughput and the context it was taken in.

    ``settings.device`` is the resolved device (never ``auto``).  ``timed_s``
    is the wall time spent inside timed windows, for overhead accounting.
    """

    median_s: float
    iqr_s: float
    samples_s: tuple[float, ...]
    inner: int
    attempts: int
    flagged: bool
    peak_memory_bytes: int | None
    memory_note: str
    timed_s: float
    settings: MeasureSettings
    env: Environment

    @property
    def spread(self) -> float:
        """IQR relative to the median: the noise of this result."""
        return self.iqr_s / self.median_s if self.median_s > 0 else math.inf

    @property
    def throughput(self) -> float:
        """Samples per second (batch size / median seconds per batch)."""
        return self.settings.batch_size / self.median_s if self.median_s > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "throughput": self.throughput,
            "median_s": self.median_s,
            "iqr_s": self.iqr_s,
            "spread": self.spread,
            "samples": len(self.samples_s),
            "inner": self.inner,
            "attempts": self.attempts,
            "flagged": self.flagged,
            "peak_memory_bytes": self.peak_memory_bytes,
            "memory_note": self.memory_note,
            "settings": self.settings.to_dict(),
            "env": self.env.to_dict(),
        }


def median_iqr(samples: Sequence[float]) -> tuple[float, float]:
    """Median and inter-quartile range (quartiles by linear interpolation, as numpy's default)."""
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1:
        return float(samples[0]), 0.0
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q2, q3 - q1


class Measurer:
    """Times modules under one :class:`MeasureSettings` on one resolved device.

    Creating it imports torch, resolves the device (``InputError`` for a
    device that is not there or a dtype it cannot run), applies ``threads``
    (``torch.set_num_threads``: process-wide, as any CPU timing needs) and
    records the :class:`Environment`.
    """

    def __init__(self, settings: MeasureSettings, timer: Timer | None = None, lock: DeviceLock | None = None) -> None:
        import torch

        self._torch = torch
        self.device = _resolve_device(settings.device)
        if self.device.type == "cpu" and settings.dtype == "float16":
            raise InputError(
                Issue(
                    "dtype", "float16 is not supported for measuring on CPU; use bfloat16 or float32, or a CUDA device"
                )
            )
        if settings.threads is not None:
            torch.set_num_threads(settings.threads)
        self.settings = replace(settings, device=str(self.device))
        if settings.clock == "cpu" and self.device.type == "cuda":
            raise InputError(Issue("clock", "the cpu clock times CPU work; CUDA work is timed with CUDA events"))
        if settings.cuda_graphs and self.device.type != "cuda":
            raise InputError(Issue("cuda_graphs", f"CUDA-graph replay needs a CUDA device, not {self.device}"))
        self.timer: Timer = timer or make_timer(
            self.device, cpu_clock=settings.clock == "cpu", graphs=settings.cuda_graphs
        )
        #: One measurement at a time per device on this machine (other processes wait their turn).
        self.lock = lock or DeviceLock(lock_path(str(self.device)))
        self.env = _environment(self.device)

    def measure(
        self,
        module: torch.nn.Module,
        sample_shape: Sequence[int],
        *,
        repeats: int | None = None,
        retries: int | None = None,
    ) -> Measurement:
        """Time ``module`` on a random batch of ``(batch_size, *sample_shape)``; ``MeasureError`` if it fails.

        ``repeats`` and ``retries`` override the settings' (screening takes a
        few samples once; the race decides).
        """
        torch = self._torch
        shape = tuple(int(v) for v in sample_shape)
        again = self.settings.retries if retries is None else retries
        try:
            with self.lock():
                return self._measure(module, shape, repeats or self.settings.repeats, again)
        except torch.cuda.OutOfMemoryError as exc:
            self._release()
            raise MeasureError(f"out of memory on {self.env.device_name}: {first_line(exc)}") from exc
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            self._release()
            raise MeasureError(first_line(exc)) from exc

    def interleaved(
        self,
        items: Sequence[tuple[torch.nn.Module, Sequence[int]]],
        rounds: int,
        *,
        keep: Callable[[Sequence[Sequence[float]]], Sequence[bool]] | None = None,
    ) -> list[Measurement | MeasureError]:
        """Time several modules round-robin in this process: A B C A B C …, one sample each per round.

        Each module is warmed up first (and gets its own ``inner``); the
        rounds then interleave them, rotating the starting module, so drift
        (turbo, thermal, another job on the machine) hits all of them alike
        instead of whichever happened to be timed last.  An item whose build
        or forward fails yields its :class:`MeasureError` and drops out; the
        others go on.

        ``keep``, when given, is asked after every round with the samples so
        far (per item, seconds per call) and answers which items stay in; an
        item it drops takes no more samples (racing: a design that cannot win
        is not timed further), and all of them dropped ends the rounds early.
        """
        with self.lock():
            return self._interleaved(items, rounds, keep)

    def _interleaved(
        self,
        items: Sequence[tuple[torch.nn.Module, Sequence[int]]],
        rounds: int,
        keep: Callable[[Sequence[Sequence[float]]], Sequence[bool]] | None,
    ) -> list[Measurement | MeasureError]:
        s = self.settings
        prepared: list[tuple[Callable[[], object], torch.nn.Module, int] | MeasureError] = []
        samples: list[list[float]] = [[] for _ in items]
        timed = [0.0] * len(items)
        with self._contexts():
            for module, shape in items:
                try:
                    prepared.append(self._prepare(module, tuple(int(v) for v in shape)))
                except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                    self._release()
                    prepared.append(MeasureError(first_line(exc)))
            round_robin(self.timer, prepared, samples, timed, rounds, keep)
        results: list[Measurement | MeasureError] = []
        for entry, taken, spent in zip(prepared, samples, timed, strict=True):
            if isinstance(entry, MeasureError):
                results.append(entry)
                continue
            median, iqr = median_iqr(taken)
            results.append(
                Measurement(
                    median_s=median,
                    iqr_s=iqr,
                    samples_s=tuple(taken),
                    inner=entry[2],
                    attempts=1,
                    flagged=_spread(median, iqr) > s.max_spread,
                    peak_memory_bytes=None,
                    memory_note="not measured when timings are interleaved",
                    timed_s=spent,
                    settings=s,
                    env=self.env,
                )
            )
        return results

    # --- internals -------------------------------------------------------------------------------
    def _prepare(
        self, module: torch.nn.Module, sample_shape: tuple[int, ...]
    ) -> tuple[Callable[[], object], torch.nn.Module, int]:
        """Module and input on the device in the measured layout and mode, warmed up; the runner and ``inner``."""
        torch = self._torch
        s = self.settings
        # A private generator: the same input every time, without touching the caller's random state.
        noise = torch.Generator().manual_seed(0)
        x = torch.randn(s.batch_size, *sample_shape, generator=noise).to(self.device)
        module = module.to(self.device)
        layout = _memory_format(torch, x.dim()) if s.channels_last else None
        if layout is not None:
            module = module.to(memory_format=layout)  # type: ignore[call-overload]
            x = x.contiguous(memory_format=layout)
        module.train(s.mode == "train")
        run = _runner(torch, s, self.device, module, x)
        warm: list[float] = []
        while len(warm) < 4 * s.warmup:
            warm.append(self.timer.time(run, 1, module))
            if len(warm) >= s.warmup and (len(warm) < 2 or warm[-1] > 0.67 * warm[-2]):
                break  # stopped getting markedly faster: caches, allocator and kernel choices settled
        fastest = min(warm)
        inner = max(1, min(10_000, math.ceil(s.min_sample_s / fastest))) if fastest > 0 else 1
        return run, module, inner

    def _measure(
        self, module: torch.nn.Module, sample_shape: tuple[int, ...], repeats: int, retries: int
    ) -> Measurement:
        torch = self._torch
        s = self.settings
        cuda = self.device.type == "cuda"
        with self._contexts():
            if cuda:
                torch.cuda.synchronize(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
                base = torch.cuda.memory_allocated(self.device)
            run, module, inner = self._prepare(module, sample_shape)
            timed_s = 0.0
            best: tuple[float, float, tuple[float, ...]] | None = None
            attempts = 0
            while attempts <= retries:
                attempts += 1
                window = time.perf_counter()
                samples = tuple(self.timer.time(run, inner, module) / inner for _ in range(repeats))
                timed_s += time.perf_counter() - window
                median, iqr = median_iqr(samples)
                if best is None or _spread(median, iqr) < _spread(best[0], best[1]):
                    best = (median, iqr, samples)
                if _spread(median, iqr) <= s.max_spread:
                    break
            assert best is not None
            if cuda:
                peak: int | None = int(torch.cuda.max_memory_allocated(self.device) - base)
                note = "CUDA max_memory_allocated above the weights and input"
            else:
                peak, note = None, "not measured on CPU (torch keeps no CPU allocator statistics)"
        median, iqr, samples = best
        return Measurement(
            median_s=median,
            iqr_s=iqr,
            samples_s=samples,
            inner=inner,
            attempts=attempts,
            flagged=_spread(median, iqr) > s.max_spread,
            peak_memory_bytes=peak,
            memory_note=note,
            timed_s=timed_s,
            settings=s,
            env=self.env,
        )

    @contextlib.contextmanager
    def _contexts(self) -> Iterator[None]:
        with _cudnn(self._torch, self.settings, self.device), _grad_context(self._torch, self.settings):
            yield

    def _release(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()


def _runner(torch: Any, settings: MeasureSettings, device: torch.device, module: Any, x: Any) -> Callable[[], object]:
    """One timed call: forward under autocast (inference), or forward + backward (train)."""

    @contextlib.contextmanager
    def autocast() -> Iterator[None]:
        if settings.dtype == "float32":
            yield
            return
        with torch.autocast(device.type, dtype=getattr(torch, settings.dtype)):
            yield

    if settings.mode == "inference":

        def infer() -> object:
            with autocast():
                return module(x)

        return infer

    def train() -> object:
        module.zero_grad(set_to_none=True)
        with autocast():
            out = module(x)
        out.float().mean().backward()
        return None

    return train


def _grad_context(torch: Any, settings: MeasureSettings) -> contextlib.AbstractContextManager[Any]:
    return torch.inference_mode() if settings.mode == "inference" else contextlib.nullcontext()


@contextlib.contextmanager
def _cudnn(torch: Any, settings: MeasureSettings, device: torch.device) -> Iterator[None]:
    """``cudnn.benchmark`` on for the duration of a CUDA measurement, restored afterwards."""
    backend: Any = torch.backends.cudnn
    before = backend.benchmark
    if device.type == "cuda":
        backend.benchmark = settings.cudnn_benchmark
    try:
        yield
    finally:
        backend.benchmark = before


def _spread(median: float, iqr: float) -> float:
    return iqr / median if median > 0 else math.inf


def _memory_format(torch: Any, ndim: int) -> Any:
    """channels_last for 4D inputs, channels_last_3d for 5D; None where torch has no such layout."""
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(ndim)


def _resolve_device(name: str) -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(Issue("device", "'mps' requested but torch sees no Apple Metal device; use cpu or auto"))
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise InputError(Issue("device", f"{name!r} requested but torch sees no CUDA device; use cpu or auto"))
    index = int(name.split(":")[1]) if ":" in name else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(Issue("device", f"{name!r} requested but only {count} CUDA device(s) are present"))
    return torch.device("cuda", index)


def _environment(device: torch.device) -> Environment:
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None  # type: ignore[no-untyped-call]
    return Environment(
        torch=torch.__version__,
        device=str(device),
        device_name=name,
        threads=torch.get_num_threads(),
        cuda=torch.version.cuda,
        cudnn=cudnn,
        python=platform.python_version(),
        platform=platform.platform(),
    )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"

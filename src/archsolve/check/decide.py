"""Stage 3c: decide every size of every ``?`` axis: the compiled graph where it can, the model where it must.

The graph (:class:`~archsolve.check.program.Program`) answers most sizes from the catalog's
arithmetic.  A whole forward pass on the meta device runs only

- to find a first size that runs (the one the graph is recorded at),
- where a recorded branch of the model's Python flips (:class:`~archsolve.check.graph.Diverged`),
- as a handful of spot checks per axis; if one disagrees, every size of that axis runs on
  the meta device (said in the report).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from ..errors import InputError, SolverTimeout
from .capture import Trace
from .graph import Diverged, Failure, Shapes
from .program import Program
from .runner import Log, ModelRunner
from .target import InputShape

#: Sizes tried first when looking for one that runs (common image sizes, then small ones).
PREFERRED = (256, 224, 512, 128, 384, 320, 192, 160, 96, 64, 448, 640, 768, 1024, 32, 48, 80, 112, 16, 8)
#: Whole-model spot checks per axis.
SPOT_CHECKS = 2
#: Logged forwards looking for the smallest size where no inner size is 1.
SETTLE = 4
#: Graphs recorded (one per branch pattern) before the sizes whose branches flip are run instead.
MAX_GRAPHS = 8


@dataclass(frozen=True)
class Verdict:
    """One size: the output shapes where it runs, else where it breaks; ``by`` says who decided."""

    size: int
    out: Shapes | None
    failure: Failure | None
    by: str  # "catalog" (the compiled graph), "meta" or "cpu" (a whole forward on that device)
    reaches_one: bool = False  # an inner size that follows the axis is 1 here (torch.export specializes it)


def verdict_of(n: int, out: Shapes | Failure, by: str, reaches: bool = False) -> Verdict:
    return Verdict(n, None, out, by) if isinstance(out, Failure) else Verdict(n, out, None, by, reaches)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the check (batch norm uses running stats), the caller's mode restored after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


def _candidates(model: nn.Module, shape: InputShape, low: int, high: int) -> Iterator[dict[int, int]]:
    """Sizes for the ``?`` axes to try first: the model's own ``in_shape`` (archsolve's emitted models have one),
    common sizes on every axis, mixes of two common sizes, then every size of the range on every axis."""
    free = shape.free
    declared = getattr(model, "in_shape", None)
    if isinstance(declared, tuple) and len(declared) == len(shape.dims) - 1:
        sizes = {a: declared[a - 1] for a in free}
        if all(isinstance(n, int) and low <= n <= high for n in sizes.values()):
            yield sizes
    common = [n for n in PREFERRED if low <= n <= high]
    for n in common:
        yield dict.fromkeys(free, n)
    if len(free) > 1:
        for a in common[:8]:
            for b in common[:8]:
                if a != b:
                    yield {axis: (a if i % 2 == 0 else b) for i, axis in enumerate(free)}
    for n in range(low, high + 1):
        if n not in common:
            yield dict.fromkeys(free, n)


def find_reference(runner: ModelRunner, shape: InputShape, low: int, high: int, deadline: float
                   ) -> tuple[dict[int, int], Trace]:
    """Sizes of the ``?`` axes at which the model runs, traced there; InputError if none in the range runs."""
    first: tuple[dict[int, int], Failure] | None = None
    for sizes in _candidates(runner.model, shape, low, high):
        if time.monotonic() > deadline:
            break
        out = runner.trace(shape.at(sizes))
        if not isinstance(out, Failure):
            return sizes, out
        first = first or (sizes, out)
    assert first is not None
    sizes, failure = first
    rank = len(shape.dims)
    raise InputError(
        f"the model fails at every size tried for input {shape} (sizes {low}..{high} on the ? axes, rank {rank}); "
        f"at {shape.at(sizes)}: {failure.label}: {failure.reason}"
    )


class AxisDecider:
    """Every size of one axis, the others held at the reference size.

    ``method``: ``graph`` (the compiled graph, whole forwards only where it cannot decide), ``run``
    (a CPU forward per size, the meta device where one would not fit in memory) or ``auto``:
    ``run`` where the model has calls the meta device does not check (index ops) or where
    timing says a forward per size costs less than the graph, else ``graph``.

    Where a recorded branch flips, the model is traced again at that size and the new graph
    joins the others: each size is decided by the first graph whose branches all hold there, so a
    model that pads odd sizes costs one trace per branch pattern, not one forward per size.  Past
    :data:`MAX_GRAPHS` graphs (a loop over a size has one per size) the remaining sizes are run.
    """

    def __init__(
        self,
        programs: list[Program],
        runner: ModelRunner,
        shape: InputShape,
        reference: dict[int, int],
        deadline: float,
        method: str = "auto",
        seed: int = 0,
    ) -> None:
        self.programs, self.runner, self.shape = programs, runner, shape
        self.reference, self.deadline = reference, deadline
        self.method = method
        self.seed = seed
        self.diverged: list[tuple[int, str]] = []
        self.disagreed: int | None = None
        self.why_run: str | None = None  # why sizes were decided by running the model, for the report
        self.logs: dict[str, Log] = {}  # each device's forward at the reference size, for inner sizes of 1

    def shape_at(self, axis: int, n: int) -> tuple[int, ...]:
        sizes = {**self.reference, axis: n}
        return self.shape.at(sizes)

    def by_model(self, shape: tuple[int, ...], n: int, logged: bool = False) -> Verdict:
        """One forward: on CPU where it fits in memory, else on the meta device; ``logged``: with every
        inner shape, to tell whether one that follows the axis reaches 1 (see :func:`reaches_one`)."""
        device = "cpu" if self.runner.cpu_fits(self.programs[0].trace, self._scale(shape)) else "meta"
        run = self.runner.cpu if device == "cpu" else self.runner
        if not logged:
            return verdict_of(n, run(shape), device)
        reference = self.logs.get(device)
        if reference is None:
            reference = self.logs[device] = []
            run(self.shape.at(self.reference), reference)
        log: Log = []
        out = run(shape, log)
        return verdict_of(n, out, device, not isinstance(out, Failure) and reaches_one(log, reference))

    def settle_ones(self, axis: int, verdicts: list[Verdict]) -> list[Verdict]:
        """``reaches_one`` of the sizes decided by forwards: from the smallest size that runs up to the first
        where no inner size is 1 (inner sizes grow with the input: larger ones are taken not to reach it)."""
        out = list(verdicts)
        tries = 0
        for i, v in enumerate(out):
            if v.out is None or v.by == "catalog" or v.reaches_one:
                continue
            if tries == SETTLE:  # still at 1 (or a loop changes the forward): the rest is taken to reach it
                out[i] = replace(v, reaches_one=True)
                continue
            tries += 1
            redone = self.by_model(self.shape_at(axis, v.size), v.size, logged=True)
            out[i] = redone if redone.out == v.out else v
            if not out[i].reaches_one:
                break
        return out

    def _scale(self, shape: tuple[int, ...]) -> float:
        return math.prod(shape) / max(1, math.prod(self.shape.at(self.reference)))

    def decide(self, axis: int, sizes: Sequence[int]) -> list[Verdict]:
        sizes = list(sizes)
        method = self.choose(axis, sizes)
        verdicts: list[Verdict] = []
        for n in sizes:
            if time.monotonic() > self.deadline:
                raise SolverTimeout(f"check: the time limit ran out at size {n} of axis {axis}")
            shape = self.shape_at(axis, n)
            verdicts.append(self.by_model(shape, n) if method == "run" else self.decide_one(shape, n))
        if method == "graph":
            bad = self.spot_check(axis, verdicts)
            if bad is not None:
                self.disagreed = bad
                verdicts = [v if v.by != "catalog" else self.by_model(self.shape_at(axis, v.size), v.size)
                            for v in verdicts]
        return self.settle_ones(axis, verdicts)

    def choose(self, axis: int, sizes: Sequence[int]) -> str:
        """``graph`` or ``run`` for this axis (the reason kept in ``why_run``)."""
        trace = self.programs[0].trace
        largest = self._scale(self.shape_at(axis, max(sizes)))
        fits = self.runner.cpu_fits(trace, largest)
        checked = self.programs[0].value_checked()
        if checked:  # whatever the method: the meta device's answer cannot stand
            if fits:
                self.why_run = f"{checked[0]} checks index values on CPU only: every size run on CPU"
                return "run"
            self.why_run = f"{checked[0]} checks index values on CPU only, and a CPU run would not fit in memory"
            return "graph"
        if self.method != "auto":
            self.why_run = "every size run (asked for)" if self.method == "run" else None
            return self.method
        if not fits:
            return "graph"
        ref = self.shape.at(self.reference)
        self.logs["cpu"] = []
        _, cpu_seconds = self.runner.time_cpu(ref, self.logs["cpu"])
        ref_n = max(1, ref[axis])
        cpu_cost = cpu_seconds * sum(max(0.5, n / ref_n) for n in sizes)
        start = time.perf_counter()
        probes = sizes[:: max(1, len(sizes) // 3)][:3]
        for n in probes:
            self.programs[0].run(self.shape_at(axis, n))
        graph_cost = (time.perf_counter() - start) / max(1, len(probes)) * len(sizes) + SPOT_CHECKS * cpu_seconds
        if cpu_cost < graph_cost:
            self.why_run = "a CPU forward per size costs less than the graph here: every size run on CPU"
            return "run"
        return "graph"

    def decide_one(self, shape: tuple[int, ...], n: int) -> Verdict:
        first: Diverged | None = None
        for program in self.programs:
            env, out = program.env_at(shape)
            if not isinstance(out, Diverged):
                low = not isinstance(out, Failure) and reaches_one(env, program.trace.shapes)
                return verdict_of(n, out, "catalog", low)
            first = first or out
        assert first is not None
        self.diverged.append((n, f"{first.guard.where or '<model>'}: {first.guard.text}"))
        if len(self.programs) >= MAX_GRAPHS or first.guard.loop:
            # A loop over the size makes a new graph at every size: a forward costs less than a trace.
            self.why_run = f"the graph changes with the size ({first.guard.text}): those sizes run on the model"
            return self.by_model(shape, n)
        trace = self.runner.trace(shape)
        if isinstance(trace, Failure):
            return Verdict(n, None, trace, "meta")
        program = Program(trace)
        self.programs.append(program)
        env, out = program.env_at(shape)
        if isinstance(out, Diverged):  # a graph that does not even hold at its own size: trust only the model
            return self.by_model(shape, n)
        return verdict_of(n, out, "meta", not isinstance(out, Failure) and reaches_one(env, trace.shapes))

    def spot_check(self, axis: int, verdicts: Sequence[Verdict]) -> int | None:
        """The first size where the model itself disagrees with the graph, among a few telling ones."""
        graph = [v for v in verdicts if v.by == "catalog"]
        if not graph:
            return None
        runs = [v for v in graph if v.out is not None]
        picks: list[Verdict] = []
        if runs:  # the edges: the smallest size that runs, the first failing above it, the largest, below
            above = [v for v in graph if v.out is None and v.size > runs[0].size]
            below = [v for v in graph if v.out is None and v.size < runs[0].size]
            picks += [runs[0], *above[:1], runs[-1], *below[-1:]]
        rng = random.Random(self.seed + axis)
        picks += rng.sample(graph, min(len(graph), max(0, SPOT_CHECKS - len(picks))))
        for v in list(dict.fromkeys(picks))[:SPOT_CHECKS]:
            real = self.runner(self.shape_at(axis, v.size))
            if isinstance(real, Failure) != (v.out is None) or (v.out is not None and real != v.out):
                return v.size
        return None


def reaches_one(shapes: Sequence[tuple[int, ...]], reference: Sequence[tuple[int, ...]]) -> bool:
    """Whether an inner size is 1 here that is not 1 at the reference size (so it follows the axis).

    torch.export specializes a symbolic size that reaches 1; a Dim must start above such sizes.
    Forwards of different lengths (a loop over the size) cannot be compared: True."""
    if len(shapes) != len(reference):
        return True
    for a, b in zip(shapes, reference, strict=True):
        if len(a) != len(b):
            return True
        if any(x == 1 and y != 1 for x, y in zip(a, b, strict=True)):
            return True
    return False


def decide_all(
    model: nn.Module, shape: InputShape, low: int, high: int, time_limit: float, method: str = "auto"
) -> tuple[list[Program], ModelRunner, dict[int, int], dict[int, tuple[list[Verdict], AxisDecider]]]:
    """Record the graph at a size that runs, then decide every size of every ``?`` axis."""
    deadline = time.monotonic() + time_limit
    runner = ModelRunner(model)
    with evaluating(runner.model):
        reference, trace = find_reference(runner, shape, low, high, deadline)
        programs = [Program(trace)]
        results: dict[int, tuple[list[Verdict], AxisDecider]] = {}
        for axis in shape.free:
            decider = AxisDecider(programs, runner, shape, reference, deadline, method)
            results[axis] = (decider.decide(axis, range(low, high + 1)), decider)
    return programs, runner, reference, results


Decide = Callable[..., Any]

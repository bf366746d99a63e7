"""Stage 3c: decide every size of every ``?`` axis: the compiled graph where it can, the model where it must.

The graph (:class:`~archsolve.check.program.Program`) answers most sizes from the catalog's
arithmetic.  A whole forward pass on the meta device runs only

- to find a first size that runs (the one the graph is recorded at),
- where a recorded branch of the model's Python flips (:class:`~archsolve.check.graph.Diverged`),
- as a handful of spot checks per axis; if one disagrees, every size of that axis runs on
  the meta device (said in the report).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import InputError, SolverTimeout, first_line
from .capture import FastNorms, Trace, module_stack, record, tensors_in
from .graph import Diverged, Failure, Shapes
from .program import Program
from .target import InputShape

#: Sizes tried first when looking for one that runs (common image sizes, then small ones).
PREFERRED = (256, 224, 512, 128, 384, 320, 192, 160, 96, 64, 448, 640, 768, 1024, 32, 48, 80, 112, 16, 8)
#: Whole-model spot checks per axis.
SPOT_CHECKS = 2


@dataclass(frozen=True)
class Verdict:
    """One size: the output shapes where it runs, else where it breaks; ``by`` says who decided."""

    size: int
    out: Shapes | None
    failure: Failure | None
    by: str  # "catalog" (the compiled graph) or "meta" (a whole forward on the meta device)


def verdict_of(n: int, out: Shapes | Failure, by: str) -> Verdict:
    return Verdict(n, None, out, by) if isinstance(out, Failure) else Verdict(n, out, None, by)


def meta_copy(model: nn.Module) -> nn.Module:
    """The model with every parameter and buffer on the meta device: a structural copy, no data copied.

    Forward passes may change a model (a list of deep-supervision heads, running stats), and
    ``functional_call`` does not always put tied weights back; the user's model is never run.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            memo.setdefault(id(p), nn.Parameter(p.detach().to("meta"), requires_grad=p.requires_grad))
        for b in module.buffers(recurse=False):
            memo.setdefault(id(b), b.detach().to("meta"))
    return copy.deepcopy(model, memo)


class ModelRunner:
    """Forward passes of one model on the meta device, naming the module where one fails."""

    def __init__(self, model: nn.Module) -> None:
        tensors = [*model.parameters(), *model.buffers()]
        on_meta = all(t.device.type == "meta" for t in tensors)
        self.model = model if on_meta else meta_copy(model)
        self.runs = 0

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)

    def __call__(self, shape: tuple[int, ...]) -> Shapes | Failure:
        self.runs += 1
        with module_stack(self.model) as stack:
            try:
                with torch.no_grad(), FastNorms():
                    out = self.forward(torch.empty(shape, device="meta"))
            except Exception as exc:  # torch's (or the model's) verdict on this shape
                where, module = stack[-1] if stack else ("", self.model)
                return Failure(-1, where, type(module).__name__, None, (), first_line(exc))
        return tuple(tuple(t.shape) for t in tensors_in(out))

    def trace(self, shape: tuple[int, ...]) -> Trace | Failure:
        """The graph of one forward pass at ``shape``, or where that pass fails."""
        self.runs += 1
        with module_stack(self.model) as stack:
            try:
                return record(self.forward, shape, stack)
            except Exception as exc:  # torch's (or the model's) verdict on this shape
                where, module = stack[-1] if stack else ("", self.model)
                return Failure(-1, where, type(module).__name__, None, (), first_line(exc))


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

    Where a recorded branch flips, the model is traced again at that size and the new graph
    joins the others: each size is decided by the first graph whose branches all hold there, so a
    model that pads odd sizes costs one trace per branch pattern, not one forward per size.
    """

    def __init__(
        self,
        programs: list[Program],
        runner: ModelRunner,
        shape: InputShape,
        reference: dict[int, int],
        deadline: float,
        seed: int = 0,
    ) -> None:
        self.programs, self.runner, self.shape = programs, runner, shape
        self.reference, self.deadline = reference, deadline
        self.seed = seed
        self.diverged: list[tuple[int, str]] = []
        self.disagreed: int | None = None

    def shape_at(self, axis: int, n: int) -> tuple[int, ...]:
        sizes = {**self.reference, axis: n}
        return self.shape.at(sizes)

    def by_model(self, shape: tuple[int, ...], n: int) -> Verdict:
        return verdict_of(n, self.runner(shape), "meta")

    def decide(self, axis: int, sizes: Sequence[int]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for n in sizes:
            if time.monotonic() > self.deadline:
                raise SolverTimeout(f"check: the time limit ran out at size {n} of axis {axis}")
            verdicts.append(self.decide_one(self.shape_at(axis, n), n))
        bad = self.spot_check(axis, verdicts)
        if bad is not None:
            self.disagreed = bad
            verdicts = [v if v.by == "meta" else self.by_model(self.shape_at(axis, v.size), v.size) for v in verdicts]
        return verdicts

    def decide_one(self, shape: tuple[int, ...], n: int) -> Verdict:
        first: Diverged | None = None
        for program in self.programs:
            out = program.run(shape)
            if not isinstance(out, Diverged):
                return verdict_of(n, out, "catalog")
            first = first or out
        assert first is not None
        self.diverged.append((n, f"{first.guard.where or '<model>'}: {first.guard.text}"))
        trace = self.runner.trace(shape)
        if isinstance(trace, Failure):
            return Verdict(n, None, trace, "meta")
        program = Program(trace)
        self.programs.append(program)
        out = program.run(shape)
        if isinstance(out, Diverged):  # a graph that does not even hold at its own size: trust only the model
            return self.by_model(shape, n)
        return verdict_of(n, out, "meta")

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


def decide_all(
    model: nn.Module, shape: InputShape, low: int, high: int, time_limit: float
) -> tuple[list[Program], ModelRunner, dict[int, int], dict[int, tuple[list[Verdict], AxisDecider]]]:
    """Record the graph at a size that runs, then decide every size of every ``?`` axis."""
    deadline = time.monotonic() + time_limit
    runner = ModelRunner(model)
    with evaluating(runner.model):
        reference, trace = find_reference(runner, shape, low, high, deadline)
        programs = [Program(trace)]
        results: dict[int, tuple[list[Verdict], AxisDecider]] = {}
        for axis in shape.free:
            decider = AxisDecider(programs, runner, shape, reference, deadline)
            results[axis] = (decider.decide(axis, range(low, high + 1)), decider)
    return programs, runner, reference, results


Decide = Callable[..., Any]

"""The contract between the solver and the ranker: a space of designs chosen step by step.

The solver knows which recipes are valid at each step and which combinations
meet the global constraints; the ranker only needs to name the choices and to
ask for the design behind a combination.  This module stays import-light (no
torch, no optuna, no z3) so the solver can implement :class:`SearchSpace`
without pulling in the measuring stack.

:class:`TableSpace` is a small explicit implementation: per step, a list of
hand-written choices.  Tests and benchmarks use it; it also serves anyone who
wants to rank a handful of designs they wrote down themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..core.recipe import AxisRecipe
from ..errors import InputError
from .design import BuildOptions, Design, Step, make_step


@runtime_checkable
class SearchSpace(Protocol):
    """Designs chosen by one categorical pick per step.

    ``step_options()[i]`` lists stable string keys of step ``i``'s valid
    choices (stable across runs: a resumed study matches trials by key).
    ``design(picks)`` gives the design for one index per step, or ``None``
    when a global constraint fails (budget, receptive field, ``same_recipe``,
    sizes that do not chain); the ranker never measures such a combination.
    """

    @property
    def name(self) -> str: ...

    def step_options(self) -> Sequence[Sequence[str]]: ...

    def design(self, picks: Sequence[int]) -> Design | None: ...


@runtime_checkable
class CandidateSource(Protocol):
    """Optional extension of :class:`SearchSpace`: a supply of valid combinations.

    When the product of the step options is too large to enumerate, the ranker
    asks for up to ``limit`` valid pick tuples (e.g. the solver's top designs by
    the objective) to build its latency model's candidate pool; without it, it
    samples combinations at random.
    """

    def candidates(self, limit: int) -> Iterable[Sequence[int]]: ...


@runtime_checkable
class FastestSource(Protocol):
    """Optional extension of :class:`SearchSpace`: the exact predicted-fastest valid designs.

    ``step_time(step_index, option_index)`` is the predicted seconds of one step option
    (indices as in ``step_options()``); a design's predicted time is the sum over its steps.
    Returns up to ``limit`` valid pick tuples in ascending order of that sum (ties broken
    deterministically), every constraint of the space respected.
    """

    def fastest(self, limit: int, step_time: Callable[[int, int], float]) -> list[tuple[int, ...]]: ...


@dataclass(frozen=True)
class StepChoice:
    """One hand-written choice for a step: its op kinds, one recipe per op (same on every axis), its out channels."""

    key: str
    ops: tuple[str, ...]
    recipes: tuple[AxisRecipe, ...]
    out_channels: int

    @classmethod
    def of(cls, key: str, ops: Sequence[str], recipes: Sequence[AxisRecipe], out_channels: int) -> StepChoice:
        if len(ops) != len(recipes):
            raise InputError(f"step choice {key!r}: {len(ops)} ops but {len(recipes)} recipes")
        return cls(key, tuple(ops), tuple(recipes), out_channels)


@dataclass(frozen=True)
class TableSpace:
    """An explicit :class:`SearchSpace`: per step, a list of :class:`StepChoice`.

    A combination is valid when every step's layers are accepted by the op
    catalog on the shape the previous step produced, the last shape equals
    ``out_shape`` (when given), and the parameter count is within
    ``max_params`` (when given) — the same kinds of global constraints the
    solver checks, so tests exercise the ranker's "never measure an invalid
    design" path.
    """

    name: str
    in_shape: tuple[int, ...]
    steps: tuple[tuple[StepChoice, ...], ...]
    out_shape: tuple[int, ...] | None = None
    max_params: int | None = None
    options: BuildOptions = field(default_factory=BuildOptions)

    def __post_init__(self) -> None:
        for i, choices in enumerate(self.steps):
            keys = [c.key for c in choices]
            if not keys:
                raise InputError(f"{self.name}: step {i} has no choices")
            if len(set(keys)) != len(keys):
                raise InputError(f"{self.name}: step {i} repeats a choice key")

    def step_options(self) -> Sequence[Sequence[str]]:
        return [[c.key for c in choices] for choices in self.steps]

    def design(self, picks: Sequence[int]) -> Design | None:
        if len(picks) != len(self.steps):
            raise InputError(f"{self.name}: {len(picks)} picks for {len(self.steps)} steps")
        shape = self.in_shape
        ndim = len(shape) - 1
        last = len(self.steps) - 1
        built: list[Step] = []
        for i, (choices, pick) in enumerate(zip(self.steps, picks, strict=True)):
            choice = choices[pick]
            axes = [[r] * ndim for r in choice.recipes]
            try:
                step = make_step(choice.ops, shape, axes, choice.out_channels, self.options, i == 0, i == last)
            except InputError:
                return None
            built.append(step)
            shape = step.out_shape
        if self.out_shape is not None and shape != self.out_shape:
            return None
        try:
            design = Design(self.name, tuple(built), self.options)
        except InputError:
            return None
        if self.max_params is not None and design.params.total > self.max_params:
            return None
        return design

"""The solver's values: a step's concrete choices, their groups, candidates and the solution.

Everything here is data plus the checks that read only data (chaining, the
global constraints), so tables, counting, the Z3 model, explanations and the
ranker's space share one definition without importing each other.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..design import Design, Step
from ..display import Shown
from ..ops import KIND_ORDER
from ..problem import Problem
from ..recipe import AxisRecipe

State = tuple[tuple[int, ...], int, tuple[int, ...]]
"""A boundary between steps: (spatial size per axis, channels, jump per axis for receptive fields)."""

Row = tuple[tuple[tuple[AxisRecipe, ...], ...], tuple[tuple[int, ...], ...], bool]
"""One way through a step before channels: recipes [op][axis], sizes [boundary][entry], run-time sized."""


@dataclass(frozen=True)
class Choice:
    """One concrete way to do one step, with every number the solver needs about it."""

    step: Step
    recipes: tuple[tuple[AxisRecipe, ...], ...]  # per op of the step, per axis
    source: State
    target: State
    params: int
    macs: int
    rf_growth: tuple[int, ...]  # receptive-field growth per axis (at the source's jump)
    checkerboard: bool
    gaps: bool
    shared: tuple[int, ...]  # (kernel, stride, padding) per axis of the first weighted op, for same_recipe
    dead: bool = False  # some layer has an output pixel that sees only padding
    identity: bool = False  # some layer passes its input through unchanged
    #: What the step computes (per layer, per axis entry: the catalog's signature); None: never folded.
    signature: Hashable = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def order(self) -> tuple[Any, ...]:
        kinds = tuple(KIND_ORDER[layer.op] for layer in self.step.layers)
        fields = [
            (r.kernel, r.stride, r.padding, r.output_padding, r.dilation, r.ceil_mode)
            for per_op in self.recipes
            for r in per_op
        ]
        return (kinds, *fields, self.target[1])

    @functools.cached_property
    def key(self) -> str:
        """Stable text naming this choice (per-step categorical value for the ranker)."""
        parts = []
        for layer in self.step.layers:
            if layer.kind.is_norm:
                continue
            fields = ",".join(f"{k}={v}" for k, v in layer.recipe().items())
            parts.append(f"{layer.op}({fields})->{layer.out_shape[0]}")
        return " + ".join(parts)


@dataclass(frozen=True)
class Group:
    """Choices of one step that are interchangeable for every global constraint and the objective."""

    source: State
    target: State
    params: int
    macs: int
    rf_growth: tuple[int, ...]
    shared: tuple[int, ...]
    members: tuple[Choice, ...]

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Candidate:
    """One valid design with its numbers (a row of ``solve`` output)."""

    design: Design
    choices: tuple[Choice, ...]

    @property
    def params(self) -> int:
        """The whole design's parameters (an encoder included), trainable and not."""
        return self.design.params.total

    @property
    def macs(self) -> int:
        return self.design.macs


@dataclass(repr=False)
class Solution(Shown):
    """What solving a problem gives: the exact count, the best designs, and the per-step tables."""

    problem: Problem
    count: int
    candidates: list[Candidate]
    tables: list[list[Choice]] = field(repr=False)
    seconds: float = 0.0
    #: Designs left out as functional duplicates of a smaller one (``constraints.no_duplicates``).
    folded: int = 0
    #: The problem's reference design (``reference = "…"``), checked like any design; None without one.
    reference: Candidate | None = None

    def design(self, picks: Sequence[Choice]) -> Design:
        return make_design(self.problem, picks)

    @property
    def best(self) -> Design:
        """The best design by the problem's objective (the first candidate)."""
        return self.candidates[0].design

    def __repr__(self) -> str:
        return f"<Solution {self.problem.name!r}: {self.count:,} valid designs, best {len(self.candidates)} listed>"

    def text(self) -> str:
        from ..report import solution_text

        return solution_text(self)


def initial_state(problem: Problem) -> State:
    first = problem.sizes[0].fixed
    assert first is not None and problem.channels[0] is not None
    jump = (1,) * problem.ndim if problem.constraints.receptive_field is not None else ()
    return (first, problem.channels[0], jump)


def prefix_cost(problem: Problem) -> tuple[int, int]:
    """Parameters and MACs of the fixed steps before the solved ones (budgets cover the whole design)."""
    return sum(s.params.total for s in problem.prefix), sum(s.macs for s in problem.prefix)


def make_design(problem: Problem, picks: Sequence[Choice]) -> Design:
    """The whole design: the problem's fixed steps (an encoder), then one choice per solved step."""
    steps = (*problem.prefix, *(c.step for c in picks))
    return Design(problem.name, steps, problem.build, problem.sequence)


def allowed(choice: Choice, problem: Problem) -> bool:
    """Whether the problem's per-choice rules (no_gaps, no_checkerboard, no_dead_pixels, no_identity) keep it."""
    rules = problem.constraints
    return not (
        (rules.no_gaps and choice.gaps)
        or (rules.no_checkerboard and choice.checkerboard)
        or (rules.no_dead_pixels and choice.dead)
        or (rules.no_identity and choice.identity)
    )


def fold(step: list[Choice]) -> list[Choice]:
    """One choice per function: of choices that compute the same thing between the same states, the first.

    Choices come in tie order, so the one kept is the smallest member (``no_duplicates``).
    Everything the constraints read is part of the key, so folding never changes what is feasible.
    """
    kept: dict[Hashable, Choice] = {}
    for c in step:
        same = (c.source, c.target, c.step.out_shape[0], c.rf_growth, c.shared, c.signature)
        kept.setdefault(id(c) if c.signature is None else same, c)
    return list(kept.values())


def group_choices(step: list[Choice]) -> list[Group]:
    """A step's choices bucketed by everything the global constraints and the objective read."""
    buckets: dict[tuple[Any, ...], list[Choice]] = defaultdict(list)
    for c in step:
        buckets[(c.source, c.target, c.params, c.macs, c.rf_growth, c.shared)].append(c)
    return [
        Group(source, target, params, macs, growth, shared, tuple(sorted(members, key=lambda c: c.order)))
        for (source, target, params, macs, growth, shared), members in sorted(
            buckets.items(), key=lambda item: (item[0][2], item[0][3], item[1][0].order)
        )
    ]


def satisfies(problem: Problem, picks: Sequence[Choice]) -> bool:
    """Whether concrete choices chain from the input and meet every global constraint."""
    rules = problem.constraints
    state = initial_state(problem)
    for choice in picks:
        if choice.source != state:
            return False
        state = choice.target
    base_p, base_m = prefix_cost(problem)
    if rules.max_params is not None and base_p + sum(c.params for c in picks) > rules.max_params:
        return False
    if rules.max_macs is not None and base_m + sum(c.macs for c in picks) > rules.max_macs:
        return False
    if rules.receptive_field is not None:
        low, high = rules.receptive_field
        for axis in range(problem.ndim):
            field_ = 1 + sum(c.rf_growth[axis] for c in picks)
            if not low <= field_ <= high:
                return False
    if rules.same_recipe:
        shared = {c.shared for c in picks if c.shared}
        if len(shared) > 1:
            return False
    return True

"""The solver's values: a step's concrete choices, their groups, candidates and the solution.

Everything here is data plus the checks that read only data (chaining, the
global constraints), so tables, counting, the Z3 model, explanations and the
ranker's space share one definition without importing each other.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..catalog import KIND_ORDER
from ..core.console import PIPE_WIDTH, render
from ..core.display import Shown
from ..core.recipe import AxisRecipe
from ..core.table import Column, Table, plural
from ..design.design import Design, Step
from ..design.notation import RECIPE, design_text
from ..problem.problem import Problem

State = tuple[tuple[int, ...], int, tuple[int, ...], tuple[bool, ...]]
"""A boundary between steps: (spatial size per axis, channels, jump per axis for receptive fields, and
per size entry whether the signal can still vary along that axis; empty unless ``no_constant_output``)."""

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
    unfaithful: bool = False  # some layer's stride is not its size ratio, or its inputs' centres go backwards
    wasted: bool = False  # the step enlarges and shrinks one axis by strides (upsample ×4, then stride 2)
    constant: bool = False  # the design's output (this is the last step) is constant along some axis
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
    #: The members' values for the cross-step ``where`` atoms (:func:`.crossing.needed_leaves`).
    values: tuple[int | None, ...] = ()

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True, repr=False)
class Candidate:
    """One valid design with its numbers (a row of ``solve`` output)."""

    design: Design
    choices: tuple[Choice, ...]
    #: Designs that differ from this one in a single step, folded under it in the listing (``expand``
    #: lists them instead), best first; those the search met before the list was complete.
    variants: tuple[Candidate, ...] = ()

    @property
    def params(self) -> int:
        """The whole design's parameters (an encoder included), trainable and not."""
        return self.design.params.total

    @property
    def macs(self) -> int:
        return self.design.macs

    def __repr__(self) -> str:
        return f"<Candidate {self.design.name!r}: {self.params:,} params, {self.macs:,} MACs>"


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
    #: True when the time limit stopped a count by enumeration: ``count`` designs exist, maybe more.
    count_is_lower_bound: bool = False
    #: True: ``candidates`` are the best designs one by one; False: distinct ideas, single-step variants
    #: folded under each (``Candidate.variants``).
    expanded: bool = False

    def design(self, picks: Sequence[Choice]) -> Design:
        return make_design(self.problem, picks)

    @property
    def best(self) -> Design:
        """The best design by the problem's objective (the first candidate)."""
        return self.candidates[0].design

    def __repr__(self) -> str:
        at_least = "at least " if self.count_is_lower_bound else ""
        return (
            f"<Solution {self.problem.name!r}: {at_least}{self.count:,} valid designs, "
            f"best {len(self.candidates)} listed>"
        )

    def text(self) -> str:
        return solution_text(self)


def initial_state(problem: Problem) -> State:
    first = problem.sizes[0].fixed
    assert first is not None and problem.channels[0] is not None
    jump = (1,) * problem.ndim if problem.constraints.receptive_field is not None else ()
    # The input varies along every axis it has two pixels on; a 1-pixel axis (noise) starts constant.
    vary = tuple(n >= 2 for n in first) if problem.constraints.no_constant_output else ()
    return (first, problem.channels[0], jump, vary)


def prefix_cost(problem: Problem) -> tuple[int, int]:
    """Parameters and MACs of the fixed steps before the solved ones (budgets cover the whole design)."""
    return sum(s.params.total for s in problem.prefix), sum(s.macs for s in problem.prefix)


def make_design(problem: Problem, picks: Sequence[Choice]) -> Design:
    """The whole design: the problem's fixed steps (an encoder), then one choice per solved step."""
    steps = (*problem.prefix, *(c.step for c in picks))
    return Design(problem.name, steps, problem.build, problem.sequence)


#: Per-choice rules: the flag a choice carries, the constraint that rejects it, and why (messages).
RULES = (
    ("gaps", "no_gaps", "leaves pixels unread or unwritten"),
    ("checkerboard", "no_checkerboard", "has a kernel not divisible by its stride"),
    ("dead", "no_dead_pixels", "has output pixels that see only padding"),
    ("identity", "no_identity", "has a part that computes nothing"),
    ("unfaithful", "faithful", "resamples unfaithfully (a stride off its size ratio, or inputs out of order)"),
    ("wasted", "no_wasted_resampling", "resamples one axis both up and down within the step"),
    ("constant", "no_constant_output", "gives an output constant along an axis, whatever the weights and input"),
)


def allowed(choice: Choice, problem: Problem) -> bool:
    """Whether the problem's per-choice rules (:data:`RULES`) keep it."""
    rules = problem.constraints
    return not any(getattr(choice, flag) and getattr(rules, rule) for flag, rule, _ in RULES)


def broken_rules(choice: Choice, problem: Problem) -> list[str]:
    """What each per-choice rule that rejects ``choice`` says, naming its constraint."""
    rules = problem.constraints
    return [
        f"{what} (constraints.{rule} = true)"
        for flag, rule, what in RULES
        if getattr(choice, flag) and getattr(rules, rule)
    ]


def fold(step: list[Choice], values: Callable[[Choice], Hashable] | None = None) -> list[Choice]:
    """One choice per function: of choices that compute the same thing between the same states, the first.

    Choices come in tie order, so the one kept is the smallest member (``no_duplicates``).
    Everything the constraints read is part of the key (``values``: what cross-step ``where``
    atoms read), so folding never changes what is feasible.
    """
    kept: dict[Hashable, Choice] = {}
    for c in step:
        extra = values(c) if values is not None else None
        same = (c.source, c.target, c.step.out_shape[0], c.rf_growth, c.shared, c.signature, extra)
        kept.setdefault(id(c) if c.signature is None else same, c)
    return list(kept.values())


def group_choices(step: list[Choice], values: Callable[[Choice], tuple[int | None, ...]] | None = None) -> list[Group]:
    """A step's choices bucketed by everything the global constraints and the objective read
    (``values``: what the cross-step ``where`` atoms read of a choice)."""
    buckets: dict[tuple[Any, ...], list[Choice]] = defaultdict(list)
    for c in step:
        extra = values(c) if values is not None else ()
        buckets[(c.source, c.target, c.params, c.macs, c.rf_growth, c.shared, extra)].append(c)
    return [
        Group(source, target, params, macs, growth, shared, tuple(sorted(members, key=lambda c: c.order)), extra)
        for (source, target, params, macs, growth, shared, extra), members in sorted(
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


def solution_json(solution: Solution) -> dict[str, Any]:
    """``archsolve solve --no-rank --json`` (docs/json.md): nothing measured, the best by objective wins."""
    candidates = [c.design.to_dict(None) | {"variants": len(c.variants)} for c in solution.candidates]
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "count_is_lower_bound": solution.count_is_lower_bound,
        "folded": solution.folded,
        "expanded": solution.expanded,
        "candidates": candidates,
        "winner": candidates[0] if candidates else None,
        "reference": reference_json(solution),
    }


def reference_json(solution: Solution) -> dict[str, Any] | None:
    """The problem's reference design (``reference = "…"``) with its recipe line, or None without one."""
    reference = solution.reference
    if reference is None:
        return None
    return {"recipe": design_text(reference.design, solution.problem), **reference.design.to_dict(None)}


def reference_line(solution: Solution) -> str | None:
    """``reference: conv_transpose k4 s1 | 4× conv_transpose k4 s2 p1 (3,578,624 params, … MACs)``."""
    reference = solution.reference
    if reference is None:
        return None
    text = design_text(reference.design, solution.problem)
    return f"reference: {text} ({reference.params:,} params, {reference.macs:,} MACs)"


def solution_table(solution: Solution) -> Table:
    """``solve --no-rank``: the count, then the best designs by the objective; unless expanded, distinct
    ideas with the count of designs one step apart folded under each (``+N``)."""
    folded = not solution.expanded and any(c.variants for c in solution.candidates)
    rows = tuple(
        (
            str(i),
            f"{c.params:,}",
            f"{c.macs:,}",
            *((f"+{len(c.variants):,}" if c.variants else "",) if folded else ()),
            design_text(c.design, solution.problem),
        )
        for i, c in enumerate(solution.candidates, 1)
    )
    order = _order(solution.problem.objective)
    title = f"best {len(rows)} by {order}:"
    if folded:
        title = (
            f"best {len(rows)} ideas by {order}; +N: designs one step apart folded under the row (--expand lists them):"
        )
    columns = (Column("#", "right"), Column("params", "right"), Column("MACs", "right"))
    return Table((*columns, *((Column("+", "right"),) if folded else ()), RECIPE), rows, title=title)


def _order(objective: str) -> str:
    # Without measurements the listing cannot be by latency; the ranker orders by predicted time.
    return "params (latency is predicted and measured when ranking)" if objective == "latency" else objective


def count_line(solution: Solution) -> str:
    """``dcgan-generator: 6,710 valid designs (10,570 functional duplicates folded; solved in 0.52 s)``."""
    folded = f"{plural(solution.folded, 'functional duplicate')} folded; " if solution.folded else ""
    # A count the time limit stopped is a lower bound, and says so.
    at_least = "at least " if solution.count_is_lower_bound else ""
    return (
        f"{solution.problem.name}: {at_least}{plural(solution.count, 'valid design')} "
        f"({folded}solved in {solution.seconds:.2f} s)"
    )


def solution_text(solution: Solution, width: int = PIPE_WIDTH) -> str:
    """``solve --no-rank`` as plain text: the count line, then the table of the best designs."""
    return "\n".join([count_line(solution), render(solution_table(solution), width)])

"""The best designs by Z3: a linear ``Optimize`` model over groups of equal-cost choices.

Each step picks a *group* of choices with equal cost, so one solver call
usually yields thousands of tied designs, expanded lazily in a stable order.
The named constraints are shared with the explanation, whose unsat core names
the ones that conflict.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..problem import Problem
from .choices import Candidate, Choice, Group, group_choices, initial_state, make_design, prefix_cost
from .deadline import Deadline
from .search import BestFirst, GiveUp, applies

#: Megabytes Z3 may hold (a solve stays under 1.5 GB in all).
MEMORY_MB = 800


def best(problem: Problem, layers: list[list[Choice]], top: int, deadline: Deadline) -> list[Candidate]:
    """The ``top`` designs by objective over groups of equal-cost choices: best-first search where budgets
    are the only global constraints (exact, no Z3), else (or when the search gives up) the Z3 model."""
    groups = [group_choices(step) for step in layers]
    if applies(problem):
        try:
            return _best(problem, BestFirst(problem, groups, deadline), top)
        except GiveUp:
            pass  # budgets bind hard: Z3 prunes better than the bounds
    return _best(problem, GroupModel(problem, groups, deadline, top), top)


def _best(problem: Problem, model: Combinations, top: int) -> list[Candidate]:
    picked: list[tuple[tuple[int, int], tuple[Group, ...]]] = []
    total, last = 0, None
    while True:
        found = model.next()
        if found is None:
            break
        value, combo = found
        if total >= top and last is not None and value > last:
            break
        picked.append((value, combo))
        total += multiplicity(combo)
        last = value
    streams = [expand(value, combo) for value, combo in picked]
    chosen = list(itertools.islice(heapq.merge(*streams), top))
    return [Candidate(make_design(problem, picks), picks) for _, _, picks in chosen]


def multiplicity(combo: Sequence[Group]) -> int:
    """How many designs one combination of groups stands for."""
    total = 1
    for g in combo:
        total *= g.size
    return total


def expand(
    value: tuple[int, int], combo: Sequence[Group]
) -> Iterator[tuple[tuple[int, int], tuple[Any, ...], tuple[Choice, ...]]]:
    """Designs of one group combination in tie order (itertools.product over sorted members is lexicographic)."""
    for picks in itertools.product(*(g.members for g in combo)):
        yield value, tuple(c.order for c in picks), picks


class Combinations(Protocol):
    """A source of group combinations in nondecreasing (objective, other metric) order."""

    def next(self) -> tuple[tuple[int, int], tuple[Group, ...]] | None: ...


class GroupModel:
    """Linear Z3 model: each step picks one group; states chain; budgets and rules are sums over steps.

    Picks are Boolean selectors with an exactly-one pseudo-Boolean constraint per
    step; ``Optimize`` minimises the objective, then the other metric, and each
    answer is blocked so the next call gives the next best combination.  On the
    DCGAN problem this is about 3x faster per answer than integer pick variables
    with table lookups (measured while choosing the encoding).
    """

    def __init__(self, problem: Problem, groups: list[list[Group]], deadline: Deadline, top: int = 1) -> None:
        import z3

        # Z3 stops cleanly (an "unknown" answer) rather than let the process grow past the memory bound.
        z3.set_param("memory_max_size", MEMORY_MB)
        self.found, self.top = 0, top
        self.z3 = z3
        self.problem = problem
        self.groups = groups
        self.deadline = deadline
        self.opt = z3.Optimize()
        self.select = selectors(groups)
        named, params, macs = constraints(problem, groups, self.select)
        for constraint in named.values():
            self.opt.add(constraint)
        total_p, total_m = z3.Sum(params), z3.Sum(macs)
        self.first, self.second = (total_p, total_m) if problem.objective == "params" else (total_m, total_p)
        # One weighted objective equals the lexicographic order (the weight exceeds any second value)
        # and costs Z3 less than two prioritised objectives.
        weight = 1 + sum(max((g.params + g.macs for g in step), default=0) for step in groups)
        self.opt.minimize(self.first * weight + self.second)

    def next(self) -> tuple[tuple[int, int], tuple[Group, ...]] | None:
        """The best combination not returned yet, or None when none is left."""
        z3 = self.z3
        self.deadline.report("optimising", self.found, self.top)
        self.opt.set("timeout", self.deadline.remaining_ms())
        try:
            result = self.opt.check()
        except z3.Z3Exception as exc:
            raise self.deadline.timeout(f"z3 stopped: {exc}") from exc
        if result == z3.unknown:
            raise self.deadline.timeout(f"optimising; z3: {self.opt.reason_unknown()}")
        if result == z3.unsat:
            return None
        model = self.opt.model()
        picks = [
            next(j for j, b in enumerate(step) if z3.is_true(model.eval(b, model_completion=True)))
            for step in self.select
        ]
        value = (model.eval(self.first).as_long(), model.eval(self.second).as_long())
        self.opt.add(z3.Or([z3.Not(step[j]) for step, j in zip(self.select, picks, strict=True)]))
        self.found += 1
        return value, tuple(g[j] for g, j in zip(self.groups, picks, strict=True))


def selectors(groups: list[list[Group]]) -> list[list[Any]]:
    """One Boolean per (step, group): the step picks that group."""
    import z3

    return [[z3.Bool(f"pick{i}_{j}") for j in range(len(step))] for i, step in enumerate(groups)]


def constraints(
    problem: Problem, groups: list[list[Group]], select: list[list[Any]]
) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Named Z3 constraints over per-step group selectors (names are what unsat cores report).

    Returns the constraints and the per-step parameter and MAC terms.
    """
    import z3

    named: dict[str, Any] = {}
    rules = problem.constraints
    states = sorted({g.source for step in groups for g in step} | {g.target for step in groups for g in step})
    state_id = {s: i for i, s in enumerate(states)}
    boundary = [z3.Int(f"s{i}") for i in range(len(groups) + 1)]
    named["input"] = boundary[0] == state_id.get(initial_state(problem), -1)
    params, macs = [], []
    rf_terms: list[list[Any]] = [[] for _ in range(problem.ndim)]
    shared_ids: dict[tuple[int, ...], int] = {}
    anchor = z3.Int("shared")
    same: list[Any] = []
    for i, (step, sel) in enumerate(zip(groups, select, strict=True)):
        # Fixed sizes and channels leave one state per boundary: nothing to link, and Z3 is faster without.
        chained = len({(g.source, g.target) for g in step}) > 1 or len(states) > len(groups) + 1
        links = (
            [
                z3.Implies(b, z3.And(boundary[i] == state_id[g.source], boundary[i + 1] == state_id[g.target]))
                for b, g in zip(sel, step, strict=True)
            ]
            if chained
            else []
        )
        one = z3.PbEq([(b, 1) for b in sel], 1) if sel else z3.BoolVal(False)
        named[problem.step_label(i)] = z3.And(one, *links)
        params.append(z3.Sum([z3.If(b, g.params, 0) for b, g in zip(sel, step, strict=True)]) if sel else 0)
        macs.append(z3.Sum([z3.If(b, g.macs, 0) for b, g in zip(sel, step, strict=True)]) if sel else 0)
        if rules.receptive_field is not None:
            for axis in range(problem.ndim):
                rf_terms[axis].append(z3.Sum([z3.If(b, g.rf_growth[axis], 0) for b, g in zip(sel, step, strict=True)]))
        if rules.same_recipe:
            for b, g in zip(sel, step, strict=True):
                if g.shared:
                    same.append(z3.Implies(b, anchor == shared_ids.setdefault(g.shared, len(shared_ids))))
    base_p, base_m = prefix_cost(problem)
    if rules.max_params is not None:
        named[f"constraints.max_params = {rules.max_params:,}"] = base_p + z3.Sum(params) <= rules.max_params
    if rules.max_macs is not None:
        named[f"constraints.max_macs = {rules.max_macs:,}"] = base_m + z3.Sum(macs) <= rules.max_macs
    if rules.receptive_field is not None:
        low, high = rules.receptive_field
        for axis in range(problem.ndim):
            total = 1 + z3.Sum(rf_terms[axis])
            named[f"constraints.receptive_field >= {low} (axis {axis})"] = total >= low
            named[f"constraints.receptive_field <= {high} (axis {axis})"] = total <= high
    if same:
        named["constraints.same_recipe"] = z3.And(same)
    return named, params, macs

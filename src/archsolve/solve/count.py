"""Exact counting: which choices lie on some path from the input to the output, and how many designs.

Counting is dynamic programming over boundary states (and, when budgets or a
receptive field are constrained, over the running cost), never enumeration.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

from ..problem.problem import Problem
from .budget import count_under_budget
from .choices import Choice, State, allowed, initial_state, prefix_cost
from .crossing import TooWide, across, count_across, local_filter
from .crossing import forward as crossing_forward
from .deadline import Deadline
from .model import count_enumerated
from .tables import Tables


def reachable(problem: Problem, tables: Tables, narrow: bool = True) -> list[list[Choice]]:
    """Per step, the allowed choices reachable from the input that still lead to the last boundary;
    ``narrow``: and that the cross-step ``where`` atoms do not rule out on the way."""
    filters = [local_filter(problem, index) for index in range(problem.n_steps)]
    if narrow and across(problem):

        def keep(index: int, c: Choice) -> bool:
            check = filters[index]
            return allowed(c, problem) and (check is None or check(c))

        forward = crossing_forward(problem, tables.choices, keep, tables.deadline)
        return _backward(forward)
    frontier = {initial_state(problem)}
    forward = []
    for index in range(problem.n_steps):
        tables.deadline.report("tables", index + 1, problem.n_steps)
        keeps = filters[index]  # the where atoms on this step alone: a filter on its table
        step_choices = [
            c
            for state in sorted(frontier)
            for c in tables.choices(index, state)
            if allowed(c, problem) and (keeps is None or keeps(c))
        ]
        forward.append(step_choices)
        frontier = {c.target for c in step_choices}
    return _backward(forward)


def _backward(forward: list[list[Choice]]) -> list[list[Choice]]:
    # Backward pruning: keep only choices that lead to the final boundary.
    alive = {c.target for c in forward[-1]} if forward else set()
    pruned: list[list[Choice]] = [[] for _ in forward]
    for index in reversed(range(len(forward))):
        pruned[index] = [c for c in forward[index] if c.target in alive]
        alive = {c.source for c in pruned[index]}
    return pruned


def count(problem: Problem, layers: list[list[Choice]], deadline: Deadline) -> int:
    """The number of designs over ``layers`` that meet every global constraint (cross-step ``where``
    atoms: see :func:`count_where`, which also says whether the number is exact)."""
    return count_where(problem, layers, deadline)[0]


def count_where(problem: Problem, layers: list[list[Choice]], deadline: Deadline) -> tuple[int, bool]:
    """The count and whether it is exact: cross-step ``where`` atoms are counted by DP over an
    extended state, or by Z3 enumeration when that state is too wide (a lower bound if the deadline
    stops it)."""
    if across(problem):
        try:
            return count_across(problem, layers, deadline), True
        except TooWide:
            return count_enumerated(problem, layers, deadline)
    if problem.constraints.same_recipe:
        keys = {c.shared for step in layers for c in step if c.shared}
        return sum(_count(problem, restrict(layers, key), deadline) for key in sorted(keys)), True
    return _count(problem, layers, deadline), True


def restrict(layers: list[list[Choice]], key: tuple[int, ...]) -> list[list[Choice]]:
    """The choices compatible with one shared recipe (``same_recipe``): those without one, or this one."""
    return [[c for c in step if not c.shared or c.shared == key] for step in layers]


def _count(problem: Problem, layers: list[list[Choice]], deadline: Deadline) -> int:
    rules = problem.constraints
    track_p, track_m = rules.max_params is not None, rules.max_macs is not None
    rf = rules.receptive_field
    if track_p != track_m and rf is None and layers and all(layers):
        # One budget: meet in the middle over sorted partial costs (see budget.py).
        base_p, base_m = prefix_cost(problem)
        unconstrained = _count(
            replace(problem, constraints=replace(rules, max_params=None, max_macs=None)), layers, deadline
        )
        wide = unconstrained >= 2**62  # partial counts never exceed the total: int64 holds them below this
        start = initial_state(problem)
        if rules.max_params is not None:
            return count_under_budget(layers, start, _params, base_p, rules.max_params, deadline, wide)
        assert rules.max_macs is not None
        return count_under_budget(layers, start, _macs, base_m, rules.max_macs, deadline, wide)
    # dp[state][(params, macs, rf)] = number of partial designs
    base_p, base_m = prefix_cost(problem)
    dp: dict[State, Counter[tuple[int, int, tuple[int, ...]]]] = {
        initial_state(problem): Counter({(base_p, base_m, (1,) * problem.ndim if rf else ()): 1})
    }
    for index, step in enumerate(layers):
        deadline.report("counting", index + 1, len(layers))
        grouped: dict[State, Counter[tuple[State, int, int, tuple[int, ...]]]] = defaultdict(Counter)
        for c in step:
            grouped[c.source][(c.target, c.params if track_p else 0, c.macs if track_m else 0, c.rf_growth)] += 1
        nxt: dict[State, Counter[tuple[int, int, tuple[int, ...]]]] = defaultdict(Counter)
        for state, partial in dp.items():
            for (target, p, m, growth), mult in grouped.get(state, {}).items():
                bucket = nxt[target]
                for (p0, m0, r0), n in partial.items():
                    p1, m1 = p0 + p, m0 + m
                    if (track_p and p1 > rules.max_params) or (track_m and m1 > rules.max_macs):  # type: ignore[operator]
                        continue
                    r1 = tuple(a + b for a, b in zip(r0, growth, strict=True)) if rf else ()
                    bucket[(p1, m1, r1)] += n * mult
            deadline.check("counting")
        dp = nxt
    total = 0
    for partial in dp.values():
        for (_, _, r), n in partial.items():
            if rf is None or all(rf[0] <= v <= rf[1] for v in r):
                total += n
    return total


def _params(choice: Choice) -> int:
    return choice.params


def _macs(choice: Choice) -> int:
    return choice.macs

"""Designs in exact ascending order of an additive cost, against brute force over every combination."""

from __future__ import annotations

import itertools
import random

import pytest

from archsolve.design.search_space import FastestSource
from archsolve.problem.problem import Problem, loads
from archsolve.solve import SolutionSpace, Solver, satisfies
from archsolve.solve.paths import PathSearch

CASES = {
    "budget": 'sizes = [8, 4, 2]\nchannels = [2, 3, 4]\nops = "conv | avg_pool"\n[search]\nkernel = [1, 5]\n'
    'stride = [1, 3]\npadding = [0, 2]\n[constraints]\nmax_params = 300\n[build]\nnorm = "none"\n',
    "receptive field": 'sizes = [8, 4, 2]\nchannels = [1, 2, 2]\nops = "conv | max_pool"\n[search]\nkernel = [1, 3]\n'
    "stride = [1, 2]\npadding = [0, 1]\n[constraints]\nreceptive_field = [4, 6]\n",
    "same recipe": 'sizes = [3, 6, 12]\nchannels = [3, 2, 1]\nops = "conv_transpose"\n[search]\nkernel = [1, 6]\n'
    "stride = [1, 3]\npadding = [0, 3]\ndilation = [1, 2]\n[constraints]\nsame_recipe = true\n",
    "free channels": 'sizes = [4, "?", 16]\nchannels = [2, "?", 1]\nops = "upsample+conv"\n[search]\n'
    "kernel = [1, 3]\nscale = [1, 4]\nchannels = [1, 4]\n[constraints]\nmax_macs = 3000\n",
}


def every_design(problem: Problem, layers):  # type: ignore[no-untyped-def]
    """Every combination of one choice per step that chains and meets the constraints."""
    return [picks for picks in itertools.product(*layers) if satisfies(problem, picks)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_designs_leave_in_exact_cost_order(name: str) -> None:
    problem = loads(CASES[name])
    solver = Solver(problem)
    solution = solver.solve(top=0)
    rng = random.Random(0)
    times = {id(c): rng.random() for step in solution.tables for c in step}
    expected = sorted(
        every_design(problem, solution.tables),
        key=lambda picks: (sum(times[id(c)] for c in picks), tuple(c.order for c in picks)),
    )
    assert len(expected) == solution.count > 3  # the brute force sees what the count sees
    found = [picks for _, picks in PathSearch(problem, solution.tables, lambda _, c: (times[id(c)],), solver.deadline)]
    assert found == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_fastest_gives_the_predicted_fastest_valid_picks(name: str) -> None:
    problem = loads(CASES[name])
    solution = Solver(problem).solve(top=5)
    space = SolutionSpace(solution)
    assert isinstance(space, FastestSource)
    options = space.step_options()
    rng = random.Random(1)
    table = [[rng.uniform(1e-4, 1e-2) for _ in keys] for keys in options]
    valid = [picks for picks in itertools.product(*(range(len(k)) for k in options)) if space.design(picks)]
    by_time = sorted(valid, key=lambda picks: sum(table[i][j] for i, j in enumerate(picks)))
    got = space.fastest(7, lambda i, j: table[i][j])
    assert got == by_time[:7]


def test_equal_times_keep_one_deterministic_order() -> None:
    problem = loads(CASES["free channels"])
    solution = Solver(problem).solve(top=1)
    space = SolutionSpace(solution)
    first = space.fastest(10, lambda i, j: 1.0)
    assert first == space.fastest(10, lambda i, j: 1.0) and len(set(first)) == len(first) == min(10, solution.count)


def test_the_objective_order_is_params_then_macs() -> None:
    """The listed best designs are the brute force's, in (params, MACs, tie order)."""
    problem = loads(CASES["budget"])
    solution = Solver(problem).solve(top=6)
    expected = sorted(
        every_design(problem, solution.tables),
        key=lambda picks: (sum(c.params for c in picks), sum(c.macs for c in picks), tuple(c.order for c in picks)),
    )[:6]
    assert [c.choices for c in solution.candidates] == expected

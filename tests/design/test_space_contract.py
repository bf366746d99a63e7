"""The SearchSpace contract, run over every implementation: what the ranker may rely on.

Valid designs are told apart from invalid ones by building them in torch, not by asking the space.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch

import archsolve
from archsolve.build.modules import build
from archsolve.core.recipe import AxisRecipe
from archsolve.design.search_space import CandidateSource, SearchSpace, StepChoice, TableSpace
from archsolve.solve import SolutionSpace


def table_space() -> TableSpace:
    """2 steps x 3 choices from 2x4x4; valid when the sizes reach 2x16x16."""

    def choices(c: int) -> tuple[StepChoice, ...]:
        return (
            StepChoice.of("ct k2s2", ["conv_transpose"], [AxisRecipe(2, 2)], c),
            StepChoice.of("ct k4s2p1", ["conv_transpose"], [AxisRecipe(4, 2, 1)], c),
            StepChoice.of("conv k3p1", ["conv"], [AxisRecipe(3, 1, 1)], c),
        )

    return TableSpace("table", (2, 4, 4), (choices(3), choices(2)), out_shape=(2, 16, 16))


def solution_space() -> SolutionSpace:
    problem = archsolve.Problem.create(
        name="solution",
        sizes=[4, 8, 16],
        channels=[2, 3, 2],
        ops="conv_transpose | conv",
        search={"kernel": [1, 4], "stride": [1, 2], "padding": [0, 1]},
    )
    return SolutionSpace(archsolve.solve(problem, top=5))


SPACES: dict[str, Callable[[], SearchSpace]] = {"TableSpace": table_space, "SolutionSpace": solution_space}


@pytest.fixture(params=sorted(SPACES))
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return SPACES[request.param]()


def all_picks(space: SearchSpace) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(len(keys)) for keys in space.step_options())))


def test_it_is_a_search_space(space: SearchSpace) -> None:
    assert isinstance(space, SearchSpace) and isinstance(space.name, str) and space.name


def test_every_step_offers_unique_string_keys(space: SearchSpace) -> None:
    options = space.step_options()
    assert options and all(options)
    for keys in options:
        assert all(isinstance(key, str) and key for key in keys) and len(set(keys)) == len(keys)


def test_keys_are_stable_across_instances(space: SearchSpace) -> None:
    again = SPACES[type(space).__name__]()
    assert [list(keys) for keys in again.step_options()] == [list(keys) for keys in space.step_options()]


def test_valid_designs_build_in_torch_and_chain_to_one_output(space: SearchSpace) -> None:
    designs = [design for picks in all_picks(space) if (design := space.design(picks)) is not None]
    assert designs, "a space should hold at least one valid design"
    outputs = set()
    for design in designs:
        assert len(design.steps) == len(space.step_options())
        y = build(design).eval()(torch.zeros(1, *design.in_shape))
        assert tuple(y.shape[1:]) == design.out_shape
        outputs.add(design.out_shape)
    assert len(outputs) == 1 and len({d.in_shape for d in designs}) == 1


def test_design_is_deterministic(space: SearchSpace) -> None:
    for picks in all_picks(space)[:20]:
        assert space.design(picks) == space.design(picks)


def test_candidates_are_valid_distinct_and_bounded(space: SearchSpace) -> None:
    if not isinstance(space, CandidateSource):
        pytest.skip(f"{type(space).__name__} supplies no candidates (the ranker samples)")
    found = [tuple(picks) for picks in space.candidates(4)]
    assert 0 < len(found) <= 4 and len(set(found)) == len(found)
    assert all(space.design(picks) is not None for picks in found)

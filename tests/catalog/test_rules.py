"""The design rules on a whole problem: the DCGAN generator's best designs, probed in torch."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch

from archsolve.build.modules import build
from archsolve.design.layer import Layer
from archsolve.problem.problem import load
from archsolve.solve import solve
from helpers.ops_oracle import dead_in_torch, one_hot_response

PROBLEMS = Path(__file__).parents[2] / "problems"


def test_dcgan_top_20_has_no_dead_pixel_no_idle_part_and_no_duplicate() -> None:
    # The older rules alone: with faithful resampling on, no two of the best 20 share their weight shapes,
    # so duplicates would go unprobed (tests/build/test_faithful_designs.py probes the default rules).
    problem = load(PROBLEMS / "dcgan_generator.toml")
    problem = replace(problem, constraints=replace(problem.constraints, faithful=False))
    solution = solve(problem, top=20)
    assert len(solution.candidates) == 20 and solution.folded > 0
    # The same recipe on one channel, without bias: the same per-axis map, cheap to probe.  The top 20 share
    # their layers (180 layers, 16 distinct), so each distinct one is probed once.
    singles = {
        Layer.make(layer.op, (1, *layer.in_shape[1:]), layer.axes, 1 if layer.kind.has_weights else None, bias=False)
        for candidate in solution.candidates
        for layer in candidate.design.layers
    }
    assert len(singles) > 1
    for single in singles:
        x, y = one_hot_response(single)
        assert not dead_in_torch(single, x, y), f"dead pixels in {single.op} {single.axes[0]}"
        assert not (y.shape == x.shape and torch.equal(x, y)), f"{single.op} {single.axes[0]} computes nothing"
    # Functional duplicates: designs whose weights fit each other compute different functions.  Each group of
    # interchangeable designs runs once on one shared set of random weights; every pair's outputs then differ.
    torch.manual_seed(0)
    nets = [build(c.design).eval() for c in solution.candidates]
    noise = torch.randn(2, *problem_input(problem))
    groups: dict[tuple[tuple[str, tuple[int, ...]], ...], list[int]] = defaultdict(list)
    for i, net in enumerate(nets):
        groups[tuple(sorted((k, tuple(v.shape)) for k, v in net.state_dict().items()))].append(i)
    compared = 0
    for members in (group for group in groups.values() if len(group) > 1):
        weights = nets[members[0]].state_dict()
        outputs = {}
        with torch.no_grad():
            for i in members:
                nets[i].load_state_dict(weights)
                outputs[i] = nets[i](noise)
        for a, b in itertools.combinations(members, 2):
            same = torch.allclose(outputs[a], outputs[b], atol=1e-6)
            assert not same, f"#{a + 1} and #{b + 1} compute the same function"
            compared += 1
    assert compared > 0  # the check ran on designs whose weights are interchangeable


def problem_input(problem) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    first = problem.sizes[0].fixed
    return (problem.channels[0], *first)

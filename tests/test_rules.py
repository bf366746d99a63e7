"""The design rules on a whole problem: the DCGAN generator's best designs, probed in torch."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import torch
from ops_oracle import dead_in_torch, one_hot_response

from archsolve.build import build
from archsolve.layer import Layer
from archsolve.problem import load
from archsolve.solve import solve

PROBLEMS = Path(__file__).parent.parent / "problems"


def test_dcgan_top_20_has_no_dead_pixel_no_idle_part_and_no_duplicate() -> None:
    # The older rules alone: with faithful resampling on, no two of the best 20 share their weight shapes,
    # so duplicates would go unprobed (tests/test_faithful_designs.py probes the default rules).
    problem = load(PROBLEMS / "dcgan_generator.toml")
    problem = replace(problem, constraints=replace(problem.constraints, faithful=False))
    solution = solve(problem, top=20)
    assert len(solution.candidates) == 20 and solution.folded > 0
    for candidate in solution.candidates:
        for layer in candidate.design.layers:
            # The same recipe on one channel, without bias: the same per-axis map, cheap to probe.
            single = Layer.make(
                layer.op, (1, *layer.in_shape[1:]), layer.axes, 1 if layer.kind.has_weights else None, bias=False
            )
            x, y = one_hot_response(single)
            assert not dead_in_torch(single, x, y), f"dead pixels in {layer.op} {layer.axes[0]}"
            assert not (y.shape == x.shape and torch.equal(x, y)), f"{layer.op} {layer.axes[0]} computes nothing"
    # Functional duplicates: designs whose weights fit each other compute different functions.
    torch.manual_seed(0)
    nets = [build(c.design).eval() for c in solution.candidates]
    noise = torch.randn(2, *problem_input(problem))
    compared = 0
    for a, b in itertools.combinations(range(len(nets)), 2):
        shapes_a = {k: v.shape for k, v in nets[a].state_dict().items()}
        if shapes_a != {k: v.shape for k, v in nets[b].state_dict().items()}:
            continue
        nets[b].load_state_dict(nets[a].state_dict())
        with torch.no_grad():
            same = torch.allclose(nets[a](noise), nets[b](noise), atol=1e-6)
        assert not same, f"#{a + 1} and #{b + 1} compute the same function"
        compared += 1
    assert compared > 0  # the check ran on designs whose weights are interchangeable


def problem_input(problem) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    first = problem.sizes[0].fixed
    return (problem.channels[0], *first)

"""Free channels at speed (issue #10): exact counts under a budget and the best designs without Z3.

The count is checked against a brute force over the real torch layers; the best designs of the
best-first search against the Z3 group model (what solves problems with cross-step ``where``).
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

from archsolve.problem.problem import load, loads
from archsolve.solve import Solver, model, solve
from archsolve.solve import budget as budget_module

PROBLEMS = Path(__file__).parents[2] / "problems"

SIZES = [2, 4, 8, 16]
CHANNELS = (8, 16, 24, 32)
KERNELS, STRIDES, PADDINGS, OUTPUT_PADDINGS = range(1, 5), range(1, 3), range(2), range(2)


def free_channel_problem(budget: int) -> str:
    return (
        f'sizes = {SIZES}\nchannels = [8, "?", "?", 3]\nops = "conv_transpose"\n'
        "[search]\nchannels = [8, 32]\nmultiple_of = 8\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\n"
        "output_padding = [0, 1]\n"
        f"[constraints]\nmax_params = {budget}\nno_gaps = false\nno_dead_pixels = false\nno_identity = false\n"
        "no_duplicates = false\nfaithful = false\nno_constant_output = false\nno_wasted_resampling = false\n"
        '[build]\nnorm = "none"\nbias = true\n'
    )


@functools.cache  # built once from real torch layers; every budget and count path reads the same tables
def torch_step_params() -> list[dict[tuple[int, int], list[int]]]:
    """Per step, per (in, out) channels: the parameter counts of every transposed conv torch builds and
    runs from that step's size to the next (each a distinct layer: no two recipes share all fields)."""
    steps: list[dict[tuple[int, int], list[int]]] = []
    ins = [(8,), CHANNELS, CHANNELS]
    outs = [CHANNELS, CHANNELS, (3,)]
    for i, (n, want) in enumerate(itertools.pairwise(SIZES)):
        table: dict[tuple[int, int], list[int]] = {}
        for c_in, c_out in itertools.product(ins[i], outs[i]):
            found = []
            for k, s, p, op in itertools.product(KERNELS, STRIDES, PADDINGS, OUTPUT_PADDINGS):
                try:
                    layer = nn.ConvTranspose2d(c_in, c_out, k, s, p, op)
                    shape = layer(torch.zeros(1, c_in, n, n)).shape
                except RuntimeError:
                    continue  # torch refuses (output_padding >= stride, or a size below 1)
                if shape[2:] == (want, want):
                    found.append(sum(t.numel() for t in layer.parameters()))
            table[(c_in, c_out)] = found
        steps.append(table)
    return steps


@pytest.mark.parametrize("budget", [6_000, 20_000, 10**9])
@pytest.mark.parametrize("plain_limit", [0, 40, budget_module.PLAIN_LIMIT], ids=["numpy", "switching", "lists"])
def test_free_channel_count_equals_a_brute_force_over_torch_layers(
    budget: int, plain_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same count whether the sides are held as lists, as numpy arrays, or move from one to the other."""
    monkeypatch.setattr(budget_module, "PLAIN_LIMIT", plain_limit)
    steps = torch_step_params()
    brute = 0
    for c1, c2 in itertools.product(CHANNELS, CHANNELS):
        for a, b, c in itertools.product(steps[0][(8, c1)], steps[1][(c1, c2)], steps[2][(c2, 3)]):
            brute += a + b + c <= budget
    assert brute > 0
    assert solve(loads(free_channel_problem(budget)), top=1).count == brute


def best_by_z3(problem_text: str | None = None, path: Path | None = None) -> tuple[list[object], list[object]]:
    problem = load(path) if path is not None else loads(problem_text or "")
    solver = Solver(problem, 120)
    layers = solver.reachable()
    searched = solver.best(layers, 20)
    z3 = model.best(problem, layers, 20, solver.deadline)
    return [c.choices for c in searched], [c.choices for c in z3]


@pytest.mark.parametrize("name", ["dcgan_generator.toml", "unet_101x75.toml", "keras_autoencoder.toml"])
def test_best_first_search_gives_the_z3_models_top_20(name: str) -> None:
    searched, z3 = best_by_z3(path=PROBLEMS / name)
    assert searched == z3 and len(searched) == 20


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_best_first_search_matches_z3_with_free_channels_under_a_budget() -> None:
    searched, z3 = best_by_z3(free_channel_problem(20_000))
    assert searched == z3 and searched

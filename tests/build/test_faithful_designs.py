"""The default rules on whole designs, proven in torch: every bundled problem's listed designs resample
faithfully and give outputs that vary over space; a design the rules call constant is constant.

Designs are built with their own recipes, norms and activations but at most four channels (the rules
read no channel count), random weights, a batch of two.  Per layer and axis, torch's own sizes give
the stride rule, and the layer rebuilt on a widened input (ones weights, one-hot inputs) gives the
centres of the inputs feeding each output.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from archsolve.build.modules import build, layer_modules
from archsolve.catalog import KINDS
from archsolve.core.recipe import AxisRecipe
from archsolve.design.design import Design, Step
from archsolve.design.layer import Layer
from archsolve.errors import InfeasibleError
from archsolve.problem.problem import Problem, load, loads
from archsolve.solve import solve
from helpers.ops_oracle import centres_1d, ordered, stride_fits, varies_in_torch

PROBLEMS = Path(__file__).parents[2] / "problems"
WIDTH = 4
#: Kinds probed by their own torch layer; the shape-keeping blocks read what one conv of their recipe reads.
PROBED = {"conv", "conv_transpose", "max_pool", "avg_pool", "upsample"}


def thin(design: Design, width: int = WIDTH) -> Design:
    """``design`` with every channel count above ``width`` lowered to it (kinds that keep channels keep
    them; a layer feeding a pixel shuffle of factor f gives f² times what the shuffle gives)."""
    flat = [layer for step in design.steps for layer in step.layers]
    wanted: list[int] = []
    for i, layer in enumerate(flat):
        after = next((x for x in flat[i + 1 :] if not x.kind.is_norm), None)
        if after is not None and after.op == "pixel_shuffle":
            wanted.append(min(after.out_shape[0], width) * after.axes[0].stride ** len(after.axes))
        else:
            wanted.append(min(layer.out_shape[0], width))
    shapes: list[tuple[int, ...]] = []
    c = min(design.in_shape[0], width)
    first = (c, *design.in_shape[1:])
    steps: list[Step] = []
    index = 0
    for step in design.steps:
        layers = []
        for layer in step.layers:
            assert layer.groups == 1  # grouped convs would need channels their groups divide
            if layer.op == "pixel_shuffle":
                c_out = c // layer.axes[0].stride ** len(layer.axes)
            else:
                c_out = c if layer.kind.keeps_channels else wanted[index]
            layers.append(replace(layer, in_shape=(c, *layer.in_shape[1:]), out_shape=(c_out, *layer.out_shape[1:])))
            c = c_out
            index += 1
        new = replace(step, layers=tuple(layers))
        shape = new.out_shape
        if step.merge is not None:
            skip = first if step.merge.source == -1 else shapes[step.merge.source]
            shape = step.merge.out_shape(shape, skip)
            c = shape[0]
        shapes.append(shape)
        steps.append(new)
    return replace(design, steps=tuple(steps))


def run(design: Design, seed: int = 0) -> tuple[torch.Tensor, list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """The thinned design's output on a random batch of two, and torch's (in, out) spatial sizes per layer."""
    torch.manual_seed(seed)
    net = build(design).eval()
    sizes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    ndim = len(design.in_shape) - 1

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        sizes.append((tuple(inputs[0].shape[-ndim:]), tuple(output.shape[-ndim:])))

    handles = [m.register_forward_hook(hook) for m in layer_modules(design, net)]
    lead = (2, 2) if design.sequence else (2,)
    with torch.no_grad():
        y = net(torch.randn(*lead, *design.in_shape))
    for handle in handles:
        handle.remove()
    return (y.flatten(0, 1) if design.sequence else y), sizes


def faithful_in_torch(layer: Layer, n_in: tuple[int, ...], n_out: tuple[int, ...]) -> bool:
    """The two geometry rules on every axis of ``layer``, from torch's sizes and a widened probe."""
    if layer.kind.is_norm:
        return n_in == n_out
    return all(axis_faithful(layer.op, r, n, out) for r, n, out in zip(layer.axes, n_in, n_out, strict=True))


@functools.cache
def axis_faithful(op: str, r: AxisRecipe, n: int, out: int) -> bool:
    if n < 2 or out < 2:
        return True
    if op == "pixel_shuffle":
        return out == n * r.stride  # output row y reads input row y // r: in order (the contract suite probes it)
    if not stride_fits(r.stride, n, out, KINDS[op].scales_up):
        return False
    name = op if op in PROBED else "conv"
    k = 1 if name == "upsample" else r.kernel
    return ordered(centres_1d(name, k, r.stride, r.padding, r.output_padding, r.dilation, n, out))


def varies_everywhere(y: torch.Tensor) -> bool:
    """Whether the output differs along every spatial axis of two or more pixels."""
    return all(varies_in_torch(y, axis) for axis in range(y.dim() - 2) if y.shape[2 + axis] >= 2)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(PROBLEMS.glob("*.toml")), ids=lambda p: p.stem)
def test_listed_designs_are_faithful_and_vary(path: Path) -> None:
    problem = load(path)
    solution = solve(problem, top=20)
    assert solution.candidates
    for rank, candidate in enumerate(solution.candidates, 1):
        design = thin(candidate.design)
        y, sizes = run(design)
        assert len(sizes) == len(design.layers)
        for layer, (n_in, n_out) in zip(design.layers, sizes, strict=True):
            assert faithful_in_torch(layer, n_in, n_out), f"#{rank}: {layer.op} {layer.axes} from {n_in}"
        assert varies_everywhere(y), f"#{rank}: output constant along an axis"


def test_the_tutorial_dcgan_is_a_default_design() -> None:
    """The PyTorch tutorial's generator (k4 s1 p0, then k4 s2 p1 four times) meets the default rules."""
    solution = solve(load(PROBLEMS / "dcgan_generator.toml"), top=1)
    assert solution.reference is not None  # the problem's reference, checked by every rule
    keys = [c.key for c in solution.reference.choices]
    assert keys[0].startswith("conv_transpose(kernel=4,stride=1,padding=0,")
    assert all(k.startswith("conv_transpose(kernel=4,stride=2,padding=1,") for k in keys[1:])
    design = thin(solution.reference.design)
    y, sizes = run(design)
    assert all(faithful_in_torch(layer, a, b) for layer, (a, b) in zip(design.layers, sizes, strict=True))
    assert varies_everywhere(y)


def noise_problem(rules: bool) -> Problem:
    """1x1 noise to 8x8 by nearest upsampling and small convs (the issue's constant generator)."""
    return loads(
        'sizes = [1, 2, 4, 8]\nchannels = [4, 4, 4, 3]\nops = "upsample+conv"\n'
        "[search]\nkernel = [1, 3]\nstride = [1, 1]\npadding = [0, 1]\nscale = [2, 4]\n"
        f"[constraints]\nno_constant_output = {str(rules).lower()}\n"
        '[build]\nnorm = "none"\nactivation = "relu"\nbias = true\n'
    )


def test_constant_outputs_are_exactly_those_torch_finds_constant() -> None:
    """Every design of a 1x1-noise generator, with the rule off: the rule keeps it ⇔ its output varies in torch."""
    loose = solve(noise_problem(False), top=10_000)
    strict = solve(noise_problem(True), top=10_000)
    assert len(loose.candidates) == loose.count and len(strict.candidates) == strict.count
    kept = {tuple(c.key for c in cand.choices) for cand in strict.candidates}
    constant = 0
    for candidate in loose.candidates:
        y, _ = run(thin(candidate.design))
        varies = varies_everywhere(y)
        assert (tuple(c.key for c in candidate.choices) in kept) == varies, candidate.choices
        constant += not varies
    assert constant > 0 and strict.count > 0  # both kinds of design occur


def wasted_problem(rule: bool) -> Problem:
    """1-D, 8 → 16 → 32 by ``upsample+conv`` steps, scales up to 4 and strides up to 2, the other rules off."""
    return loads(
        'sizes = [8, 16, 32]\nchannels = [2, 2, 2]\nops = "upsample+conv"\ndims = 1\n'
        "[search]\nkernel = [1, 3]\nstride = [1, 2]\npadding = [0, 1]\nscale = [1, 4]\n"
        "[constraints]\nno_gaps = false\nno_dead_pixels = false\nno_identity = false\nno_duplicates = false\n"
        f"faithful = false\nno_constant_output = false\nno_wasted_resampling = {str(rule).lower()}\n"
        '[build]\nnorm = "none"\nbias = true\n'
    )


def torch_steps(n: int, want: int) -> list[tuple[int, int]]:
    """(upsample scale, conv stride) of every upsample + conv pair torch runs from ``n`` to ``want``."""
    found = []
    for scale in range(1, 5):
        up = nn.Upsample(scale_factor=float(scale))
        for k in range(1, 4):
            for s in range(1, 3):
                for p in range(2):
                    try:
                        out = nn.Conv1d(1, 1, k, s, p)(up(torch.zeros(1, 1, n))).shape[-1]
                    except RuntimeError:
                        continue
                    if out == want:
                        found.append((scale, s))
    return found


def test_wasted_resampling_is_counted_against_torch() -> None:
    """The rule drops exactly the steps that upsample ×2+ and then stride 2 (torch lists every pair)."""
    steps = [torch_steps(8, 16), torch_steps(16, 32)]
    every = len(steps[0]) * len(steps[1])
    kept = [[(a, s) for a, s in step if not (a >= 2 and s >= 2)] for step in steps]
    assert solve(wasted_problem(False), top=1).count == every
    strict = solve(wasted_problem(True), top=50)
    assert strict.count == len(kept[0]) * len(kept[1]) < every
    for candidate in strict.candidates:
        for choice in candidate.choices:
            up, conv = choice.recipes
            assert not (up[0].stride >= 2 and conv[0].stride >= 2), choice.key


def test_a_problem_only_constant_designs_solve_says_which_rule() -> None:
    """1x1 noise by nearest upsampling and 1x1 convs only: every design is constant, and the error says so."""
    text = (
        'sizes = [1, 2, 4]\nchannels = [4, 4, 3]\nops = "upsample+conv"\n'
        "[search]\nkernel = [1, 1]\nstride = [1, 1]\npadding = [0, 0]\nscale = [2, 2]\n"
    )
    with pytest.raises(InfeasibleError, match=r"constraints\.no_constant_output = true"):
        solve(loads(text))

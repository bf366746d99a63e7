"""The solver's exact counts and optimum against a brute force that builds and runs real torch layers.

Random small 1D problems; the brute force tries every raw recipe in the ranges with torch itself
(no formula from archsolve), keeps the layers whose output has the wanted size, and multiplies.
With the design rules on, torch's probes decide them too: a layer is dropped when some output
pixel no one-hot input reaches, when it returns its input, or when it resamples unfaithfully (its
stride off torch's size ratio, or the centres of the inputs feeding its outputs going backwards,
probed on a widened input); layers whose responses to every one-hot input agree (weights fixed by
kernel) count once; and a design is dropped when its output is constant along the axis, each
layer's effect on that measured in torch with random weights from a constant and from a free input.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archsolve.errors import InfeasibleError
from archsolve.problem.problem import loads
from archsolve.solve import solve
from helpers.ops_oracle import centres_1d, ordered, stride_fits, varies_in_torch

KERNEL, STRIDE, PADDING, OUT_PAD, DILATION = (1, 3), (1, 2), (0, 1), (0, 1), (1, 2)
KINDS = ("conv", "conv_transpose", "max_pool", "avg_pool", "upsample")


def _span(bounds: tuple[int, int]) -> range:
    return range(bounds[0], bounds[1] + 1)


def _module(kind: str, c_in: int, c_out: int, k: int, s: int, p: int, op: int, d: int, ceil: bool) -> nn.Module:
    if kind == "conv":
        return nn.Conv1d(c_in, c_out, k, s, p, dilation=d)
    if kind == "conv_transpose":
        return nn.ConvTranspose1d(c_in, c_out, k, s, p, op, dilation=d)
    if kind == "max_pool":
        return nn.MaxPool1d(k, s, p, dilation=d, ceil_mode=ceil)
    if kind == "avg_pool":
        return nn.AvgPool1d(k, s, p, ceil_mode=ceil)
    return nn.Upsample(scale_factor=float(s), mode="nearest")


def _raw_recipes(kind: str) -> list[tuple[int, int, int, int, int, bool]]:
    """Every raw parameter combination torch could be given for ``kind`` within the test ranges."""
    ks, ss, ps, ops, ds = (_span(r) for r in (KERNEL, STRIDE, PADDING, OUT_PAD, DILATION))
    ceils = (False, True)
    if kind == "conv":
        return [(k, s, p, 0, d, False) for k, s, p, d in itertools.product(ks, ss, ps, ds)]
    if kind == "conv_transpose":
        return [(k, s, p, o, d, False) for k, s, p, o, d in itertools.product(ks, ss, ps, ops, ds)]
    if kind == "max_pool":
        return [(k, s, p, 0, d, c) for k, s, p, d, c in itertools.product(ks, ss, ps, ds, ceils)]
    if kind == "avg_pool":
        return [(k, s, p, 0, 1, c) for k, s, p, c in itertools.product(ks, ss, ps, ceils)]
    return [(1, s, 0, 0, 1, False) for s in _span(STRIDE)]


class Probed(NamedTuple):
    """One distinct layer torch accepts, as its probes see it."""

    params: int
    macs: int
    dead: bool  # some output no one-hot input reaches (transposed: or some input reaching no output)
    identity: bool  # returns its input unchanged
    function: tuple[object, ...]  # weight shape and response to every one-hot input, weights fixed by kernel
    faithful: bool  # stride fits the size ratio and the inputs' centres run in order (2+ pixels in and out)
    varies: tuple[bool, bool]  # output differs along the axis, from an input constant along it / a free one


def probe(kind: str, module: nn.Module, k: int, c_in: int, n: int) -> tuple[bool, bool, tuple[object, ...]]:
    with torch.no_grad():
        eye = torch.eye(c_in * n).reshape(c_in * n, c_in, n)
        change = (module(eye) - module(torch.zeros(1, c_in, n))).nan_to_num(0.0)  # -inf - -inf: no change
    identity = change.shape == eye.shape and torch.equal(change, eye)  # every one-hot input comes back as it was
    seen = change != 0
    dead = not bool(seen.any(dim=0).all())
    if kind == "conv_transpose":
        dead = dead or not bool(seen.flatten(1).any(dim=1).all())
    weights = k if kind in ("conv", "conv_transpose") else None
    return dead, identity, (weights, tuple(change.shape), tuple(torch.round(change.flatten(), decimals=4).tolist()))


@functools.cache
def torch_layers(kind: str, n: int, c_in: int, c_out: int) -> dict[int, list[Probed]]:
    """out size -> each distinct layer torch accepts (k=1 is one layer at any dilation), probed."""
    seen: set[tuple[object, ...]] = set()
    found: dict[int, list[Probed]] = {}
    for k, s, p, op, d, ceil in _raw_recipes(kind):
        key = (k, s, p, op, d if k > 1 else None, ceil)
        try:
            torch.manual_seed(k)  # one kernel, one set of weights
            module = _module(kind, c_in, c_out, k, s, p, op, d, ceil)
            with FlopCounterMode(display=False) as counter:
                out = module(torch.zeros(1, c_in, n)).shape[-1]
        except RuntimeError:
            continue
        if key in seen or out < 1:
            continue
        seen.add(key)
        params = sum(t.numel() for t in module.parameters())
        faithful = (
            n < 2
            or out < 2
            or (
                stride_fits(s, n, out, kind in ("conv_transpose", "upsample"))
                and ordered(centres_1d(kind, k, s, p, op, d, n, out))
            )
        )
        found.setdefault(out, []).append(
            Probed(
                params,
                counter.get_total_flops() // 2,
                *probe(kind, module, k, c_in, n),
                faithful,
                (varies(module, c_in, n, free=False), n >= 2 and varies(module, c_in, n, free=True)),
            )
        )
    return found


def varies(module: nn.Module, c_in: int, n: int, free: bool) -> bool:
    """Whether the layer's output differs along the axis for some input constant along it (or free)."""
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(64, c_in, n if free else 1, generator=generator).expand(64, c_in, n)
    with torch.no_grad():
        return varies_in_torch(module(x.contiguous()), 0)


def sensible(layers: list[Probed]) -> list[Probed]:
    """The per-layer rules by torch's own account: no dead pixels, no identity, faithful, one layer per function."""
    kept: dict[tuple[object, ...], Probed] = {}
    for layer in layers:
        if not layer.dead and not layer.identity and layer.faithful:
            kept.setdefault(layer.function, layer)
    return list(kept.values())


@st.composite
def problems(draw: st.DrawFn) -> tuple[str, list[int], list[int], list[str], int | None, str, bool]:
    steps = draw(st.integers(1, 3))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(steps)]
    channels = [draw(st.integers(1, 3))]
    sizes = [draw(st.integers(1, 9))]  # a 1-pixel input (noise) starts constant
    for kind in kinds:
        channels.append(channels[-1] if kind in ("max_pool", "avg_pool", "upsample") else draw(st.integers(1, 3)))
        reach = sorted(torch_layers(kind, sizes[-1], channels[-2], channels[-1]))
        # Mostly reachable sizes; sometimes any size, so infeasible problems are covered too.
        pool = reach if reach and draw(st.booleans() | st.just(True)) else list(range(1, 20))
        sizes.append(draw(st.sampled_from(pool)))
    budget = draw(st.none() | st.integers(0, 200))
    rules = draw(st.booleans())
    objective = draw(st.sampled_from(["params", "macs"]))
    text = f"""
sizes = {sizes}
channels = {channels}
ops = {kinds!r}
dims = 1
[search]
kernel = {list(KERNEL)}
stride = {list(STRIDE)}
padding = {list(PADDING)}
output_padding = {list(OUT_PAD)}
dilation = {list(DILATION)}
scale = {list(STRIDE)}
[constraints]
no_gaps = false
no_dead_pixels = {str(rules).lower()}
no_identity = {str(rules).lower()}
no_duplicates = {str(rules).lower()}
faithful = {str(rules).lower()}
no_constant_output = {str(rules).lower()}
{"" if budget is None else f"max_params = {budget}"}
[objective]
minimize = "{objective}"
[build]
norm = "none"
bias = true
""".replace("'", '"')
    return text, sizes, channels, kinds, budget, objective, rules


def brute_force(
    sizes: list[int], channels: list[int], kinds: list[str], budget: int | None, objective: str, rules: bool
):  # type: ignore[no-untyped-def]
    per_step = [
        torch_layers(kind, sizes[i], channels[i], channels[i + 1]).get(sizes[i + 1], []) for i, kind in enumerate(kinds)
    ]
    if rules:
        per_step = [sensible(layers) for layers in per_step]
    count, best = 0, None
    for combo in itertools.product(*per_step):
        if rules and constant(sizes, combo):
            continue
        params, macs = sum(c[0] for c in combo), sum(c[1] for c in combo)
        if budget is not None and params > budget:
            continue
        count += 1
        value = (params, macs) if objective == "params" else (macs, params)
        best = value if best is None or value < best else best
    return count, best


def constant(sizes: list[int], combo: tuple[Probed, ...]) -> bool:
    """Whether the design's output is constant along its axis of 2+ pixels, layer by layer as torch showed."""
    vary = sizes[0] >= 2
    for layer in combo:
        vary = layer.varies[vary]
    return sizes[-1] >= 2 and not vary


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_count_and_optimum_match_brute_force(case) -> None:  # type: ignore[no-untyped-def]
    text, sizes, channels, kinds, budget, objective, rules = case
    expected_count, expected_best = brute_force(sizes, channels, kinds, budget, objective, rules)
    problem = loads(text)
    if expected_count == 0:
        with pytest.raises(InfeasibleError):
            solve(problem, top=5)
        return
    solution = solve(problem, top=5)
    assert solution.count == expected_count
    first = solution.candidates[0]
    got = (first.params, first.macs) if objective == "params" else (first.macs, first.params)
    assert got == expected_best
    values = [(c.params, c.macs) if objective == "params" else (c.macs, c.params) for c in solution.candidates]
    assert values == sorted(values)
    assert len(solution.candidates) == min(5, expected_count)

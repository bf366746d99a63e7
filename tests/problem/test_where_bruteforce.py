"""``constraints.where``: counts and the top 20 against a brute force over real torch layers.

Random small 1D problems and random ``where`` lists.  The brute force tries every raw recipe
torch accepts (each layer built and run), and judges each ``where`` item by a Python predicate
written here from the documented meaning — never by archsolve's evaluator.  Items reading one
step are folded into the tables; the others go across steps: counted by the DP over an extended
state or, with its cap forced to zero, by Z3 enumeration; the best designs come from Z3.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archsolve.errors import InfeasibleError
from archsolve.problem.problem import loads
from archsolve.solve import crossing, solve

KERNEL, STRIDE, PADDING, OUT_PAD, DILATION = (1, 3), (1, 2), (0, 1), (0, 1), (1, 2)
KINDS = ("conv", "conv_transpose", "max_pool", "avg_pool")


#: Every default design rule off: the brute force below applies none of them.
RULES_OFF = (
    "[constraints]\nno_gaps = false\nno_dead_pixels = false\nno_identity = false\nno_duplicates = false\n"
    "faithful = false\nno_constant_output = false\nno_wasted_resampling = false\n"
)


class Layer(NamedTuple):
    """One distinct layer torch accepts, with the fields a ``where`` item reads."""

    kernel: int
    stride: int
    padding: int
    output_padding: int
    dilation: int | None  # None: the kind has no dilation (avg_pool)
    ceil: bool
    params: int
    macs: int


def _module(kind: str, c_in: int, c_out: int, k: int, s: int, p: int, op: int, d: int, ceil: bool) -> nn.Module:
    if kind == "conv":
        return nn.Conv1d(c_in, c_out, k, s, p, dilation=d)
    if kind == "conv_transpose":
        return nn.ConvTranspose1d(c_in, c_out, k, s, p, op, dilation=d)
    if kind == "max_pool":
        return nn.MaxPool1d(k, s, p, dilation=d, ceil_mode=ceil)
    return nn.AvgPool1d(k, s, p, ceil_mode=ceil)


@functools.cache
def torch_layers(kind: str, n: int, c_in: int, c_out: int) -> dict[int, list[Layer]]:
    """out size -> every distinct layer torch builds and runs from size n (k=1 is one layer at d=1)."""
    span = lambda b: range(b[0], b[1] + 1)  # noqa: E731
    ops = span(OUT_PAD) if kind == "conv_transpose" else (0,)
    dils = (1,) if kind == "avg_pool" else span(DILATION)
    ceils = (False, True) if kind in ("max_pool", "avg_pool") else (False,)
    found: dict[int, list[Layer]] = {}
    seen = set()
    for k, s, p, op, d, ceil in itertools.product(span(KERNEL), span(STRIDE), span(PADDING), ops, dils, ceils):
        key = (k, s, p, op, d if k > 1 else 1, ceil)
        if key in seen:
            continue
        try:
            module = _module(kind, c_in, c_out, k, s, p, op, d, ceil)
            with FlopCounterMode(display=False) as counter:
                out = module(torch.zeros(1, c_in, n)).shape[-1]
        except RuntimeError:
            continue
        if out < 1:
            continue
        seen.add(key)
        params = sum(t.numel() for t in module.parameters())
        dilation = None if kind == "avg_pool" else d  # the first dilation torch accepts (k=1: op < max(s, d))
        found.setdefault(out, []).append(Layer(k, s, p, op, dilation, ceil, params, counter.get_total_flops() // 2))
    return found


Design = tuple[Layer, ...]
Item = tuple[str, Callable[[Design], bool], bool]  # text, meaning, whether it reads one step only


def _items(n: int, draw: st.DrawFn) -> list[Item]:
    """Random where items for an n-step problem, each with its meaning written out in Python."""
    i = draw(st.integers(0, n - 1))
    k = draw(st.integers(1, 3))
    budget = draw(st.integers(0, 40))
    local: list[Item] = [
        (f"kernel[{i}] <= {k}", lambda d: d[i].kernel <= k, True),
        (f"stride[{i - n}] == {k % 2 + 1}", lambda d: d[i].stride == k % 2 + 1, True),
        (
            f"padding[{i}] == (kernel[{i}] - stride[{i}]) // 2",
            lambda d: d[i].padding == (d[i].kernel - d[i].stride) // 2,
            True,
        ),
        (f"dilation[{i}] == 1", lambda d: d[i].dilation == 1, True),
        (f"params[{i}] <= {budget} or kernel[{i}] == 1", lambda d: d[i].params <= budget or d[i].kernel == 1, True),
        ("stride[*] != 2", lambda d: all(x.stride != 2 for x in d), True),
        (f"kernel[{i}:] >= {k}", lambda d: all(x.kernel >= k for x in d[i:]), True),
    ]
    cross: list[Item] = [
        ("kernel[1:] == kernel[1]", lambda d: all(x.kernel == d[1].kernel for x in d[1:]), False),
        (f"sum(params) <= {budget}", lambda d: sum(x.params for x in d) <= budget, False),
        (f"count(padding > 0) <= {k - 1}", lambda d: sum(x.padding > 0 for x in d) <= k - 1, False),
        ("kernel[0] >= kernel[-1]", lambda d: d[0].kernel >= d[-1].kernel, False),
        ("max(stride) - min(stride) <= 0", lambda d: max(x.stride for x in d) == min(x.stride for x in d), False),
        (f"sum(kernel) % 2 == {k % 2}", lambda d: sum(x.kernel for x in d) % 2 == k % 2, False),
        (f"macs[0] + macs[-1] <= {budget * 4}", lambda d: d[0].macs + d[-1].macs <= budget * 4, False),
        (
            "not (stride[0] == stride[-1] and padding[0] == padding[-1])",
            lambda d: not (d[0].stride == d[-1].stride and d[0].padding == d[-1].padding),
            False,
        ),
        ("padding[1:] == padding[:-1]", lambda d: all(a.padding == b.padding for a, b in itertools.pairwise(d)), False),
    ]
    pool = local + (cross if n > 1 else [])
    return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))


class Case(NamedTuple):
    text: str
    per_step: list[list[Layer]]
    items: list[Item]
    objective: str
    enumerate: bool


@st.composite
def cases(draw: st.DrawFn) -> Case:
    steps = draw(st.integers(1, 3))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(steps)]
    channels = [draw(st.integers(1, 2))]
    sizes = [draw(st.integers(2, 7))]
    for kind in kinds:
        channels.append(channels[-1] if kind in ("max_pool", "avg_pool") else draw(st.integers(1, 2)))
        reach = sorted(torch_layers(kind, sizes[-1], channels[-2], channels[-1]))
        sizes.append(draw(st.sampled_from(reach)))
    per_step = [torch_layers(k, sizes[i], channels[i], channels[i + 1])[sizes[i + 1]] for i, k in enumerate(kinds)]
    items = _items(steps, draw)
    objective = draw(st.sampled_from(["params", "macs"]))
    where = ", ".join(f'"{text}"' for text, _, _ in items)
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
[constraints]
no_gaps = false
no_dead_pixels = false
no_identity = false
no_duplicates = false
faithful = false
no_constant_output = false
no_wasted_resampling = false
where = [{where}]
[objective]
minimize = "{objective}"
[build]
norm = "none"
bias = true
""".replace("'", '"')
    return Case(text, per_step, items, objective, draw(st.booleans()))


def brute_force(case: Case) -> list[tuple[tuple[int, int], tuple[tuple[int, ...], ...]]]:
    """Every design meeting every item, as (objective value, recipes) in the solver's documented order."""
    found = []
    for design in itertools.product(*case.per_step):
        if all(meaning(design) for _, meaning, _ in case.items):
            p, m = sum(x.params for x in design), sum(x.macs for x in design)
            value = (p, m) if case.objective == "params" else (m, p)
            recipes = tuple((x.kernel, x.stride, x.padding, x.output_padding, x.dilation or 1, x.ceil) for x in design)
            found.append((value, recipes))
    return sorted(found)


def solved(case: Case) -> list[tuple[tuple[int, int], tuple[tuple[int, ...], ...]]] | None:
    try:
        solution = solve(loads(case.text), top=20)
    except InfeasibleError:
        return None
    assert not solution.count_is_lower_bound
    listed = []
    for c in solution.candidates:
        value = (c.params, c.macs) if case.objective == "params" else (c.macs, c.params)
        recipes = tuple(
            (r.kernel, r.stride, r.padding, r.output_padding, r.dilation, r.ceil_mode)
            for r in (choice.recipes[0][0] for choice in c.choices)
        )
        listed.append((value, recipes))
    return [*listed, ("count", solution.count)]  # type: ignore[list-item]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_where_counts_and_top_20_match_brute_force(case: Case) -> None:
    expected = brute_force(case)
    cap = 0 if case.enumerate else crossing.STATE_CAP  # zero: every cross-step count goes to Z3 enumeration
    with mock.patch.object(crossing, "STATE_CAP", cap):
        got = solved(case)
    if not expected:
        assert got is None
        return
    assert got is not None
    assert got[-1] == ("count", len(expected))
    assert got[:-1] == expected[:20]


def test_both_paths_are_exercised() -> None:
    """The strategy reaches one-step items only, and cross-step ones (the Z3 model)."""
    problem = loads(
        'sizes = [8, 8, 8]\nchannels = [1, 1, 1]\nops = "conv"\ndims = 1\n'
        '[constraints]\nwhere = ["kernel[0] <= 3", "kernel[1:] == kernel[0]"]\n'
    )
    assert [len(crossing.local_atoms(problem, i)) for i in range(2)] == [1, 0]
    assert len(crossing.across(problem)) == 1


@pytest.mark.parametrize("cap", [0, crossing.STATE_CAP])
def test_a_cross_step_count_equals_the_brute_force(cap: int) -> None:
    """kernel[1:] == kernel[1] over three conv steps, by DP and by Z3 enumeration."""
    per_step = [torch_layers("conv", 6, 1, 1)[6]] * 3
    text = (
        'sizes = [6, 6, 6, 6]\nchannels = [1, 1, 1, 1]\nops = "conv"\ndims = 1\n'
        f"[search]\nkernel = {list(KERNEL)}\nstride = {list(STRIDE)}\npadding = {list(PADDING)}\n"
        f"dilation = {list(DILATION)}\n"
        + RULES_OFF
        + 'where = ["kernel[1:] == kernel[1]", "padding[0] != padding[2]"]\n[build]\nnorm = "none"\n'
    )
    expected = sum(
        1 for d in itertools.product(*per_step) if d[1].kernel == d[2].kernel and d[0].padding != d[2].padding
    )
    with mock.patch.object(crossing, "STATE_CAP", cap):
        assert solve(loads(text), top=3).count == expected > 0


def test_per_axis_fields_against_torch() -> None:
    """With search.per_axis, axis(...) reads one axis and a plain field must hold on every axis."""
    text = (
        'sizes = [[5, 5], [5, 3]]\nchannels = [1, 1]\nops = "conv"\n'
        "[search]\nkernel = [1, 3]\nstride = [1, 1]\npadding = [0, 1]\ndilation = [1, 1]\nper_axis = true\n"
        + RULES_OFF
        + 'where = ["axis(kernel[0], 0) == axis(padding[0], 0) * 2 + 1", "kernel[0] >= 2"]\n[build]\nnorm = "none"\n'
    )
    expected = 0
    for kh, kw, ph, pw in itertools.product(range(1, 4), range(1, 4), range(2), range(2)):
        try:
            out = nn.Conv2d(1, 1, (kh, kw), 1, (ph, pw))(torch.zeros(1, 1, 5, 5)).shape[2:]
        except RuntimeError:
            continue
        expected += tuple(out) == (5, 3) and kh == 2 * ph + 1 and kh >= 2 and kw >= 2
    assert solve(loads(text), top=1).count == expected > 0


def test_composite_steps_read_the_first_layer_with_the_field() -> None:
    """kernel of upsample+conv is the conv's; kernel[0, 0] is the upsample's, which has none."""
    text = (
        'sizes = [4, 8]\nchannels = [1, 1]\nops = "upsample+conv"\ndims = 1\n'
        "[search]\nkernel = [1, 3]\nstride = [1, 2]\npadding = [0, 1]\ndilation = [1, 1]\nscale = [1, 2]\n"
        + RULES_OFF
        + 'where = ["scale[0] == 2", "kernel[0] == kernel[0, 1]", "kernel[0] >= 2"]\n[build]\nnorm = "none"\n'
    )
    expected = 0
    for scale, k, s, p in itertools.product(range(1, 3), range(1, 4), range(1, 3), range(2)):
        try:
            up = nn.Upsample(scale_factor=float(scale), mode="nearest")
            out = nn.Conv1d(1, 1, k, s, p)(up(torch.zeros(1, 1, 4))).shape[-1]
        except RuntimeError:
            continue
        expected += out == 8 and scale == 2 and k >= 2
    assert solve(loads(text), top=1).count == expected > 0
    with pytest.raises(InfeasibleError, match=r'constraints.where\[3\] "kernel\[0, 0\] == 1"'):
        solve(loads(text.replace('"kernel[0] >= 2"]', '"kernel[0] >= 2", "kernel[0, 0] == 1"]')))

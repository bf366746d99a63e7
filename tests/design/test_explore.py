"""``archsolve.explore`` against a brute force over real torch layers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsolve import catalog as ops
from archsolve.core.recipe import AxisRecipe, Ranges
from archsolve.core.sizes import parse_size
from archsolve.design.explore import DEFAULT_KINDS, explore, explore_ranges
from archsolve.errors import InfeasibleError, InputError
from helpers.explore_bruteforce import bruteforce, reachable


def listed(result_recipes: object) -> set[tuple[str, tuple[AxisRecipe, ...]]]:
    return {(f.op, f.axes) for f in result_recipes}  # type: ignore[attr-defined]


def explore_set(size_in: object, size_out: object, op: str, k: int, s: int, p: int, d: int) -> set:
    try:
        result = explore(size_in, size_out, [op], explore_ranges(k, s, p, d), show_all=True)  # type: ignore[arg-type]
    except InfeasibleError:
        return set()
    return listed(result.recipes)


@settings(max_examples=40, deadline=None)
@given(
    op=st.sampled_from([*DEFAULT_KINDS, "batch_norm", "instance_norm", "group_norm"]),
    n_in=st.integers(1, 9),
    n_out=st.integers(1, 18),
    max_kernel=st.integers(1, 4),
    max_stride=st.integers(1, 3),
    max_padding=st.integers(0, 2),
    max_dilation=st.integers(1, 2),
)
def test_explore_lists_exactly_what_torch_runs(
    op: str, n_in: int, n_out: int, max_kernel: int, max_stride: int, max_padding: int, max_dilation: int
) -> None:
    """Square sizes, one kind: the same recipe set as building every torch layer in the ranges."""
    limits = (max_kernel, max_stride, max_padding, max_dilation)
    want = bruteforce(op, (n_in, n_in), (n_out, n_out), *limits)
    assert explore_set(n_in, n_out, op, *limits) == want


@settings(max_examples=5, deadline=None)
@given(h=st.integers(2, 7), w=st.integers(2, 7), oh=st.integers(1, 7), ow=st.integers(1, 7))
def test_per_axis_sizes_list_every_pair_of_axis_recipes(h: int, w: int, oh: int, ow: int) -> None:
    """HxW: a torch conv takes a recipe per axis, so every (H recipe, W recipe) pair torch runs is listed."""
    want = bruteforce("conv", (h, w), (oh, ow), 3, 2, 1, 1, square=False)
    assert explore_set((h, w), (oh, ow), "conv", 3, 2, 1, 1) == want


def test_each_recipe_once_in_a_stable_catalog_order() -> None:
    first = explore(16, 16)
    again = explore(16, 16)
    assert first == again
    assert len(set(listed(first.recipes))) == first.count
    order = [ops.KIND_ORDER[f.op] for f in first.recipes]
    assert order == sorted(order)
    for name in {f.op for f in first.recipes}:
        axes = [f.axes for f in first.recipes if f.op == name]
        assert axes == sorted(axes)


def test_default_kinds_are_the_kinds_with_a_recipe() -> None:
    """Norms keep any size and have nothing to choose: asked for, they are listed; by default not."""
    assert set(DEFAULT_KINDS) == set(ops.KINDS) - {"batch_norm", "instance_norm", "group_norm"}
    assert {f.op for f in explore(8, 8, show_all=True).recipes} == {
        "conv",
        "max_pool",
        "avg_pool",
        "upsample",
        "pixel_shuffle",
        "pixel_unshuffle",
        "residual_block",
        "conv_lstm",
        "conv_transpose",
    }
    assert [f.op for f in explore(8, 8, ["batch_norm"]).recipes] == ["batch_norm"]


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_the_seeds_rule_for_x2_x4_x8_is_among_the_answers(factor: int) -> None:
    """Seed 003: to enlarge f times use F=2f, S=f, P=f/2 (64 → 128 is F=4, S=2, P=1)."""
    ranges = explore_ranges(max_kernel=2 * factor, max_stride=factor, max_padding=factor // 2)
    result = explore(64, 64 * factor, ["conv_transpose"], ranges)
    rule = AxisRecipe(kernel=2 * factor, stride=factor, padding=factor // 2)
    assert ("conv_transpose", (rule, rule)) in listed(result.recipes)
    found = next(f for f in result.recipes if f.axes[0] == rule)
    assert not found.checkerboard and not found.gaps
    layer = torch.nn.ConvTranspose2d(1, 1, 2 * factor, factor, factor // 2)
    assert layer(torch.zeros(1, 1, 64, 64)).shape[-1] == 64 * factor


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_done_when_conv_transpose_16_to_32_has_the_20_recipes_torch_runs() -> None:
    want = bruteforce("conv_transpose", (16, 16), (32, 32), 8, 4, 4, 3)
    assert len(want) == 20
    assert explore_set(16, 32, "conv_transpose", 8, 4, 4, 3) == want


def test_flags_follow_the_catalog() -> None:
    result = explore(16, 32, ["conv_transpose"], show_all=True)
    by_kernel = {f.axes[0].kernel: f for f in result.recipes}
    assert by_kernel[3].checkerboard and not by_kernel[4].checkerboard
    assert by_kernel[1].gaps and not by_kernel[4].gaps


def test_json_form() -> None:
    data = explore((16, 8), (32, 16), ["conv_transpose"], explore_ranges(4, 2, 1, 1)).to_dict()
    assert data["in"] == [16, 8] and data["out"] == [32, 16]
    assert data["count"] == len(data["recipes"]) > 0
    first = data["recipes"][0]
    assert list(first) == [
        "op",
        "kernel",
        "stride",
        "padding",
        "output_padding",
        "dilation",
        "checkerboard",
        "gaps",
        "dead_pixels",
        "identity",
        "faithful",
    ]
    assert explore(16, 32, ["upsample"]).to_dict()["recipes"] == [
        {
            "op": "upsample",
            "scale": 2,
            "checkerboard": False,
            "gaps": False,
            "dead_pixels": False,
            "identity": False,
            "faithful": True,
        }
    ]


def test_non_square_recipes_are_per_axis_lists() -> None:
    data = explore((8, 8), (4, 8), ["conv"], explore_ranges(3, 2, 1, 1)).to_dict()
    strides = {tuple(r["stride"]) if isinstance(r["stride"], list) else r["stride"] for r in data["recipes"]}
    assert strides == {(2, 1)}


def test_nothing_fits_names_the_nearest_sizes_torch_reaches() -> None:
    """16 → 1000 with small transposed convs: the message names the largest size they reach."""
    nearest = max(h for h, _ in reachable("conv_transpose", (16, 16), 4, 2, 1, 1))
    with pytest.raises(InfeasibleError) as info:
        explore(16, 1000, ["conv_transpose"], explore_ranges(4, 2, 1, 1))
    assert info.value.exit_code == 1
    assert f"nearest OUT reachable: {nearest} (conv_transpose)" in str(info.value)


def test_nothing_fits_per_axis_names_a_shape_one_layer_reaches() -> None:
    """pixel_shuffle has one factor for both axes: 16x16 → 32x48 is out; 32x32 and 48x48 are nearest."""
    with pytest.raises(InfeasibleError) as info:
        explore((16, 16), (32, 48), ["pixel_shuffle"])
    text = str(info.value)
    assert "32x32 (pixel_shuffle)" in text and "48x48 (pixel_shuffle)" in text
    assert "32x48 (" not in text


@pytest.mark.parametrize(
    ("size_in", "size_out", "kinds", "ranges", "needle"),
    [
        (0, 4, None, None, "below 1"),
        ((4, 4), (4, 4, 4), None, None, "differ in axes"),
        ((1, 2, 3, 4), 2, None, None, "1 to 3"),
        (8, 8, ["conv_tranpose"], None, "did you mean 'conv_transpose'"),
        ((8, 8, 8), 4, ["pixel_shuffle"], None, "2D"),
        (8, 8, [], None, "no op kinds"),
        (8, 8, None, Ranges(kernel=(0, 3)), "kernel range starts at 0"),
        (8, 8, None, Ranges(stride=(3, 2)), "stride range 3..2 is empty"),
    ],
)
def test_bad_input_is_an_input_error(
    size_in: object, size_out: object, kinds: list[str] | None, ranges: Ranges | None, needle: str
) -> None:
    with pytest.raises(InputError, match=needle) as info:
        explore(size_in, size_out, kinds, ranges)  # type: ignore[arg-type]
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "size"),
    [("16", (16,)), ("64x48", (64, 48)), ("8X8x8", (8, 8, 8)), (" 7 ", (7,)), (12, (12,)), ([101, 75], (101, 75))],
)
def test_parse_size(text: object, size: object) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["abc", "0", "-3", "16x", "x16", "1.5", "", "16x16x16x16", "4x0", True, [], 1.5])
def test_parse_size_refuses(text: object) -> None:
    with pytest.raises(InputError):
        parse_size(text)


@pytest.mark.slow  # a new interpreter
def test_explore_imports_neither_torch_nor_z3() -> None:
    code = (
        "import sys; from archsolve.design.explore import explore; explore(16, 32); explore((16, 8), (32, 16));"
        "print(sorted(m for m in ('torch', 'z3', 'optuna') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_7_to_15_leaves_the_padded_1x1_conv_out_and_all_flags_it() -> None:
    """``conv k1 s1 p4`` grows 7 to 15 by zero padding: its border sees only padding, its stride is off."""
    padded = ("conv", (AxisRecipe(kernel=1, stride=1, padding=4),) * 2)
    default = explore(7, 15)
    assert padded not in listed(default.recipes) and default.left_out > 0
    every = explore(7, 15, show_all=True)
    found = next(f for f in every.recipes if (f.op, f.axes) == padded)
    assert found.dead_pixels and not found.faithful and not found.sensible
    assert every.count == default.count + default.left_out


def torch_sensible(op: str, r: AxisRecipe, n: int) -> bool:
    """The default per-layer rules by torch's account, for a 1-D layer of one channel (no bias)."""
    from archsolve.design.layer import Layer
    from helpers.ops_oracle import centres_1d, dead_in_torch, one_hot_response, ordered, stride_fits

    kind = ops.KINDS[op]
    layer = Layer.make(
        op, (1, n), [r], 1 if kind.has_weights else None, **({"bias": False} if kind.has_weights else {})
    )
    x, y = one_hot_response(layer)
    out = y.shape[-1]
    reached = (y.isfinite() & (y != 0)).flatten(1)
    unread = not bool(reached.any(dim=1).all())  # an input no output reads
    unwritten = not bool(reached.any(dim=0).all())  # an output no input reaches
    gaps = unwritten if op == "conv_transpose" else unread
    identity = y.shape == x.shape and torch.equal(y, x)
    faithful = (
        n < 2
        or out < 2
        or (
            stride_fits(r.stride, n, out, kind.scales_up)
            and ordered(centres_1d(op, r.kernel, r.stride, r.padding, r.output_padding, r.dilation, n, out))
        )
    )
    return not (gaps or dead_in_torch(layer, x, y) or identity) and faithful


@settings(max_examples=25, deadline=None)
@given(
    op=st.sampled_from(["conv", "conv_transpose", "max_pool", "avg_pool", "upsample"]),
    n_in=st.integers(1, 9),
    n_out=st.integers(1, 18),
)
def test_the_default_list_is_what_torch_probes_keep(op: str, n_in: int, n_out: int) -> None:
    """1-D: the default list is exactly the recipes of ``--all`` that torch's probes find free of gaps,
    dead pixels and identity, and faithful (stride against torch's sizes, centres probed)."""
    ranges = explore_ranges(4, 3, 2, 2)
    try:
        every = explore((n_in,), (n_out,), [op], ranges, show_all=True).recipes
    except InfeasibleError:
        return
    want = {(f.op, f.axes) for f in every if torch_sensible(f.op, f.axes[0], n_in)}
    try:
        got = listed(explore((n_in,), (n_out,), [op], ranges).recipes)
    except InfeasibleError:
        got = set()
    assert got == want

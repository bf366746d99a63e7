"""The compact recipe notation: what a table prints parses back to the same layers, steps and designs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsolve import catalog as ops
from archsolve.core.recipe import AxisRecipe
from archsolve.design import notation
from archsolve.design.layer import Layer
from archsolve.errors import InputError
from archsolve.problem.problem import load, loads
from archsolve.solve import solve

ROOT = Path(__file__).parents[2]


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    """Any kind with any searched fields per axis (validity does not matter to the notation)."""
    name = draw(st.sampled_from(sorted(ops.KINDS)))
    kind = ops.KINDS[name]
    ndim = draw(st.sampled_from(kind.ndims))

    def axis() -> AxisRecipe:
        values: dict[str, Any] = {}
        for field in kind.search_fields:
            values[field] = (
                draw(st.booleans()) if field == "ceil_mode" else draw(st.integers(0 if "padding" in field else 1, 12))
            )
        if isinstance(kind, ops.Conv) and not isinstance(kind, ops.ConvTranspose):
            values["pad_extra"] = draw(st.integers(0, 1))
        return AxisRecipe(**values)

    first = axis()
    axes = tuple(first if draw(st.booleans()) else axis() for _ in range(ndim))
    if any(a.ceil_mode != first.ceil_mode for a in axes):  # one flag per layer
        axes = tuple(a._replace(ceil_mode=first.ceil_mode) for a in axes)
    groups = draw(st.sampled_from([1, 2])) if isinstance(kind, ops.Conv) else 1
    shape = (4, *([8] * ndim))
    return Layer(name, shape, shape, axes, groups=groups)


@settings(max_examples=300, deadline=None)
@given(layer=layers())
def test_a_printed_layer_parses_back_to_its_recipes(layer: Layer) -> None:
    text = notation.layer_text(layer)
    parsed = notation.parse_layer(text)
    assert parsed.op == layer.op
    assert parsed.axes(layer.ndim) == layer.axes, text
    assert parsed.groups == layer.groups


def test_the_tutorial_design_reads_as_the_seed_prints_it() -> None:
    steps = notation.parse_design("conv_transpose k4 s1 | conv_transpose k4 s2 p1")
    assert [s.ops for s in steps] == [("conv_transpose",), ("conv_transpose",)]
    assert steps[0].recipes(2) == ((AxisRecipe(kernel=4),) * 2,)
    assert steps[1].recipes(2) == ((AxisRecipe(kernel=4, stride=2, padding=1),) * 2,)


def test_composites_channels_sizes_and_per_axis_values() -> None:
    (step,) = notation.parse_design("upsample ×2x1 + conv k3x5 p1x2 ->64 @8x4")
    assert step.ops == ("upsample", "conv")
    assert step.channels == 64 and step.size == (8, 4)
    up, conv = step.recipes(2)
    assert up == (AxisRecipe(stride=2), AxisRecipe(stride=1))
    assert conv == (AxisRecipe(kernel=3, padding=1), AxisRecipe(kernel=5, padding=2))
    same = notation.parse_step("upsample x2 + conv k3 →64")
    assert same.layers == (notation.parse_layer("upsample ×2"), notation.parse_layer("conv k3"))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "expected a design"),
        ("conv_transpos k4", "conv_transpose"),
        ("conv k4 q2", "'q2'"),
        ("conv k4 op1", "takes no output_padding"),
        ("upsample k2", "takes no kernel"),
        ("conv k4 k3", "twice"),
        ("conv k4 | | conv k3", "step 2"),
        ("conv k4 + ", "empty layer"),
    ],
)
def test_bad_text_names_what_does_not_parse(text: str, says: str) -> None:
    with pytest.raises(InputError) as info:
        notation.parse_design(text)
    assert says in str(info.value)


def test_per_axis_values_must_match_the_axes() -> None:
    layer = notation.parse_layer("conv k3x5x7")
    with pytest.raises(InputError, match="3 values for kernel on a 2-axis input"):
        layer.axes(2)


@pytest.mark.parametrize(
    "name", ["dcgan_generator", "upsample_x2_x4_x8", "unet_101x75", "cyclegan_generator", "keras_autoencoder"]
)
def test_every_printed_row_names_its_own_design(name: str) -> None:
    """Solve a bundled problem; each printed row parses back to the row's step kinds, recipes and channels."""
    problem = load(ROOT / "problems" / f"{name}.toml")
    solution = solve(problem, top=10)
    assert solution.candidates
    for candidate in solution.candidates:
        text = notation.design_text(candidate.design, problem)
        parsed = notation.parse_design(text)
        assert len(parsed) == len(candidate.choices)
        for i, (step, choice) in enumerate(zip(parsed, candidate.choices, strict=True)):
            assert step.ops in problem.steps[i], text
            assert step.recipes(problem.ndim) == choice.recipes, text
            assert step.channels in (None, choice.step.out_shape[0])
            assert (step.channels is None) == (problem.channels[i + 1] is not None)


def test_free_channels_and_sizes_are_written_where_chosen() -> None:
    problem = loads(
        'sizes = [4, "?", 16]\nchannels = [8, "?", 3]\nops = "upsample+conv"\n'
        "[search]\nkernel = [1, 3]\nscale = [1, 4]\nchannels = [4, 8]\nmultiple_of = 4\n"
    )
    solution = solve(problem, top=10)
    for candidate in solution.candidates:
        text = notation.design_text(candidate.design, problem)
        first, last = notation.parse_design(text)
        assert first.channels == candidate.choices[0].step.out_shape[0] and last.channels is None, text
        assert first.size == candidate.choices[0].target[0] and last.size is None, text
        assert first.recipes(2) == candidate.choices[0].recipes

"""The op catalog's contract: one suite, run over every kind in ``ops.KINDS``.

In the style of optuna's ``StorageTestCase``: the same tests are parametrized
over every implementation.  Hypothesis draws per-axis configurations for every
number of spatial axes a kind supports (non-square ones and ones torch rejects
included), builds the real torch module through :class:`Layer` and runs it on a
real tensor.  The catalog must agree with torch on validity, output shape,
trainable and non-trainable parameters and MACs (``FlopCounterMode`` FLOPs / 2),
and its Z3 encoding must hold for exactly the output size it computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsolve import catalog as ops
from archsolve.core.recipe import AxisRecipe
from archsolve.design.layer import Layer
from archsolve.errors import InputError
from helpers.ops_oracle import observe

KIND_NAMES = tuple(ops.KINDS)

#: Inclusive ranges drawn for each recipe field: small, but wide enough for torch to reject some.
FIELD_LIMITS = {"kernel": (1, 5), "stride": (1, 3), "padding": (0, 3), "output_padding": (0, 3), "dilation": (1, 3)}
#: Largest spatial size drawn per number of axes (keeps 3D forwards cheap).
MAX_SIZE = {1: 12, 2: 9, 3: 5}


@dataclass(frozen=True)
class Case:
    """One drawn configuration: what a user could ask the catalog for."""

    op: str
    in_shape: tuple[int, ...]
    axes: tuple[AxisRecipe, ...]
    out_channels: int | None
    options: tuple[tuple[str, Any], ...]

    @property
    def kind(self) -> ops.OpKind:
        return ops.KINDS[self.op]

    def checked(self) -> Layer | None:
        """The layer as the catalog makes it, or None when the catalog refuses it."""
        try:
            layer = Layer.make(self.op, self.in_shape, self.axes, self.out_channels, **dict(self.options))
        except InputError:
            return None
        return None if self.kind.shape_issue(layer) else layer

    def unchecked(self) -> Layer:
        """The same layer without the catalog's checks, so that torch can be asked about it.

        The builders read only the channel counts, the recipes and the options, so the
        output spatial sizes here are placeholders.
        """
        c_out = self.out_channels or self.in_shape[0]
        return Layer(self.op, self.in_shape, (c_out, *self.in_shape[1:]), self.axes, **dict(self.options))


@st.composite
def axis_recipes(draw: st.DrawFn, kind: ops.OpKind) -> AxisRecipe:
    """Values for the fields ``kind`` searches; the others keep their defaults."""
    values: dict[str, Any] = {}
    for name in kind.search_fields:
        if name == "ceil_mode":
            values[name] = draw(st.booleans())
        else:
            low, high = FIELD_LIMITS[name]
            values[name] = draw(st.integers(low, high))
    return AxisRecipe(**values)


@st.composite
def cases(draw: st.DrawFn, name: str) -> Case:
    kind = ops.KINDS[name]
    ndim = draw(st.sampled_from(kind.ndims))
    sizes = tuple(draw(st.integers(1, MAX_SIZE[ndim])) for _ in range(ndim))
    first = draw(axis_recipes(kind))
    axes = (first, *(draw(axis_recipes(kind)) for _ in range(ndim - 1)))
    if draw(st.booleans()) or kind.layer_compatible(axes, ndim):
        axes = (first,) * ndim  # square recipes, and the only form some kinds accept
    options: dict[str, Any] = {}
    out_channels: int | None = None
    c_in = draw(st.integers(1, 4))
    if kind.has_weights:
        options["bias"] = draw(st.booleans())
    if not kind.keeps_channels and kind.has_weights:
        out_channels = draw(st.integers(1, 4))
    if isinstance(kind, ops.Conv):
        options["groups"] = draw(st.sampled_from([1, 1, 2]))
    if isinstance(kind, ops.PixelShuffle) and not isinstance(kind, ops.PixelUnshuffle) and draw(st.booleans()):
        c_in *= first.stride**ndim  # the channel count the shuffle needs, half of the time
    if name == "upsample":
        options["mode"] = draw(st.sampled_from(sorted(ops.Upsample.MODES)))
    if name == "residual_block":
        options["norm"] = draw(st.sampled_from(sorted(ops.NORM_KINDS)))
    return Case(name, (c_in, *sizes), axes, out_channels, tuple(sorted(options.items())))


@pytest.mark.parametrize("name", KIND_NAMES)
class TestOpContract:
    """Every kind, the same contract."""

    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def test_agrees_with_torch(self, name: str, data: st.DataObject) -> None:
        """Validity, output shape, parameters and MACs, against a forward pass of the real module."""
        case = data.draw(cases(name))
        layer = case.checked()
        seen = observe(case.unchecked())
        assert (layer is None) == (seen is None), f"catalog {'rejects' if layer is None else 'accepts'}, torch not"
        if layer is None or seen is None:
            return
        assert layer.out_shape == seen.out_shape
        assert (layer.params.trainable, layer.params.non_trainable) == (seen.trainable, seen.non_trainable)
        assert layer.macs == seen.macs


def test_a_transposed_conv_whose_padding_eats_its_output_is_refused_like_torchs_empty_result() -> None:
    """Found by the contract suite: k4 s1 p2 on one pixel gives torch an empty 0x0 map, not an error."""
    import torch

    module = torch.nn.ConvTranspose2d(1, 1, 4, stride=1, padding=2, bias=False)
    assert module(torch.zeros(1, 1, 1, 1)).shape[2:] == (0, 0)
    assert ops.kind("conv_transpose").out_size(AxisRecipe(kernel=4, stride=1, padding=2), 1) is None

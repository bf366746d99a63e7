"""Blocks of several torch layers that keep the size: the residual block and the ConvLSTM cell."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..core.recipe import AxisRecipe, Ranges
from .base import LayerFields, OpKind, ParamCount, narrow, per_axis
from .conv import CONV
from .norm import NORM_KINDS, NORM_LAYERS, norm_module, norm_params

if TYPE_CHECKING:
    import torch


class SameConvBlock(OpKind):
    """Blocks built from stride-1 convs whose output must keep the input size (they add or recur)."""

    search_fields = ("kernel", "dilation", "padding")
    report_fields = ("kernel", "padding", "dilation")
    has_weights = True

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        if r.stride != 1:
            return None
        return n if CONV.out_size(r, n, ndim) == n else None

    def canonical(self, r: AxisRecipe) -> AxisRecipe:
        return CONV.canonical(r)

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        return replace(CONV.clip(ranges, n, n), stride=narrow(ranges.stride, 1))

    def gaps(self, r: AxisRecipe, n: int) -> bool:
        return CONV.gaps(r, n)  # the block's convs read what one stride-1 conv of this recipe reads

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return high

    def signature(self, r: AxisRecipe, n: int) -> Hashable:
        return CONV.signature(r, n) if r.stride == 1 else r

    def dead_pixels(self, r: AxisRecipe, n: int) -> bool:
        return r.stride == 1 and CONV.dead_pixels(r, n)

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        # The block's convs (and a residual's input added back) keep a varying input varying; from a
        # constant one, the conv's border taps decide, as for one conv of this recipe.
        return varying or (r.stride == 1 and CONV.varies(r, n, varying))

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return r.span - 1, 1

    @staticmethod
    def conv_args(layer: LayerFields) -> dict[str, Any]:
        return {
            "kernel_size": per_axis([a.kernel for a in layer.axes]),
            "padding": per_axis([a.padding for a in layer.axes]),
            "dilation": per_axis([a.dilation for a in layer.axes]),
        }


class ResidualBlock(SameConvBlock):
    """CycleGAN/ACGAN residual block: conv → norm → ReLU → conv → norm, plus the input."""

    name = "residual_block"
    keeps_channels = True
    layer_options = ("norm",)

    def params(self, layer: LayerFields) -> ParamCount:
        c = layer.in_shape[0]
        conv = math.prod(a.kernel for a in layer.axes) * c * c + (c if layer.bias else 0)
        return ParamCount(2 * conv) + norm_params(layer.norm, c, twice=True)

    def shape_issue(self, layer: LayerFields) -> str | None:
        # The block's norms see the block's own shape (it keeps the size).
        norm = NORM_KINDS.get(layer.norm)
        return NORM_LAYERS[norm].shape_issue(layer) if norm else None

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return 2 * (r.span - 1), 1

    def identity(self, r: AxisRecipe, n: int) -> bool:
        # The branch sees only padding: the block adds an input-free constant (zero without bias).
        return r.stride == 1 and all(not pairs for pairs in CONV.taps(r, n))

    def macs(self, layer: LayerFields) -> int:
        c = layer.in_shape[0]
        return 2 * math.prod(a.kernel for a in layer.axes) * c * c * math.prod(layer.out_shape[1:])

    def build(self, layer: LayerFields) -> torch.nn.Module:
        from .torch_blocks import ResidualBlock as Block

        ndim, channels = len(layer.axes), layer.in_shape[0]
        return Block(
            ndim,
            channels,
            make_norm=lambda: norm_module(layer.norm, channels, ndim),
            bias=layer.bias,
            **self.conv_args(layer),
        )


class ConvLSTM(SameConvBlock):
    """ConvLSTM cell run over time: the four gates are one conv from C_in + C_h to 4·C_h."""

    name = "conv_lstm"
    ndims = (2,)
    takes_sequence = True

    def params(self, layer: LayerFields) -> ParamCount:
        c_in, hidden = layer.in_shape[0], layer.out_shape[0]
        taps = math.prod(a.kernel for a in layer.axes)
        return ParamCount(taps * (c_in + hidden) * 4 * hidden + (4 * hidden if layer.bias else 0))

    def macs(self, layer: LayerFields) -> int:
        c_in, hidden = layer.in_shape[0], layer.out_shape[0]
        taps = math.prod(a.kernel for a in layer.axes)
        return taps * (c_in + hidden) * 4 * hidden * math.prod(layer.out_shape[1:])

    def build(self, layer: LayerFields) -> torch.nn.Module:
        from .torch_blocks import ConvLSTM as Cell

        return Cell(layer.in_shape[0], layer.out_shape[0], bias=layer.bias, **self.conv_args(layer))

"""Resampling without weights: ``upsample``, ``pixel_shuffle`` and ``pixel_unshuffle``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from ..core.recipe import AxisRecipe, Ranges
from ..errors import InputError, unknown
from .base import LayerFields, OpKind, narrow

if TYPE_CHECKING:
    import torch


class ScaledUp(OpKind):
    """Kinds that enlarge every axis by an integer factor held in ``stride``: ``out = in * s``
    (``search.scale`` gives the factors; factor 1 passes the axis through)."""

    scales_up = True
    search_fields = ("stride",)
    range_of: ClassVar[dict[str, str]] = {"stride": "scale"}
    report_fields = ("stride",)

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        return n * r.stride if r.stride >= 1 else None

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        return ranges if high is None else replace(ranges, scale=narrow(ranges.scale, high // max(n, 1)))

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return None if high is None else high // ranges.scale[0]

    def identity(self, r: AxisRecipe, n: int) -> bool:
        return r.stride == 1


class Upsample(ScaledUp):
    """``nn.Upsample`` with an integer scale per axis (``stride`` holds the scale): ``out = in * scale``."""

    name = "upsample"
    layer_options = ("mode",)
    describe_as: ClassVar[dict[str, str]] = {"stride": "scale"}
    keeps_channels = True
    MODES: ClassVar[dict[str, dict[int, str]]] = {
        "nearest": {1: "nearest", 2: "nearest", 3: "nearest"},
        "bilinear": {1: "linear", 2: "bilinear", 3: "trilinear"},
    }

    def build(self, layer: LayerFields) -> torch.nn.Module:
        from torch import nn

        if layer.mode not in self.MODES:
            raise InputError(unknown("upsample mode", layer.mode, self.MODES))
        scale = tuple(float(a.stride) for a in layer.axes)
        return nn.Upsample(scale_factor=scale, mode=self.MODES[layer.mode][len(layer.axes)])


class PixelShuffle(ScaledUp):
    """``nn.PixelShuffle(r)`` on 2D inputs: C·r² channels to C, each axis ×r (``stride`` holds r)."""

    name = "pixel_shuffle"
    describe_as: ClassVar[dict[str, str]] = {"stride": "factor"}
    ndims = (2,)

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        # Output y reads channel y mod r of input y // r: channels the layers before chose apart, so from
        # a factor of 2 on the output varies even where the input was constant.
        return r.stride >= 2 or varying

    def factor(self, axes: Sequence[AxisRecipe]) -> int:
        return axes[0].stride

    def layer_compatible(self, axes: Sequence[AxisRecipe], ndim: int) -> str | None:
        if len({a.stride for a in axes}) > 1:
            return f"{self.name}: one factor for both axes"
        return super().layer_compatible(axes, ndim)

    def channels_out(self, c_in: int, c_out: int | None, axes: Sequence[AxisRecipe], groups: int = 1) -> int:
        square = self.factor(axes) ** len(axes)
        if c_in % square:
            raise InputError(f"{self.name}: in channels {c_in} must be divisible by factor² = {square}")
        got = c_in // square
        if c_out not in (None, got):
            raise InputError(f"{self.name}: {c_in} channels in gives {got} out, not {c_out}")
        return got

    def channels_before(self, c_out: int, axes: Sequence[AxisRecipe]) -> int | None:
        return c_out * self.factor(axes) ** len(axes)

    def build(self, layer: LayerFields) -> torch.nn.Module:
        from torch import nn

        return nn.PixelShuffle(self.factor(layer.axes))


class PixelUnshuffle(PixelShuffle):
    """``nn.PixelUnshuffle(r)``: C channels to C·r², each axis ÷r (must divide)."""

    name = "pixel_unshuffle"
    scales_up = False

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        return OpKind.varies(self, r, n, varying)  # positions fold into channels: nothing new varies

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        return n // r.stride if r.stride >= 1 and n % r.stride == 0 else None

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        return replace(ranges, scale=narrow(ranges.scale, n))

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return None if high is None else high * ranges.scale[1]

    def channels_out(self, c_in: int, c_out: int | None, axes: Sequence[AxisRecipe], groups: int = 1) -> int:
        got = c_in * self.factor(axes) ** len(axes)
        if c_out not in (None, got):
            raise InputError(f"{self.name}: {c_in} channels in gives {got} out, not {c_out}")
        return got

    def channels_before(self, c_out: int, axes: Sequence[AxisRecipe]) -> int | None:
        square = self.factor(axes) ** len(axes)
        return c_out // square if c_out % square == 0 else None

    def build(self, layer: LayerFields) -> torch.nn.Module:
        from torch import nn

        return nn.PixelUnshuffle(self.factor(layer.axes))

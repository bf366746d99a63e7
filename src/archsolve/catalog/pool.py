"""Pooling: ``max_pool`` and ``avg_pool``."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

from ..core.recipe import AxisRecipe, Ranges
from .base import (
    LayerFields,
    PaddedKind,
    clip_windowed,
    nd,
    window_args,
    window_gaps,
    window_taps,
    windowed_max_input,
)

if TYPE_CHECKING:
    import torch


class Pool(PaddedKind):
    """Max/avg pooling: the conv rule with ``ceil_mode`` and torch's padding checks."""

    keeps_channels = True
    report_fields = ("kernel", "stride", "padding", "output_padding", "dilation", "ceil_mode")
    stride_defaults_to_kernel = True

    def max_padding(self, r: AxisRecipe) -> int:
        """Torch's "pad should be at most half of ... kernel size" bound for the installed version.

        torch >= 2.x checks the undilated kernel (``k // 2``) for every dimension; the
        contract test builds real layers to prove the installed torch agrees.
        """
        return r.kernel // 2

    def window_count(self, r: AxisRecipe, n: int) -> int:
        room = n + 2 * r.padding - r.span
        if r.ceil_mode:
            out = -(-room // r.stride) + 1
            # The last window must start inside the input or the left padding.
            if (out - 1) * r.stride >= n + r.padding:
                out -= 1
            return out
        return room // r.stride + 1

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        if r.kernel < 1 or r.stride < 1 or r.dilation < 1 or not 0 <= r.padding <= self.max_padding(r):
            return None
        out = self.window_count(r, n)
        return out if out >= 1 else None

    def keras_padding(self, r: AxisRecipe, n: int, word: str) -> AxisRecipe | None:
        if r.ceil_mode:
            return None  # the word decides ceil_mode; keep one representative
        if word == "valid":
            return r._replace(padding=0)
        want = -(-n // r.stride)
        total = max((want - 1) * r.stride + r.span - n, 0)
        for fixed in (r._replace(padding=total // 2), r._replace(padding=total // 2, ceil_mode=True)):
            if self.out_size(fixed, n) == want:
                return fixed
        return None

    def gaps(self, r: AxisRecipe, n: int) -> bool:
        return window_gaps(r, n, self.out_size(r, n))

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return r.span - 1, r.stride

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        ceil = True in ranges.ceil_mode  # ceil_mode: a last window may start up to a stride past the end
        slack = ranges.stride[1] if ceil else 1
        return clip_windowed(ranges, n, None if high is None else high + 1, slack)

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return windowed_max_input(ranges, high)

    def windows(self, r: AxisRecipe, n: int) -> tuple[tuple[int, ...], ...]:
        """Per output position, the input positions its window covers (padding left out)."""
        out = self.out_size(r, n)
        return () if out is None else tuple(tuple(t for _, t in pairs) for pairs in window_taps(r, n, out))

    def signature(self, r: AxisRecipe, n: int) -> Hashable:
        return self.windows(r, n)  # a max over the same inputs, whatever kernel, stride or dilation

    def dead_pixels(self, r: AxisRecipe, n: int) -> bool:
        return any(not w for w in self.windows(r, n))

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        # A max over each window: outputs differ when their windows do; from a constant input every
        # (non-empty) window gives that constant.
        windows = self.windows(r, n)
        reads = {w if varying else bool(w) for w in windows}
        return len(windows) >= 2 and len(reads) > 1

    def identity(self, r: AxisRecipe, n: int) -> bool:
        return self.signature(r, n) == self.signature(AxisRecipe(), n)

    def layer_compatible(self, axes: Sequence[AxisRecipe], ndim: int) -> str | None:
        if len({a.ceil_mode for a in axes}) > 1:
            return f"{self.name}: ceil_mode is one flag for every axis"
        return super().layer_compatible(axes, ndim)


class MaxPool(Pool):
    name = "max_pool"
    search_fields = ("kernel", "stride", "padding", "dilation", "ceil_mode")

    def build(self, layer: LayerFields) -> torch.nn.Module:
        return nd("MaxPool", len(layer.axes))(
            **window_args(layer.axes, ("kernel", "stride", "padding", "dilation")),
            ceil_mode=layer.axes[0].ceil_mode,
        )


class AvgPool(Pool):
    name = "avg_pool"
    search_fields = ("kernel", "stride", "padding", "ceil_mode")
    report_fields = ("kernel", "stride", "padding", "output_padding", "dilation", "ceil_mode")

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        if r.dilation != 1:
            return None
        if ndim == 3 and n < r.kernel:
            return None  # avg_pool3d: "input image smaller than kernel size", padding not counted
        return super().out_size(r, n, ndim)

    def signature(self, r: AxisRecipe, n: int) -> Hashable:
        # torch divides by the window's extent within the padded input (count_include_pad=True):
        # min(start + k, n + p) - start, so padding counts but a ceil_mode overhang does not.
        windows = self.windows(r, n)
        divisors = [
            min(o * r.stride - r.padding + r.kernel, n + r.padding) - (o * r.stride - r.padding)
            for o in range(len(windows))
        ]
        return tuple((w, d if w else 0) for w, d in zip(windows, divisors, strict=True))

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        # Output o is Σ x over its window / its divisor; from a constant c it is c·|window|/divisor.
        reads = self.signature(r, n)
        assert isinstance(reads, tuple)
        seen = {pair if varying else Fraction(len(pair[0]), pair[1] or 1) for pair in reads}
        return len(reads) >= 2 and len(seen) > 1

    def build(self, layer: LayerFields) -> torch.nn.Module:
        return nd("AvgPool", len(layer.axes))(
            **window_args(layer.axes, ("kernel", "stride", "padding")),
            ceil_mode=layer.axes[0].ceil_mode,
        )

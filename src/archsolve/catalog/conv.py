"""Convolutions: ``conv`` and ``conv_transpose``."""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from ..core.recipe import AxisRecipe, Ranges
from ..errors import InputError
from .base import (
    LayerFields,
    PaddedKind,
    ParamCount,
    Taps,
    clip_windowed,
    covers,
    narrow,
    nd,
    padding_high,
    reach_mask,
    window_args,
    window_gaps,
    window_taps,
    windowed_max_input,
)

if TYPE_CHECKING:
    import torch


@functools.lru_cache(maxsize=65536)
def _scatter_taps(r: AxisRecipe, n: int, out: int) -> Taps:
    """Transposed convs: input ``x`` adds into output ``x·s − p + j·d`` through tap ``j``."""
    per: list[list[tuple[int, int]]] = [[] for _ in range(out)]
    for x in range(n):
        for j in range(r.kernel):
            y = x * r.stride - r.padding + j * r.dilation
            if 0 <= y < out:
                per[y].append((j, x))
    return tuple(tuple(pairs) for pairs in per)


class Conv(PaddedKind):
    """``nn.ConvNd``: ``out = floor((in + 2p - d(k-1) - 1) / s) + 1``."""

    name = "conv"
    search_fields: ClassVar[tuple[str, ...]] = ("kernel", "stride", "padding", "dilation")
    report_fields = ("kernel", "stride", "padding", "output_padding", "dilation")
    has_weights = True
    normed = True
    takes_groups = True

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        padded = n + 2 * r.padding + r.pad_extra
        if r.kernel < 1 or r.stride < 1 or r.dilation < 1 or r.padding < 0 or r.pad_extra < 0 or padded < r.span:
            return None
        return (padded - r.span) // r.stride + 1

    def keras_padding(self, r: AxisRecipe, n: int, word: str) -> AxisRecipe | None:
        if word == "valid":
            return r._replace(padding=0, pad_extra=0)
        out = -(-n // r.stride)
        total = max((out - 1) * r.stride + r.span - n, 0)
        return r._replace(padding=total // 2, pad_extra=total % 2)

    def gaps(self, r: AxisRecipe, n: int) -> bool:
        return window_gaps(r, n, self.out_size(r, n))

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        return clip_windowed(ranges, n, high)

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return windowed_max_input(ranges, high)

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return r.span - 1, r.stride

    def taps(self, r: AxisRecipe, n: int) -> Taps:
        """Which weight meets which input at each output position: the layer's whole linear map on an axis."""
        out = self.out_size(r, n)
        return () if out is None else window_taps(r, n, out)

    def signature(self, r: AxisRecipe, n: int) -> Hashable:
        # Same kernel (so the same weights fit) and the same taps: the same sums, whatever the
        # stride or dilation that produced them (a stride on a 1-wide output, a dilation past the input).
        return r.kernel, self.taps(r, n)

    def dead_pixels(self, r: AxisRecipe, n: int) -> bool:
        return any(not pairs for pairs in self.taps(r, n))

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        # Output o is bias + Σ w_j·x_t over its (tap j, input t) pairs.  For free weights two outputs agree
        # always exactly when they have the same pairs; from an input constant along the axis, the same
        # taps (k3 p1 from a constant: the border pixels lack a tap, so the output varies).
        taps = self.taps(r, n)
        reads = {frozenset(pairs) if varying else frozenset(j for j, _ in pairs) for pairs in taps}
        return len(taps) >= 2 and len(reads) > 1

    def weight_count(self, layer: LayerFields) -> int:
        c_in, c_out = layer.in_shape[0], layer.out_shape[0]
        return math.prod(a.kernel for a in layer.axes) * c_in * c_out // layer.groups

    def channels_out(self, c_in: int, c_out: int | None, axes: Sequence[AxisRecipe], groups: int = 1) -> int:
        c = super().channels_out(c_in, c_out, axes, groups)
        if groups < 1 or c_in % groups or c % groups:
            raise InputError(f"{self.name}: groups={groups} must divide in channels {c_in} and out channels {c}")
        return c

    def params(self, layer: LayerFields) -> ParamCount:
        return ParamCount(self.weight_count(layer) + (layer.out_shape[0] if layer.bias else 0))

    def macs(self, layer: LayerFields) -> int:
        return self.weight_count(layer) * math.prod(layer.out_shape[1:])

    def build(self, layer: LayerFields) -> torch.nn.Module:
        from torch import nn

        ndim = len(layer.axes)
        conv = nd("Conv", ndim)(
            layer.in_shape[0],
            layer.out_shape[0],
            **window_args(layer.axes, ("kernel", "stride", "padding", "dilation")),
            groups=layer.groups,
            bias=layer.bias,
        )
        extra = _trailing_pad(layer.axes)
        return nn.Sequential(nd("ConstantPad", ndim)(extra, 0.0), conv) if any(extra) else conv


def _trailing_pad(axes: Sequence[AxisRecipe]) -> tuple[int, ...]:
    """``F.pad`` order (last axis first, before/after pairs) for the Keras trailing zero."""
    pads: list[int] = []
    for a in reversed(axes):
        pads += [0, a.pad_extra]
    return tuple(pads)


class ConvTranspose(Conv):
    """``nn.ConvTransposeNd``: ``out = (in-1)s - 2p + d(k-1) + op + 1`` with ``op < max(s, d)``."""

    name = "conv_transpose"
    search_fields = ("kernel", "stride", "padding", "output_padding", "dilation")
    takes_output_size = True
    scales_up = True

    def in_order(self, r: AxisRecipe, out: int) -> bool:
        # Output y gathers input x = (y + p − j·d) / s through every tap j where that is an integer (x past
        # either edge counted).  The centres repeat with period s, one input further each period, so a
        # step backwards anywhere shows between two fed outputs of the first two periods (k3 s3 p3 d2:
        # centres 1, 0, 1, 2, ...; k4 s2 p1: −0.5, 0.5, 0.5, 1.5, ...).
        last: tuple[int, int] | None = None
        for y in range(min(out, 2 * r.stride)):
            fed = [y + r.padding - j * r.dilation for j in range(r.kernel)]
            xs = [v // r.stride for v in fed if v % r.stride == 0]
            if not xs:
                continue
            here = (sum(xs), len(xs))
            if last is not None and here[0] * last[1] < last[0] * here[1]:
                return False
            last = here
        return True

    def canonical(self, r: AxisRecipe) -> AxisRecipe:
        # k=1 at any dilation is one layer; the representative is the smallest dilation torch accepts.
        return r._replace(dilation=1) if r.kernel == 1 else r

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        if r.kernel < 1 or r.stride < 1 or r.dilation < 1 or r.padding < 0:
            return None
        if not 0 <= r.output_padding < max(r.stride, r.dilation):
            return None
        out = (n - 1) * r.stride - 2 * r.padding + r.dilation * (r.kernel - 1) + r.output_padding + 1
        return out if out >= 1 else None

    def keras_padding(self, r: AxisRecipe, n: int, word: str) -> AxisRecipe | None:
        # TF: same -> in*s; valid -> in*s + max(span - s, 0).  Solve 2p - op = span - s (same)
        # or p = 0 (valid) with 0 <= op < max(s, d).
        excess = r.span - r.stride
        if word == "valid":
            padding, op = 0, max(-excess, 0)
        else:
            padding = max(excess, 0) // 2 + max(excess, 0) % 2
            op = 2 * padding - excess
        fixed = r._replace(padding=padding, output_padding=op)
        return fixed if op < max(r.stride, r.dilation) else None

    def gaps(self, r: AxisRecipe, n: int) -> bool:
        out = self.out_size(r, n)
        if out is None:
            return False
        offsets = [j * r.dilation - r.padding for j in range(r.kernel)]
        return not covers(reach_mask(n, r.stride, offsets), out)

    def taps(self, r: AxisRecipe, n: int) -> Taps:
        out = self.out_size(r, n)
        return () if out is None else _scatter_taps(r, n, out)

    def dead_pixels(self, r: AxisRecipe, n: int) -> bool:
        # An output no input reaches (it is only bias), or an input that reaches no output: the
        # transposed view of a conv output whose window lies in padding (k3 s3 p4 crops input 0 away).
        taps = self.taps(r, n)
        used = {x for pairs in taps for _, x in pairs}
        return any(not pairs for pairs in taps) or len(used) < n

    def checkerboard(self, r: AxisRecipe) -> bool:
        # Interior output pixels get an uneven number of taps: Odena's "kernel not divisible by
        # stride", or (dilated) taps that only land on some residues modulo the stride.
        return r.kernel % r.stride != 0 or math.gcd(r.dilation, r.stride) > 1

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        # out = (n-1)s - 2p + span + op with 0 <= op < max(s, d) and out >= 1.
        ranges = replace(
            ranges, output_padding=narrow(ranges.output_padding, max(ranges.stride[1], ranges.dilation[1]) - 1)
        )
        if high is None:
            return ranges
        for _ in range(2):  # the padding bounds kernel and stride, the kernel bounds the padding
            pad = padding_high(ranges)
            if pad is None:
                break  # "same": the padding grows with the kernel; out = n * s bounds only the stride
            room = high + 2 * pad  # out <= high: (n-1)s + span + op <= high + 2p
            if n > 1:
                ranges = replace(ranges, stride=narrow(ranges.stride, room // (n - 1)))
            kernel = narrow(ranges.kernel, (room - (n - 1) * ranges.stride[0]) // ranges.dilation[0] + 1)
            dilation = narrow(ranges.dilation, max(room, ranges.output_padding[1] + 1))
            ranges = replace(ranges, kernel=kernel, dilation=dilation)
            if ranges.padding_word is None:
                span = ranges.dilation[1] * (ranges.kernel[1] - 1) + 1
                top = ((n - 1) * ranges.stride[1] + span + ranges.output_padding[1]) // 2
                ranges = replace(ranges, padding=narrow(ranges.padding, top))
        if ranges.padding_word == "same" and n > 0:
            ranges = replace(ranges, stride=narrow(ranges.stride, high // n))
        return ranges

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        if high is None:
            return None
        pad = padding_high(ranges)
        if pad is None:
            return high // ranges.stride[0] + 1
        return (high + 2 * pad) // ranges.stride[0] + 1

    def size_range(self, r: AxisRecipe, n: int) -> tuple[int, int] | None:
        """Sizes torch accepts as ``output_size=`` at run time: the op=0 size up to stride − 1 more.

        Torch picks the output_padding itself and checks only this range, whatever the dilation.
        """
        low = self.out_size(r._replace(output_padding=0), n)
        return None if low is None else (low, low + r.stride - 1)

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return None

    def macs(self, layer: LayerFields) -> int:
        # Every input position meets every kernel tap once: C_in * C_out/g * k^n per input position.
        return self.weight_count(layer) * math.prod(layer.in_shape[1:])

    def build(self, layer: LayerFields) -> torch.nn.Module:
        return nd("ConvTranspose", len(layer.axes))(
            layer.in_shape[0],
            layer.out_shape[0],
            **window_args(layer.axes, ("kernel", "stride", "padding", "output_padding", "dilation")),
            groups=layer.groups,
            bias=layer.bias,
        )


CONV = Conv()

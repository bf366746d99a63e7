"""The op catalog: the only code that knows a layer kind's arithmetic.

One class per kind holds, in one place, its per-axis output-size rule, the
rules PyTorch enforces at run time, its parameter and MAC counts and its
torch builder.  Solver, counter, builder and
CLI all ask this module; nothing else repeats a formula.

Torch is imported inside the methods that need it, so that listing
recipes (``archsolve explore``) stays light.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import product
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .errors import InputError, unknown
from .recipe import AxisRecipe, Ranges
from .sizes import channels_text

if TYPE_CHECKING:
    import torch


class Layer(Protocol):
    """The fields of a layer a kind reads; :class:`archsolve.layer.Layer` has them.

    A protocol, not the class, so the catalog never imports the layer that asks it (no import cycle).
    Named like the class so the kinds' signatures read as before; the re-layout names it ``LayerFields``.
    """

    @property
    def op(self) -> str: ...
    @property
    def in_shape(self) -> tuple[int, ...]: ...
    @property
    def out_shape(self) -> tuple[int, ...]: ...
    @property
    def axes(self) -> tuple[AxisRecipe, ...]: ...
    @property
    def groups(self) -> int: ...
    @property
    def bias(self) -> bool: ...
    @property
    def mode(self) -> str: ...
    @property
    def norm(self) -> str: ...


@dataclass(frozen=True)
class ParamCount:
    """Parameters as Keras counts them: trainable weights and non-trainable state (BN running stats)."""

    trainable: int = 0
    non_trainable: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __add__(self, other: ParamCount) -> ParamCount:
        return ParamCount(self.trainable + other.trainable, self.non_trainable + other.non_trainable)


def _nd(name: str, ndim: int) -> Any:
    """``torch.nn`` class ``{name}{ndim}d`` (Conv2d, MaxPool3d, ...)."""
    from torch import nn

    return getattr(nn, f"{name}{ndim}d")


def _per_axis(values: Sequence[int]) -> int | tuple[int, ...]:
    """PyTorch's convention: one int when every axis agrees, else a tuple."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def _reach_mask(count: int, step: int, offsets: Sequence[int]) -> int:
    """Bitmask of ``o * step + off`` for ``o < count`` and every offset (negative bits dropped)."""
    base = 0
    for o in range(count):
        base |= 1 << (o * step + 64)
    mask = 0
    for off in offsets:
        shift = off + 64
        mask |= base << shift if shift >= 0 else base >> -shift
    return mask >> 128


def _covers(mask: int, size: int) -> bool:
    full = (1 << size) - 1
    return mask & full == full


def _padding_high(ranges: Ranges) -> int | None:
    """The largest padding a recipe can get: the range's top, 0 for ``valid``, unbounded for ``same``."""
    if ranges.padding_word == "valid":
        return 0
    return None if ranges.padding_word == "same" else ranges.padding[1]


def _narrow(span: tuple[int, int], high: int) -> tuple[int, int]:
    """``span`` with its top lowered to ``high``, never below its bottom (an empty range stays a range)."""
    return span[0], max(span[0], min(span[1], high))


def _clip_windowed(ranges: Ranges, n: int, high: int | None, slack: int = 1) -> Ranges:
    """Clip for windowed kinds, ``out = floor((n + 2p + e - span) / s) + 1``: a window must start within the
    padded input (``slack``: Keras' trailing zero, or a stride's worth for ceil_mode), and ``out <= high``
    bounds the padding."""
    for _ in range(2):  # the kernel bounds the padding and the padding the kernel; two rounds settle both
        pad = _padding_high(ranges)
        if pad is not None:
            room = n + 2 * pad + slack  # the largest padded input a window may reach into
            kernel = _narrow(ranges.kernel, (room - 1) // ranges.dilation[0] + 1)
            dilation = _narrow(ranges.dilation, room // max(kernel[0] - 1, 1))
            ranges = replace(ranges, kernel=kernel, dilation=dilation)
        if high is not None and ranges.padding_word is None:
            span = ranges.dilation[1] * (ranges.kernel[1] - 1) + 1
            ranges = replace(ranges, padding=_narrow(ranges.padding, (high * ranges.stride[1] + span - n) // 2 + 1))
    return ranges


def _windowed_max_input(ranges: Ranges, high: int | None) -> int | None:
    if high is None:
        return None
    if ranges.padding_word == "same":
        return high * ranges.stride[1]
    span = ranges.dilation[1] * (ranges.kernel[1] - 1) + 1
    low_pad = 0 if ranges.padding_word is not None else ranges.padding[0]
    return (high + 1) * ranges.stride[1] + span - 2 * low_pad


Taps = tuple[tuple[tuple[int, int], ...], ...]
"""Per output position, the (kernel tap, input position) pairs that meet inside the input."""


@functools.lru_cache(maxsize=65536)
def _window_taps(r: AxisRecipe, n: int, out: int) -> Taps:
    """Conv and pool windows: output ``o`` reads input ``o·s − p + j·d`` for tap ``j`` (padding elsewhere)."""
    return tuple(
        tuple((j, t) for j in range(r.kernel) if 0 <= (t := o * r.stride - r.padding + j * r.dilation) < n)
        for o in range(out)
    )


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


class OpKind(ABC):
    """One layer kind. Subclasses fill in the arithmetic; the base supplies enumeration."""

    name: ClassVar[str]
    #: AxisRecipe fields searched for this kind (others stay at their defaults).
    search_fields: ClassVar[tuple[str, ...]] = ()
    #: Ranges attribute each searched field draws its values from, where it is not the field's own name.
    range_of: ClassVar[dict[str, str]] = {}
    #: Fields reported for a recipe of this kind (explore, JSON, summary).
    report_fields: ClassVar[tuple[str, ...]] = ()
    #: Names fields are reported and written by, where not the field's own (upsample's stride is its scale).
    describe_as: ClassVar[dict[str, str]] = {}
    #: Numbers of spatial axes torch supports for this kind.
    ndims: ClassVar[tuple[int, ...]] = (1, 2, 3)
    #: Whether out channels always equal in channels.
    keeps_channels: ClassVar[bool] = False
    #: Whether the layer holds convolution weights (so a bias and a following norm make sense).
    has_weights: ClassVar[bool] = False
    #: Whether the layer runs over the whole (B, T, C, *spatial) sequence (others see frames, T folded into B).
    takes_sequence: ClassVar[bool] = False
    #: Whether torch's forward takes ``output_size=`` (a transposed conv serving several input sizes).
    takes_output_size: ClassVar[bool] = False
    #: Whether the builder follows the layer with the problem's norm and activation (``[build]``).
    normed: ClassVar[bool] = False
    #: Whether the layer takes ``groups`` (grouped convolutions).
    takes_groups: ClassVar[bool] = False
    #: Whether the kind is a normalisation (it keeps every size; recipes and tables leave it out).
    is_norm: ClassVar[bool] = False
    #: Whether an unset stride means the kernel size (torch's pooling default).
    stride_defaults_to_kernel: ClassVar[bool] = False
    #: :class:`Layer` fields besides the recipe this kind reads: ``mode`` (interpolation), ``norm`` (its own norms).
    layer_options: ClassVar[tuple[str, ...]] = ()
    #: Whether a stride above 1 enlarges the axis (transposed conv, upsample, pixel shuffle) rather than shrinks it.
    scales_up: ClassVar[bool] = False

    # --- size arithmetic -------------------------------------------------------------------
    @abstractmethod
    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        """Output size on one axis, or None where PyTorch rejects the layer."""

    def canonical(self, r: AxisRecipe) -> AxisRecipe:
        """Collapse fields that do not change the layer (k=1 at any dilation is one layer)."""
        return r._replace(dilation=1) if r.kernel == 1 else r

    def candidates(self, ranges: Ranges) -> Iterator[AxisRecipe]:
        """Every field combination within ``ranges`` for this kind, before validity checks."""
        default = AxisRecipe()
        axes = [
            _field_values(ranges, self.range_of.get(name, name)) if name in self.search_fields else (value,)
            for name, value in zip(AxisRecipe._fields, default, strict=True)
        ]
        return map(AxisRecipe._make, product(*axes))

    def recipes(
        self, n: int, ranges: Ranges, ndim: int = 2, check: Callable[[], None] | None = None
    ) -> tuple[tuple[AxisRecipe, int], ...]:
        """Every distinct valid recipe from input size ``n``, with its output size, in stable order.

        ``check`` is called every few thousand candidates (a deadline raises from it); results are
        cached per (kind, size, ranges), so a second call costs nothing.
        """
        key = (self.name, n, ranges, ndim)
        found = _RECIPES.get(key)
        if found is None:
            if len(_RECIPES) >= 4096:
                _RECIPES.clear()  # a bound, not an LRU: a solve reuses its entries right away
            found = _RECIPES[key] = _recipes(self, n, ranges, ndim, check)
        return found

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        """``ranges`` narrowed to the values that can give a layer torch accepts from input size ``n``
        with an output of at most ``high`` (None: unbounded).

        Exact: every recipe dropped is one :meth:`out_size` rejects or sends above ``high``, so
        ``kernel = [1, 10**9]`` costs what the sizes allow.  The base keeps the ranges.
        """
        return ranges

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        """The largest input size from which some recipe within ``ranges`` gives an output of at most
        ``high`` (None: no bound known), for pruning the earlier ops of a composite step."""
        return None

    def candidate_count(self, ranges: Ranges) -> int:
        """How many field combinations :meth:`candidates` yields for ``ranges`` (before validity checks)."""
        total = 1
        for name in self.search_fields:
            source = self.range_of.get(name, name)
            total *= len(_field_values(ranges, source))
        return total

    def solve(self, n_in: int, n_out: int, ranges: Ranges, ndim: int = 2) -> tuple[AxisRecipe, ...]:
        """Every distinct valid recipe mapping ``n_in`` to ``n_out``."""
        return tuple(r for r, out in self.recipes(n_in, ranges, ndim) if out == n_out)

    def gaps(self, r: AxisRecipe, n: int) -> bool:
        """Input pixels never read (conv, pool) or output pixels never written (transposed conv)."""
        return False

    def checkerboard(self, r: AxisRecipe) -> bool:
        """Uneven kernel overlap (Odena et al. 2016): transposed conv whose kernel is not divisible by stride."""
        return False

    # --- what a recipe computes (the design rules) --------------------------------------------
    def signature(self, r: AxisRecipe, n: int) -> Hashable:
        """What the layer computes on one axis from input size ``n``, for given weights.

        Two recipes of this kind whose signatures are equal on every axis compute the same
        function for the same weights (``no_duplicates`` keeps the smallest); the contract suite
        proves it against torch.  The default is the recipe itself: nothing is folded.
        """
        return r

    def dead_pixels(self, r: AxisRecipe, n: int) -> bool:
        """Whether some output position on this axis sees only padding (or, transposed, no input at all)."""
        return False

    def identity(self, r: AxisRecipe, n: int) -> bool:
        """Whether the layer passes this axis through unchanged from size ``n`` (with weights: never)."""
        return False

    def faithful(self, r: AxisRecipe, n: int) -> bool:
        """Whether the layer resamples this axis faithfully from size ``n`` (``constraints.faithful``).

        Only where the axis has at least two pixels in and out; there both must hold:

        - the stride is the size ratio rounded to the nearest integer, a ratio halfway between two
          integers allowing either: ``|s − ratio| ≤ 1/2``, the ratio being in/out for kinds that shrink
          by their stride and out/in for those that enlarge (:attr:`scales_up`).  Integers only:
          ``2·|s·den − num| ≤ den``.  So 101 → 51 (k3 s2 p1, ratio 1.98), 572 → 570 (valid k3, 1.004)
          and 227 → 55 (k11 s4, 4.13) stay in; stride 3 for a ×2 step, or a 1×1 conv padded from 7 to
          15 (ratio 0.47), do not;
        - :meth:`in_order`: the centres of the inputs feeding each output pixel never go backwards.
        """
        out = self.out_size(r, n)
        if out is None or n < 2 or out < 2:
            return True
        num, den = (out, n) if self.scales_up else (n, out)
        return 2 * abs(r.stride * den - num) <= den and self.in_order(r, out)

    def in_order(self, r: AxisRecipe, out: int) -> bool:
        """Whether, over the ``out`` output pixels, the centre (mean position) of the input positions
        feeding each one is non-decreasing from one fed output pixel to the next; padding and positions
        past the edges count as positions, so the centre depends on the recipe alone.

        The base: windows (conv, pool) centred at ``o·s − p + d(k−1)/2``, or each output reading the input
        under it (upsample, pixel (un)shuffle, shape-keeping blocks): always in order."""
        return True

    def resampling(self, r: AxisRecipe) -> int:
        """+1 where the layer enlarges this axis by its stride, −1 where it shrinks it by its stride, 0 at
        stride 1 (``constraints.no_wasted_resampling``: one step never does both on one axis)."""
        if "stride" not in self.search_fields or r.stride < 2:
            return 0
        return 1 if self.scales_up else -1

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        """Whether the output on this axis can differ between two positions for some weights and input,
        given whether the input can (``varying``) (``constraints.no_constant_output``).

        The base: a layer that moves values without mixing positions (upsample, pixel unshuffle, a norm):
        the output varies where the input did and it keeps two or more pixels."""
        out = self.out_size(r, n)
        return varying and out is not None and out >= 2

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        """(growth in input pixels at the current jump, stride) for receptive-field arithmetic; None if undefined."""
        return None

    def layer_compatible(self, axes: Sequence[AxisRecipe], ndim: int) -> str | None:
        """Why one torch layer cannot carry these per-axis recipes, or None when it can."""
        if ndim not in self.ndims:
            return f"{self.name} supports {'/'.join(f'{d}D' for d in self.ndims)} inputs, not {ndim}D"
        return None

    def shape_issue(self, layer: Layer) -> str | None:
        """Why torch rejects ``layer`` although every axis is valid on its own, or None.

        Rules over the whole shape live here (a norm needs more than one value per
        statistic), since :meth:`out_size` sees one axis at a time.
        """
        return None

    # --- channels, parameters, MACs ----------------------------------------------------------
    def channels_out(self, c_in: int, c_out: int | None, axes: Sequence[AxisRecipe], groups: int = 1) -> int:
        """Output channels (``c_out`` is the requested count for kinds that choose it); raises InputError."""
        if self.keeps_channels:
            if c_out not in (None, c_in):
                raise InputError(f"{self.name} keeps the channel count: {c_in} in, {c_out} asked")
            return c_in
        if c_out is None:
            raise InputError(f"{self.name} needs an output channel count")
        return c_out

    def channels_before(self, c_out: int, axes: Sequence[AxisRecipe]) -> int | None:
        """In channels this kind needs to give ``c_out`` (None when the kind's own weights choose)."""
        return c_out if self.keeps_channels else None

    def params(self, layer: Layer) -> ParamCount:
        return ParamCount()

    def macs(self, layer: Layer) -> int:
        """Multiply-accumulates for one sample, as torch's FlopCounterMode counts them (FLOPs / 2)."""
        return 0

    # --- torch ---------------------------------------------------------------------------------
    @abstractmethod
    def build(self, layer: Layer) -> torch.nn.Module:
        """The torch module for ``layer``."""

    def describe(self, r: AxisRecipe) -> dict[str, int | bool]:
        return {self.describe_as.get(name, name): getattr(r, name) for name in self.report_fields}

    def written_fields(self) -> dict[str, str]:
        """Described name → :class:`AxisRecipe` field, for the fields this kind searches (what notation reads)."""
        return {self.describe_as.get(name, name): name for name in self.search_fields}

    def from_description(self, values: dict[str, int]) -> AxisRecipe:
        """The recipe whose searched fields have the described ``values`` (the others at their defaults)."""
        names = self.written_fields()
        fields: dict[str, Any] = {names[key]: value for key, value in values.items()}
        if "ceil_mode" in fields:
            fields["ceil_mode"] = bool(fields["ceil_mode"])
        return AxisRecipe(**fields)

    def describe_axes(self, axes: Sequence[AxisRecipe]) -> dict[str, Any]:
        """The kind's fields over every axis: an int (or bool) when equal on every axis, else a list,
        PyTorch's own convention for ``kernel_size=3`` versus ``kernel_size=(3, 5)``."""
        per_axis = [self.describe(a) for a in axes]
        merged: dict[str, Any] = {}
        for name in per_axis[0]:
            values = [d[name] for d in per_axis]
            merged[name] = values[0] if len(set(values)) == 1 else values
        return merged


def _field_values(ranges: Ranges, name: str) -> Sequence[Any]:
    if name == "ceil_mode":
        return ranges.ceil_mode
    return ranges.span(name)


_RECIPES: dict[tuple[str, int, Ranges, int], tuple[tuple[AxisRecipe, int], ...]] = {}


def clear_recipe_cache() -> None:
    """Forget the recipes listed so far (benchmarks time a fresh process's work)."""
    _RECIPES.clear()


def _recipes(
    kind: OpKind, n: int, ranges: Ranges, ndim: int, check: Callable[[], None] | None
) -> tuple[tuple[AxisRecipe, int], ...]:
    # Candidates come with dilation innermost, so the first valid recipe of each layer is the one with
    # the smallest dilation torch accepts (k=1 at dilation 1 unless output_padding needs more).
    word = ranges.padding_word if isinstance(kind, PaddedKind) and "padding" in kind.search_fields else None
    if word is not None:
        ranges = replace(ranges, padding=(0, 0), output_padding=(0, 0))  # the word decides them
    out_size, canonical = kind.out_size, kind.canonical
    found: dict[AxisRecipe, tuple[AxisRecipe, int]] = {}
    for tried, raw in enumerate(kind.candidates(ranges)):
        if check is not None and tried % 8192 == 8191:
            check()
        r = raw if word is None else kind.keras_padding(raw, n, word)  # type: ignore[attr-defined]
        if r is None:
            continue
        out = out_size(r, n, ndim)
        if out is None:
            continue
        key = canonical(r)
        if key not in found:
            found[key] = (r, out)
    return tuple(sorted(found.values()))


# ------------------------------------------------------------------------------------------------
# Convolutions
# ------------------------------------------------------------------------------------------------


class PaddedKind(OpKind):
    """Kinds that take Keras/TensorFlow padding words (``same``/``valid``)."""

    @abstractmethod
    def keras_padding(self, r: AxisRecipe, n: int, word: str) -> AxisRecipe | None:
        """``r`` with padding fields set to reproduce TF's ``same``/``valid``; None if torch cannot."""


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
        out = self.out_size(r, n)
        if out is None:
            return False
        offsets = [j * r.dilation - r.padding for j in range(r.kernel)]
        return not _covers(_reach_mask(out, r.stride, offsets), n)

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        return _clip_windowed(ranges, n, high)

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return _windowed_max_input(ranges, high)

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return r.span - 1, r.stride

    def taps(self, r: AxisRecipe, n: int) -> Taps:
        """Which weight meets which input at each output position: the layer's whole linear map on an axis."""
        out = self.out_size(r, n)
        return () if out is None else _window_taps(r, n, out)

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

    def weight_count(self, layer: Layer) -> int:
        c_in, c_out = layer.in_shape[0], layer.out_shape[0]
        return math.prod(a.kernel for a in layer.axes) * c_in * c_out // layer.groups

    def channels_out(self, c_in: int, c_out: int | None, axes: Sequence[AxisRecipe], groups: int = 1) -> int:
        c = super().channels_out(c_in, c_out, axes, groups)
        if groups < 1 or c_in % groups or c % groups:
            raise InputError(f"{self.name}: groups={groups} must divide in channels {c_in} and out channels {c}")
        return c

    def params(self, layer: Layer) -> ParamCount:
        return ParamCount(self.weight_count(layer) + (layer.out_shape[0] if layer.bias else 0))

    def macs(self, layer: Layer) -> int:
        return self.weight_count(layer) * math.prod(layer.out_shape[1:])

    def build(self, layer: Layer) -> torch.nn.Module:
        from torch import nn

        ndim = len(layer.axes)
        conv = _nd("Conv", ndim)(
            layer.in_shape[0],
            layer.out_shape[0],
            kernel_size=_per_axis([a.kernel for a in layer.axes]),
            stride=_per_axis([a.stride for a in layer.axes]),
            padding=_per_axis([a.padding for a in layer.axes]),
            dilation=_per_axis([a.dilation for a in layer.axes]),
            groups=layer.groups,
            bias=layer.bias,
        )
        extra = _trailing_pad(layer.axes)
        return nn.Sequential(_nd("ConstantPad", ndim)(extra, 0.0), conv) if any(extra) else conv


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
        return not _covers(_reach_mask(n, r.stride, offsets), out)

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
            ranges, output_padding=_narrow(ranges.output_padding, max(ranges.stride[1], ranges.dilation[1]) - 1)
        )
        if high is None:
            return ranges
        for _ in range(2):  # the padding bounds kernel and stride, the kernel bounds the padding
            pad = _padding_high(ranges)
            if pad is None:
                break  # "same": the padding grows with the kernel; out = n * s bounds only the stride
            room = high + 2 * pad  # out <= high: (n-1)s + span + op <= high + 2p
            if n > 1:
                ranges = replace(ranges, stride=_narrow(ranges.stride, room // (n - 1)))
            kernel = _narrow(ranges.kernel, (room - (n - 1) * ranges.stride[0]) // ranges.dilation[0] + 1)
            dilation = _narrow(ranges.dilation, max(room, ranges.output_padding[1] + 1))
            ranges = replace(ranges, kernel=kernel, dilation=dilation)
            if ranges.padding_word is None:
                span = ranges.dilation[1] * (ranges.kernel[1] - 1) + 1
                top = ((n - 1) * ranges.stride[1] + span + ranges.output_padding[1]) // 2
                ranges = replace(ranges, padding=_narrow(ranges.padding, top))
        if ranges.padding_word == "same" and n > 0:
            ranges = replace(ranges, stride=_narrow(ranges.stride, high // n))
        return ranges

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        if high is None:
            return None
        pad = _padding_high(ranges)
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

    def macs(self, layer: Layer) -> int:
        # Every input position meets every kernel tap once: C_in * C_out/g * k^n per input position.
        return self.weight_count(layer) * math.prod(layer.in_shape[1:])

    def build(self, layer: Layer) -> torch.nn.Module:
        return _nd("ConvTranspose", len(layer.axes))(
            layer.in_shape[0],
            layer.out_shape[0],
            kernel_size=_per_axis([a.kernel for a in layer.axes]),
            stride=_per_axis([a.stride for a in layer.axes]),
            padding=_per_axis([a.padding for a in layer.axes]),
            output_padding=_per_axis([a.output_padding for a in layer.axes]),
            dilation=_per_axis([a.dilation for a in layer.axes]),
            groups=layer.groups,
            bias=layer.bias,
        )


# ------------------------------------------------------------------------------------------------
# Pooling
# ------------------------------------------------------------------------------------------------


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
        out = self.out_size(r, n)
        if out is None:
            return False
        offsets = [j * r.dilation - r.padding for j in range(r.kernel)]
        return not _covers(_reach_mask(out, r.stride, offsets), n)

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return r.span - 1, r.stride

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        ceil = True in ranges.ceil_mode  # ceil_mode: a last window may start up to a stride past the end
        slack = ranges.stride[1] if ceil else 1
        return _clip_windowed(ranges, n, None if high is None else high + 1, slack)

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return _windowed_max_input(ranges, high)

    def windows(self, r: AxisRecipe, n: int) -> tuple[tuple[int, ...], ...]:
        """Per output position, the input positions its window covers (padding left out)."""
        out = self.out_size(r, n)
        return () if out is None else tuple(tuple(t for _, t in pairs) for pairs in _window_taps(r, n, out))

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

    def build(self, layer: Layer) -> torch.nn.Module:
        return _nd("MaxPool", len(layer.axes))(
            kernel_size=_per_axis([a.kernel for a in layer.axes]),
            stride=_per_axis([a.stride for a in layer.axes]),
            padding=_per_axis([a.padding for a in layer.axes]),
            dilation=_per_axis([a.dilation for a in layer.axes]),
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

    def build(self, layer: Layer) -> torch.nn.Module:
        return _nd("AvgPool", len(layer.axes))(
            kernel_size=_per_axis([a.kernel for a in layer.axes]),
            stride=_per_axis([a.stride for a in layer.axes]),
            padding=_per_axis([a.padding for a in layer.axes]),
            ceil_mode=layer.axes[0].ceil_mode,
        )


# ------------------------------------------------------------------------------------------------
# Resampling without weights
# ------------------------------------------------------------------------------------------------


class Upsample(OpKind):
    """``nn.Upsample`` with an integer scale per axis (``stride`` holds the scale): ``out = in * scale``."""

    name = "upsample"
    layer_options = ("mode",)
    scales_up = True
    search_fields = ("stride",)
    range_of: ClassVar[dict[str, str]] = {"stride": "scale"}
    report_fields = ("stride",)
    describe_as: ClassVar[dict[str, str]] = {"stride": "scale"}
    keeps_channels = True
    MODES: ClassVar[dict[str, dict[int, str]]] = {
        "nearest": {1: "nearest", 2: "nearest", 3: "nearest"},
        "bilinear": {1: "linear", 2: "bilinear", 3: "trilinear"},
    }

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        return n * r.stride if r.stride >= 1 else None

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        return ranges if high is None else replace(ranges, scale=_narrow(ranges.scale, high // max(n, 1)))

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return None if high is None else high // ranges.scale[0]

    def identity(self, r: AxisRecipe, n: int) -> bool:
        return r.stride == 1

    def build(self, layer: Layer) -> torch.nn.Module:
        from torch import nn

        if layer.mode not in self.MODES:
            raise InputError(unknown("upsample mode", layer.mode, self.MODES))
        scale = tuple(float(a.stride) for a in layer.axes)
        return nn.Upsample(scale_factor=scale, mode=self.MODES[layer.mode][len(layer.axes)])


class PixelShuffle(OpKind):
    """``nn.PixelShuffle(r)`` on 2D inputs: C·r² channels to C, each axis ×r (``stride`` holds r)."""

    name = "pixel_shuffle"
    search_fields = ("stride",)
    range_of: ClassVar[dict[str, str]] = {"stride": "scale"}
    report_fields = ("stride",)
    describe_as: ClassVar[dict[str, str]] = {"stride": "factor"}
    ndims = (2,)
    scales_up = True

    def varies(self, r: AxisRecipe, n: int, varying: bool) -> bool:
        # Output y reads channel y mod r of input y // r: channels the layers before chose apart, so from
        # a factor of 2 on the output varies even where the input was constant.
        return r.stride >= 2 or varying

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        return n * r.stride if r.stride >= 1 else None

    def clip(self, ranges: Ranges, n: int, high: int | None) -> Ranges:
        return ranges if high is None else replace(ranges, scale=_narrow(ranges.scale, high // max(n, 1)))

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return None if high is None else high // ranges.scale[0]

    def identity(self, r: AxisRecipe, n: int) -> bool:
        return r.stride == 1

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

    def build(self, layer: Layer) -> torch.nn.Module:
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
        return replace(ranges, scale=_narrow(ranges.scale, n))

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

    def build(self, layer: Layer) -> torch.nn.Module:
        from torch import nn

        return nn.PixelUnshuffle(self.factor(layer.axes))


# ------------------------------------------------------------------------------------------------
# Shape-keeping blocks
# ------------------------------------------------------------------------------------------------


class BatchNorm(OpKind):
    """``nn.BatchNormNd``: 2C trainable (γ, β) and 2C non-trainable (running mean, var), as Keras counts."""

    name = "batch_norm"
    keeps_channels = True
    is_norm = True

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        return n if r == AxisRecipe() else None

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return high

    def params(self, layer: Layer) -> ParamCount:
        c = layer.in_shape[0]
        return ParamCount(2 * c, 2 * c)

    def build(self, layer: Layer) -> torch.nn.Module:
        return _nd("BatchNorm", len(layer.axes))(layer.in_shape[0])


class InstanceNorm(BatchNorm):
    """``nn.InstanceNormNd`` with torch's defaults (no affine weights, no running stats): no parameters."""

    name = "instance_norm"

    def params(self, layer: Layer) -> ParamCount:
        return ParamCount()

    def shape_issue(self, layer: Layer) -> str | None:
        # Statistics are per sample and channel, in eval mode too (no running stats).
        if math.prod(layer.in_shape[1:]) <= 1:
            return f"{self.name} needs more than one spatial value per channel, got {channels_text(layer.in_shape)}"
        return None

    def build(self, layer: Layer) -> torch.nn.Module:
        return _nd("InstanceNorm", len(layer.axes))(layer.in_shape[0])


class GroupNorm(BatchNorm):
    """``nn.GroupNorm`` (32 groups where they divide C, else the largest power of two that does): 2C weights."""

    name = "group_norm"

    def params(self, layer: Layer) -> ParamCount:
        return ParamCount(2 * layer.in_shape[0])

    @staticmethod
    def groups(channels: int) -> int:
        """Group count for ``channels``: 32 where it divides, else the largest smaller power of two that does."""
        return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)

    def shape_issue(self, layer: Layer) -> str | None:
        # Statistics are per sample and group, in eval mode too.
        c = layer.in_shape[0]
        if c // self.groups(c) * math.prod(layer.in_shape[1:]) <= 1:
            return f"{self.name} needs more than one value per group, got {channels_text(layer.in_shape)}"
        return None

    def build(self, layer: Layer) -> torch.nn.Module:
        return norm_module("group", layer.in_shape[0], len(layer.axes))


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
        return replace(CONV.clip(ranges, n, n), stride=_narrow(ranges.stride, 1))

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
    def conv_args(layer: Layer) -> dict[str, Any]:
        return {
            "kernel_size": _per_axis([a.kernel for a in layer.axes]),
            "padding": _per_axis([a.padding for a in layer.axes]),
            "dilation": _per_axis([a.dilation for a in layer.axes]),
        }


class ResidualBlock(SameConvBlock):
    """CycleGAN/ACGAN residual block: conv → norm → ReLU → conv → norm, plus the input."""

    name = "residual_block"
    keeps_channels = True
    layer_options = ("norm",)

    def params(self, layer: Layer) -> ParamCount:
        c = layer.in_shape[0]
        conv = math.prod(a.kernel for a in layer.axes) * c * c + (c if layer.bias else 0)
        return ParamCount(2 * conv) + _norm_params(layer.norm, c, twice=True)

    def shape_issue(self, layer: Layer) -> str | None:
        # The block's norms see the block's own shape (it keeps the size).
        norm = NORM_KINDS.get(layer.norm)
        return NORM_LAYERS[norm].shape_issue(layer) if norm else None

    def receptive(self, r: AxisRecipe) -> tuple[int, int] | None:
        return 2 * (r.span - 1), 1

    def identity(self, r: AxisRecipe, n: int) -> bool:
        # The branch sees only padding: the block adds an input-free constant (zero without bias).
        return r.stride == 1 and all(not pairs for pairs in CONV.taps(r, n))

    def macs(self, layer: Layer) -> int:
        c = layer.in_shape[0]
        return 2 * math.prod(a.kernel for a in layer.axes) * c * c * math.prod(layer.out_shape[1:])

    def build(self, layer: Layer) -> torch.nn.Module:
        from .blocks import ResidualBlock as Block

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

    def params(self, layer: Layer) -> ParamCount:
        c_in, hidden = layer.in_shape[0], layer.out_shape[0]
        taps = math.prod(a.kernel for a in layer.axes)
        return ParamCount(taps * (c_in + hidden) * 4 * hidden + (4 * hidden if layer.bias else 0))

    def macs(self, layer: Layer) -> int:
        c_in, hidden = layer.in_shape[0], layer.out_shape[0]
        taps = math.prod(a.kernel for a in layer.axes)
        return taps * (c_in + hidden) * 4 * hidden * math.prod(layer.out_shape[1:])

    def build(self, layer: Layer) -> torch.nn.Module:
        from .blocks import ConvLSTM as Cell

        return Cell(layer.in_shape[0], layer.out_shape[0], bias=layer.bias, **self.conv_args(layer))


#: ``[build].norm`` words and the catalog kind each one inserts after a weighted layer.
def norm_module(norm: str, channels: int, ndim: int) -> torch.nn.Module:
    """The torch module for a ``[build].norm`` word; ``nn.Identity`` for ``none``."""
    from torch import nn

    if norm == "batch":
        return _nd("BatchNorm", ndim)(channels)
    if norm == "instance":
        return _nd("InstanceNorm", ndim)(channels)
    if norm == "group":
        return nn.GroupNorm(GroupNorm.groups(channels), channels)
    return nn.Identity()


NORM_KINDS = {"batch": "batch_norm", "instance": "instance_norm", "group": "group_norm", "none": None}
#: The norm kinds by name: the blocks that insert their own norms ask these, not the whole catalog.
NORM_LAYERS: dict[str, OpKind] = {kind.name: kind for kind in (BatchNorm(), InstanceNorm(), GroupNorm())}


def _norm_params(norm: str, channels: int, twice: bool = False) -> ParamCount:
    """Parameters of the norm layer(s) of kind ``norm`` (a ``[build].norm`` word) over ``channels``."""
    name = NORM_KINDS[norm]
    if name is None:
        return ParamCount()
    one = NORM_LAYERS[name].params(_NormProbe(channels))  # type: ignore[arg-type]
    return one + one if twice else one


@dataclass(frozen=True)
class _NormProbe:
    """The one field a norm kind reads to count its parameters."""

    channels: int

    @property
    def in_shape(self) -> tuple[int]:
        return (self.channels,)


CONV = Conv()

#: Every kind, by name, in the order recipes are listed.
KINDS: dict[str, OpKind] = {
    kind.name: kind
    for kind in (
        CONV,
        ConvTranspose(),
        MaxPool(),
        AvgPool(),
        Upsample(),
        PixelShuffle(),
        PixelUnshuffle(),
        *NORM_LAYERS.values(),
        ResidualBlock(),
        ConvLSTM(),
    )
}

KIND_ORDER = {name: i for i, name in enumerate(KINDS)}


def kind(name: str) -> OpKind:
    """The catalog entry for ``name``; InputError naming the nearest kind otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise InputError(unknown("op kind", name, KINDS)) from None

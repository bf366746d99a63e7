"""The op catalog's base: the :class:`OpKind` contract every kind implements, parameter counts,
the protocol of what a kind reads of a layer, and the per-axis helpers several families share."""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..core.recipe import AxisRecipe, Ranges
from ..errors import InputError

if TYPE_CHECKING:
    import torch


class LayerFields(Protocol):
    """The fields of a layer a kind reads; :class:`archsolve.design.layer.Layer` has them.

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


def nd(name: str, ndim: int) -> Any:
    """``torch.nn`` class ``{name}{ndim}d`` (Conv2d, MaxPool3d, ...)."""
    from torch import nn

    return getattr(nn, f"{name}{ndim}d")


def per_axis(values: Sequence[int]) -> int | tuple[int, ...]:
    """PyTorch's convention: one int when every axis agrees, else a tuple."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def reach_mask(count: int, step: int, offsets: Sequence[int]) -> int:
    """Bitmask of ``o * step + off`` for ``o < count`` and every offset (negative bits dropped)."""
    base = 0
    for o in range(count):
        base |= 1 << (o * step + 64)
    mask = 0
    for off in offsets:
        shift = off + 64
        mask |= base << shift if shift >= 0 else base >> -shift
    return mask >> 128


def covers(mask: int, size: int) -> bool:
    full = (1 << size) - 1
    return mask & full == full


def window_gaps(r: AxisRecipe, n: int, out: int | None) -> bool:
    """Whether ``out`` windows (conv, pool: output ``o`` reads ``o·s − p + j·d``) leave an input pixel unread."""
    if out is None:
        return False
    offsets = [j * r.dilation - r.padding for j in range(r.kernel)]
    return not covers(reach_mask(out, r.stride, offsets), n)


def window_args(axes: Sequence[AxisRecipe], fields: Sequence[str]) -> dict[str, int | tuple[int, ...]]:
    """Torch's keyword arguments (``kernel_size=``, ``stride=``, …) for these recipe ``fields`` over the axes."""
    return {"kernel_size" if f == "kernel" else f: per_axis([getattr(a, f) for a in axes]) for f in fields}


def padding_high(ranges: Ranges) -> int | None:
    """The largest padding a recipe can get: the range's top, 0 for ``valid``, unbounded for ``same``."""
    if ranges.padding_word == "valid":
        return 0
    return None if ranges.padding_word == "same" else ranges.padding[1]


def narrow(span: tuple[int, int], high: int) -> tuple[int, int]:
    """``span`` with its top lowered to ``high``, never below its bottom (an empty range stays a range)."""
    return span[0], max(span[0], min(span[1], high))


def clip_windowed(ranges: Ranges, n: int, high: int | None, slack: int = 1) -> Ranges:
    """Clip for windowed kinds, ``out = floor((n + 2p + e - span) / s) + 1``: a window must start within the
    padded input (``slack``: Keras' trailing zero, or a stride's worth for ceil_mode), and ``out <= high``
    bounds the padding."""
    for _ in range(2):  # the kernel bounds the padding and the padding the kernel; two rounds settle both
        pad = padding_high(ranges)
        if pad is not None:
            room = n + 2 * pad + slack  # the largest padded input a window may reach into
            kernel = narrow(ranges.kernel, (room - 1) // ranges.dilation[0] + 1)
            dilation = narrow(ranges.dilation, room // max(kernel[0] - 1, 1))
            ranges = replace(ranges, kernel=kernel, dilation=dilation)
        if high is not None and ranges.padding_word is None:
            span = ranges.dilation[1] * (ranges.kernel[1] - 1) + 1
            ranges = replace(ranges, padding=narrow(ranges.padding, (high * ranges.stride[1] + span - n) // 2 + 1))
    return ranges


def windowed_max_input(ranges: Ranges, high: int | None) -> int | None:
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
def window_taps(r: AxisRecipe, n: int, out: int) -> Taps:
    """Conv and pool windows: output ``o`` reads input ``o·s − p + j·d`` for tap ``j`` (padding elsewhere)."""
    return tuple(
        tuple((j, t) for j in range(r.kernel) if 0 <= (t := o * r.stride - r.padding + j * r.dilation) < n)
        for o in range(out)
    )


class RecipeText:
    """How a kind's recipes are named: the fields tables, JSON and the summary report, and the recipe
    notation's ``name=value`` read back.  Mixed into :class:`OpKind`; a kind sets the two class
    attributes below where its names differ from :class:`AxisRecipe`'s."""

    search_fields: ClassVar[tuple[str, ...]]
    #: Fields reported for a recipe of this kind (explore, JSON, summary).
    report_fields: ClassVar[tuple[str, ...]] = ()
    #: Names fields are reported and written by, where not the field's own (upsample's stride is its scale).
    describe_as: ClassVar[dict[str, str]] = {}

    def describe(self, r: AxisRecipe) -> dict[str, int | bool]:
        """One axis's reported fields, by their described names."""
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


class OpKind(RecipeText, ABC):
    """One layer kind. Subclasses fill in the arithmetic; the base supplies enumeration (names: :class:`RecipeText`)."""

    name: ClassVar[str]
    #: AxisRecipe fields searched for this kind (others stay at their defaults).
    search_fields: ClassVar[tuple[str, ...]] = ()
    #: Ranges attribute each searched field draws its values from, where it is not the field's own name.
    range_of: ClassVar[dict[str, str]] = {}
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
        return math.prod(len(_field_values(ranges, self.range_of.get(name, name))) for name in self.search_fields)

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

    def shape_issue(self, layer: LayerFields) -> str | None:
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

    def params(self, layer: LayerFields) -> ParamCount:
        return ParamCount()

    def macs(self, layer: LayerFields) -> int:
        """Multiply-accumulates for one sample, as torch's FlopCounterMode counts them (FLOPs / 2)."""
        return 0

    # --- torch ---------------------------------------------------------------------------------
    @abstractmethod
    def build(self, layer: LayerFields) -> torch.nn.Module:
        """The torch module for ``layer``."""


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


class PaddedKind(OpKind):
    """Kinds that take Keras/TensorFlow padding words (``same``/``valid``)."""

    @abstractmethod
    def keras_padding(self, r: AxisRecipe, n: int, word: str) -> AxisRecipe | None:
        """``r`` with padding fields set to reproduce TF's ``same``/``valid``; None if torch cannot."""

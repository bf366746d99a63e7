"""Every single-layer recipe that maps one size to another (``archsolve explore``).

Only the op catalog's enumeration is used (:meth:`OpKind.solve`, ``recipes``,
``describe``, and the rule methods ``gaps``, ``dead_pixels``, ``identity``,
``faithful``, ``checkerboard``), so listing stays exact and light: this module
imports neither torch nor z3.

The per-layer rules a problem applies by default (``no_gaps``, ``no_dead_pixels``,
``no_identity``, ``faithful``) apply here too: a recipe breaking one is left out
unless every recipe is asked for (``show_all``), and each listed recipe carries
its flags (``checkerboard`` is off by default in a problem, so it is only flagged).

Sizes are an int (square: one recipe on every axis of a 2D input) or a
per-axis tuple such as ``(64, 48)`` (each axis gets its own recipe, so
non-square kernels and strides are listed too, as one torch layer takes them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import KINDS, kind
from ..catalog.base import OpKind
from ..core.console import PIPE_WIDTH
from ..core.display import Shown
from ..core.recipe import AxisRecipe, Ranges
from ..core.sizes import format_size
from ..core.table import Column, Table, plural
from ..errors import InfeasibleError, InputError
from .layer import Layer

#: Spatial axes assumed when a size is one int (images; give ``DxHxW`` for 3D).
SQUARE_NDIM = 2

#: Kinds listed when none are asked for: every kind with a recipe to choose, i.e. whose
#: fields change the size or keep it (conv, conv_transpose, the pools, upsample, pixel
#: (un)shuffle, residual_block, conv_lstm).  The norms are left out: they have no
#: fields and keep any size, so they would add one empty line to every IN == OUT answer.
#: Ask for them with ``ops=["batch_norm", ...]``.
DEFAULT_KINDS: tuple[str, ...] = tuple(name for name, k in KINDS.items() if k.search_fields)

#: Field domains torch accepts at all (the lower end of any range).
_FIELD_MINIMUM = {"kernel": 1, "stride": 1, "padding": 0, "output_padding": 0, "dilation": 1}

Size = tuple[int, ...]


def explore_ranges(max_kernel: int = 8, max_stride: int = 4, max_padding: int = 4, max_dilation: int = 1) -> Ranges:
    """The ranges ``archsolve explore`` searches.

    ``output_padding`` is bounded only by torch's own rule (it must be smaller than the
    stride or the dilation), so no valid transposed conv is hidden; ``ceil_mode`` is
    tried both ways; upsample scales and pixel (un)shuffle factors go up to ``max_stride``.
    """
    return Ranges(
        kernel=(1, max_kernel),
        stride=(1, max_stride),
        padding=(0, max_padding),
        output_padding=(0, max(max_stride, max_dilation) - 1),
        dilation=(1, max_dilation),
        ceil_mode=(False, True),
        scale=(1, max_stride),
    )


def check_ranges(ranges: Ranges) -> None:
    """InputError naming every range that is empty or below what torch accepts."""
    problems = []
    for name, minimum in (*_FIELD_MINIMUM.items(), ("scale", 1)):
        low, high = getattr(ranges, name)
        if low < minimum:
            problems.append(f"{name} range starts at {low}; torch needs at least {minimum}")
        if high < low:
            problems.append(f"{name} range {low}..{high} is empty")
    if problems:
        raise InputError("; ".join(problems))


@dataclass(frozen=True)
class Found:
    """One recipe: a kind and its per-axis fields, with the catalog's rule flags."""

    op: str
    axes: tuple[AxisRecipe, ...]
    checkerboard: bool
    gaps: bool
    dead_pixels: bool = False
    identity: bool = False
    faithful: bool = True

    def fields(self) -> dict[str, Any]:
        """The kind's own fields, an int (or bool) when equal on every axis, else a per-axis list."""
        return KINDS[self.op].describe_axes(self.axes)

    @property
    def sensible(self) -> bool:
        """Whether the per-layer rules on by default in a problem keep it (gaps, dead pixels, identity, faithful)."""
        return not (self.gaps or self.dead_pixels or self.identity) and self.faithful

    def flags(self) -> list[str]:
        """The rules the recipe breaks, as the table's ``flags`` column words them."""
        named = (
            (self.checkerboard, "checkerboard"),
            (self.gaps, "gaps"),
            (self.dead_pixels, "dead pixels"),
            (self.identity, "identity"),
            (not self.faithful, "unfaithful"),
        )
        return [word for on, word in named if on]

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            **self.fields(),
            "checkerboard": self.checkerboard,
            "gaps": self.gaps,
            "dead_pixels": self.dead_pixels,
            "identity": self.identity,
            "faithful": self.faithful,
        }


@dataclass(frozen=True, repr=False)
class Exploration(Shown):
    """The answer to "which single layers map IN to OUT?" (the ``explore --json`` contract)."""

    size_in: int | Size
    size_out: int | Size
    ranges: Ranges
    recipes: tuple[Found, ...]
    #: Whether every recipe torch runs is listed (``--all``), not only those the default rules keep.
    show_all: bool = False
    #: Recipes torch runs that the default rules left out (0 with ``show_all``).
    left_out: int = 0

    @property
    def count(self) -> int:
        return len(self.recipes)

    def __repr__(self) -> str:
        return f"<Exploration {format_size(self.size_in)} → {format_size(self.size_out)}: {self.count} recipes>"

    def table(self) -> Table:
        """The recipes as a table: one column per field any listed kind reports (``-`` where a kind has none)."""
        names: list[str] = []
        for found in self.recipes:
            names += [name for name in found.fields() if name not in names]
        rows = []
        for found in self.recipes:
            fields = found.fields()
            cells = [_cell(fields[name]) if name in fields else "-" for name in names]
            rows.append((found.op, *cells, ", ".join(found.flags()) or "-"))
        columns = (Column("op"), *(Column(name, "right") for name in names), Column("flags"))
        title = f"{format_size(self.size_in)} → {format_size(self.size_out)}: {plural(self.count, 'recipe')}"
        if self.left_out:
            verb = "breaks" if self.left_out == 1 else "break"
            title += f" ({self.left_out:,} more {verb} the default rules: --all lists them)"
        return Table(columns, tuple(rows), title=title)

    def text(self, width: int = PIPE_WIDTH) -> str:
        """The table as plain text ``width`` columns wide (the CLI draws :meth:`table` for the terminal)."""
        from ..core.console import render

        return render(self.table(), width)

    def to_dict(self) -> dict[str, Any]:
        def plain(size: int | Size) -> int | list[int]:
            return size if isinstance(size, int) else list(size)

        return {
            "in": plain(self.size_in),
            "out": plain(self.size_out),
            "count": self.count,
            "all": self.show_all,
            "left_out": self.left_out,
            "recipes": [r.to_dict() for r in self.recipes],
        }


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "x".join(_cell(v) for v in value)
    return str(value)


def explore(
    size_in: int | Sequence[int],
    size_out: int | Sequence[int],
    ops: Iterable[str] | None = None,
    ranges: Ranges | None = None,
    show_all: bool = False,
) -> Exploration:
    """Every distinct single-layer recipe mapping ``size_in`` to ``size_out`` within ``ranges`` that the
    default per-layer rules keep (every one torch runs with ``show_all``).

    Recipes come in catalog order of kinds, then in the catalog's recipe order per axis.
    Raises InputError for bad sizes, kinds or ranges, and InfeasibleError naming the
    nearest reachable output sizes when nothing fits (or, when only the rules leave
    nothing, what they left out).
    """
    ranges = explore_ranges() if ranges is None else ranges
    check_ranges(ranges)
    n_in, n_out, ndim = _axes_of(size_in, size_out)
    square = isinstance(size_in, int) and isinstance(size_out, int)
    kinds = _kinds_for(ops, ndim)
    found: list[Found] = []
    for name in kinds:
        k = KINDS[name]
        per_axis = [k.solve(a, b, ranges, ndim) for a, b in zip(n_in, n_out, strict=True)]
        combos: Iterable[tuple[AxisRecipe, ...]]
        combos = ((r,) * ndim for r in per_axis[0]) if square else itertools.product(*per_axis)
        for axes in combos:
            if k.layer_compatible(axes, ndim) is None and _runs_for_some_channels(k, axes, n_in, n_out):
                found.append(_found(k, axes, n_in))
    if not found:
        raise _infeasible(size_in, size_out, n_in, n_out, ndim, square, kinds, ranges)
    kept = found if show_all else [f for f in found if f.sensible]
    if not kept:
        raise _ruled_out(size_in, size_out, found)
    return Exploration(_plain(size_in), _plain(size_out), ranges, tuple(kept), show_all, len(found) - len(kept))


#: The rule flags explore reads, with what each says of a recipe (``Found.sensible``).
_RULES = (
    ("gaps", True, "leave pixels unread or unwritten"),
    ("dead_pixels", True, "have output pixels that see only padding"),
    ("identity", True, "compute nothing"),
    ("faithful", False, "resample unfaithfully (a stride off the size ratio, or inputs out of order)"),
)


def _ruled_out(size_in: int | Sequence[int], size_out: int | Sequence[int], found: list[Found]) -> InfeasibleError:
    lines = [f"{hits} {what}" for flag, bad, what in _RULES if (hits := sum(getattr(f, flag) == bad for f in found))]
    lines.append("--all (show_all=True) lists them with their flags")
    return InfeasibleError(
        f"{plural(len(found), 'recipe')} torch runs from {format_size(_plain(size_in))} to "
        f"{format_size(_plain(size_out))}, none that the default rules keep",
        lines,
    )


def _plain(size: int | Sequence[int]) -> int | Size:
    return size if isinstance(size, int) else tuple(size)


#: A channel count for which every whole-shape rule that depends on channels can hold (a group
#: norm of 64 channels has 2 per group), so that only shapes torch refuses for every count are dropped.
_PROBE_CHANNELS = 64


def _runs_for_some_channels(k: OpKind, axes: tuple[AxisRecipe, ...], n_in: Size, n_out: Size) -> bool:
    """Whole-shape rules (an instance norm of a 1x1 map): the layer must run for some channel count."""
    probe = Layer(k.name, (_PROBE_CHANNELS, *n_in), (_PROBE_CHANNELS, *n_out), axes)
    return k.shape_issue(probe) is None


def _found(k: OpKind, axes: tuple[AxisRecipe, ...], n_in: Size) -> Found:
    pairs = list(zip(axes, n_in, strict=True))
    return Found(
        k.name,
        axes,
        checkerboard=any(k.checkerboard(a) for a in axes),
        gaps=any(k.gaps(a, n) for a, n in pairs),
        dead_pixels=any(k.dead_pixels(a, n) for a, n in pairs),
        identity=all(k.identity(a, n) for a, n in pairs),  # a layer computes nothing when no axis changes
        faithful=all(k.faithful(a, n) for a, n in pairs),
    )


def _axes_of(size_in: int | Sequence[int], size_out: int | Sequence[int]) -> tuple[Size, Size, int]:
    """Per-axis sizes of IN and OUT; an int is the same size on every axis of the other (or a square)."""
    for label, size in (("IN", size_in), ("OUT", size_out)):
        values = (size,) if isinstance(size, int) else tuple(size)
        if not 1 <= len(values) <= 3 or any(not isinstance(v, int) or isinstance(v, bool) for v in values):
            raise InputError(f"{label} must be a positive integer or 1 to 3 per-axis integers, not {size!r}")
        if min(values) < 1:
            raise InputError(f"{label} {format_size(_plain(size))} has a size below 1")
    lengths = {len(s) for s in (size_in, size_out) if not isinstance(s, int)}
    if len(lengths) > 1:
        raise InputError(f"IN {format_size(_plain(size_in))} and OUT {format_size(_plain(size_out))} differ in axes")
    ndim = lengths.pop() if lengths else SQUARE_NDIM

    def spread(size: int | Sequence[int]) -> Size:
        return (size,) * ndim if isinstance(size, int) else tuple(size)

    return spread(size_in), spread(size_out), ndim


def _kinds_for(ops: Iterable[str] | None, ndim: int) -> tuple[str, ...]:
    """Requested kinds in catalog order, once each; the defaults that support ``ndim`` when none are given."""
    if ops is None:
        return tuple(name for name in DEFAULT_KINDS if ndim in KINDS[name].ndims)
    if isinstance(ops, str):
        ops = [ops]
    asked = {kind(name).name for name in ops}
    if not asked:
        raise InputError("no op kinds given")
    for name in asked:
        reason = KINDS[name].layer_compatible([AxisRecipe()] * ndim, ndim)
        if reason:
            raise InputError(reason)
    return tuple(name for name in KINDS if name in asked)


def ranges_text(ranges: Ranges) -> str:
    return ", ".join(f"{name} {low}..{high}" for name, (low, high) in _shown_ranges(ranges))


def _shown_ranges(ranges: Ranges) -> list[tuple[str, tuple[int, int]]]:
    return [(name, getattr(ranges, name)) for name in ("kernel", "stride", "padding", "dilation", "scale")]


def _infeasible(
    size_in: int | Sequence[int],
    size_out: int | Sequence[int],
    n_in: Size,
    n_out: Size,
    ndim: int,
    square: bool,
    kinds: Sequence[str],
    ranges: Ranges,
) -> InfeasibleError:
    """No recipe: name the reachable OUT sizes nearest to the one asked for, and the kinds reaching them."""
    reach: dict[Size, list[str]] = {}
    for name in kinds:
        for size in _nearest_for_kind(KINDS[name], n_in, n_out, ndim, square, ranges):
            reach.setdefault(size, []).append(name)
    summary = (
        f"no single layer maps {format_size(_plain(size_in))} to {format_size(_plain(size_out))} "
        f"with {', '.join(kinds)} within {ranges_text(ranges)}"
    )
    if not reach:
        return InfeasibleError(summary, [f"these kinds reach no size at all from {format_size(_plain(size_in))}"])
    best = min(_distance(size, n_out) for size in reach)
    nearest = sorted(size for size in reach if _distance(size, n_out) == best)
    lines = [
        f"nearest OUT reachable: {format_size(size[0] if square else size)} ({', '.join(reach[size])})"
        for size in nearest
    ]
    return InfeasibleError(summary, lines)


def _distance(size: Size, target: Size) -> int:
    return sum(abs(a - b) for a, b in zip(size, target, strict=True))


def _nearest_for_kind(k: OpKind, n_in: Size, n_out: Size, ndim: int, square: bool, ranges: Ranges) -> list[Size]:
    """The output sizes of one kind nearest to ``n_out`` that one of its layers really reaches."""
    if square:
        outs = {out for _, out in k.recipes(n_in[0], ranges, ndim)}
        if not outs:
            return []
        best = min(abs(out - n_out[0]) for out in outs)
        return [(out,) * ndim for out in outs if abs(out - n_out[0]) == best]
    by_out: list[dict[int, list[AxisRecipe]]] = []
    for n in n_in:
        groups: dict[int, list[AxisRecipe]] = {}
        for r, out in k.recipes(n, ranges, ndim):
            groups.setdefault(out, []).append(r)
        by_out.append(groups)
    shapes = sorted(itertools.product(*(sorted(g) for g in by_out)), key=lambda s: (_distance(s, n_out), s))
    nearest: list[Size] = []
    for shape in shapes:
        if nearest and _distance(shape, n_out) > _distance(nearest[0], n_out):
            break
        choices = itertools.product(*(g[out] for g, out in zip(by_out, shape, strict=True)))
        if any(k.layer_compatible(axes, ndim) is None for axes in choices):
            nearest.append(shape)
    return nearest

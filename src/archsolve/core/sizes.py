"""Sizes as people write them and as archsolve prints them: the one module that parses and formats sizes.

A *size* is the spatial extent of a tensor: one integer per axis, written
``64x48`` (or ``16`` when every axis agrees).  A *shape* is ``(C, *spatial)``
for one sample.  Everything that reads a size from the user (the command line,
``[encoder].inputs``) or prints one (tables, messages, docstrings of emitted
models) goes through here, so ``101x75`` reads and prints the same everywhere.

>>> parse_size("101x75"), parse_size(16), parse_size([8, 8, 8])
((101, 75), (16,), (8, 8, 8))
>>> format_size((101, 75)), spatial_text((3, 101, 75)), trajectory_text([(100, 1, 1), (512, 4, 4)])
('101x75', '101x75', '1x1 → 4x4')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import InputError

Size = tuple[int, ...]
"""Per-axis sizes; a one-element size means the same size on every axis."""

#: The most spatial axes any op kind supports (torch's 1d/2d/3d layers).
MAX_AXES = 3


def parse_size(value: Any) -> Size:
    """``16``, ``"16"``, ``"101x75"`` or ``[101, 75]`` → per-axis sizes; InputError saying what was expected.

    A single number gives a one-element size (the same size on every axis); callers
    spread it over their number of axes.
    """
    if isinstance(value, str):
        parts = value.strip().lower().split("x")
        if not all(p.strip().isdigit() for p in parts):
            raise InputError(f"{value!r} is not a size: expected a positive integer or HxW such as 64x48")
        values = tuple(int(p) for p in parts)
    elif isinstance(value, int) and not isinstance(value, bool):
        values = (value,)
    elif isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        values = tuple(value)
    else:
        raise InputError(f"{value!r} is not a size: expected a positive integer, 'HxW' or [h, w]")
    if not 1 <= len(values) <= MAX_AXES:
        raise InputError(f"{format_size(values)} is not a size: expected 1 to {MAX_AXES} axes")
    if min(values) < 1:
        raise InputError(f"{format_size(values)} is not a size: sizes are at least 1")
    return values


def spread(size: Size, ndim: int) -> Size:
    """A one-element size repeated on every axis; a per-axis size as it is."""
    return size * ndim if len(size) == 1 else size


def format_size(size: int | Iterable[int]) -> str:
    """``16`` or ``64x48``: integers joined by ``x``."""
    return str(size) if isinstance(size, int) else "x".join(str(v) for v in size)


def spatial_text(shape: Sequence[int]) -> str:
    """The spatial part of a ``(C, *spatial)`` shape: ``(3, 64, 48)`` → ``64x48``."""
    return format_size(shape[1:])


def channels_text(shape: Sequence[int]) -> str:
    """``64 channels of 32x32``, for messages about a tensor."""
    return f"{shape[0]} channels of {spatial_text(shape)}"


def trajectory_text(shapes: Iterable[Sequence[int]]) -> str:
    """``1x1 → 4x4 → 8x8``: the spatial sizes of successive shapes."""
    return " → ".join(spatial_text(shape) for shape in shapes)


def batch_shape_text(shape: Sequence[int], sequence: bool = False) -> str:
    """``(N, 64, 128, 128)``; sequences add the time axis, ``(N, T, 16, 64, 64)``."""
    lead = ["N", "T"] if sequence else ["N"]
    return "(" + ", ".join([*lead, *(str(v) for v in shape)]) + ")"


def split_inputs(sizes: Sequence[int], inputs: int) -> tuple[Size, ...]:
    """Concatenated per-input sizes (a multi-size problem's boundary) split into one size per input."""
    per = len(sizes) // inputs
    return tuple(tuple(sizes[i * per : (i + 1) * per]) for i in range(inputs))


def sizes_text(sizes: Iterable[Sequence[int]], limit: int = 8) -> str:
    """A few sizes in order, ``4x4, 5x5, ...`` past ``limit``; ``none`` for no sizes."""
    shown = sorted(tuple(s) for s in sizes)
    if not shown:
        return "none"
    text = ", ".join(format_size(s) for s in shown[:limit])
    return text + (", ..." if len(shown) > limit else "")

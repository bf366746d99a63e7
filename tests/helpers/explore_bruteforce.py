"""A brute force over real torch layers: which single layers map one size to another?

The oracle for ``archsolve explore``: it builds every torch layer in the ranges
with plain torch constructors, runs it on a real tensor and keeps the ones whose
output has the wanted size.  Nothing here calls the op catalog's arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from archsolve.catalog.torch_blocks import ConvLSTM, ResidualBlock
from archsolve.core.recipe import AxisRecipe


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Tiny layers run fastest on one thread (and do not fight the other test workers for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _limits(max_kernel: int, max_stride: int, max_padding: int, max_dilation: int) -> dict[str, range]:
    return {
        "k": range(1, max_kernel + 1),
        "s": range(1, max_stride + 1),
        "p": range(max_padding + 1),
        # one past torch's own bound, so that torch, not this range, rejects the rest
        "op": range(max(max_stride, max_dilation) + 1),
        "d": range(1, max_dilation + 1),
    }


def torch_layers(op: str, lim: dict[str, range]) -> Iterator[tuple[AxisRecipe, nn.Module, int]]:
    """(recipe, module, input channels) for every configuration of ``op`` in the limits."""
    k, s, p, d = lim["k"], lim["s"], lim["p"], lim["d"]
    if op == "conv":
        for kk, ss, pp, dd in itertools.product(k, s, p, d):
            yield AxisRecipe(kk, ss, pp, 0, dd), nn.Conv2d(1, 1, kk, ss, pp, dd), 1
    elif op == "conv_transpose":
        for kk, ss, pp, oo, dd in itertools.product(k, s, p, lim["op"], d):
            yield AxisRecipe(kk, ss, pp, oo, dd), nn.ConvTranspose2d(1, 1, kk, ss, pp, oo, dilation=dd), 1
    elif op == "max_pool":
        for kk, ss, pp, dd, ceil in itertools.product(k, s, p, d, (False, True)):
            module = nn.MaxPool2d(kk, ss, pp, dd, ceil_mode=ceil)
            yield AxisRecipe(kk, ss, pp, 0, dd, ceil), module, 1
    elif op == "avg_pool":
        for kk, ss, pp, ceil in itertools.product(k, s, p, (False, True)):
            yield AxisRecipe(kk, ss, pp, 0, 1, ceil), nn.AvgPool2d(kk, ss, pp, ceil_mode=ceil), 1
    elif op == "upsample":
        for ss in s:
            yield AxisRecipe(stride=ss), nn.Upsample(scale_factor=float(ss)), 1
    elif op == "pixel_shuffle":
        for ss in s:
            yield AxisRecipe(stride=ss), nn.PixelShuffle(ss), ss * ss
    elif op == "pixel_unshuffle":
        for ss in s:
            yield AxisRecipe(stride=ss), nn.PixelUnshuffle(ss), 1
    elif op in ("residual_block", "conv_lstm"):
        for kk, pp, dd in itertools.product(k, p, d):
            conv = {"kernel_size": kk, "padding": pp, "dilation": dd}
            module = ResidualBlock(2, 1, **conv) if op == "residual_block" else ConvLSTM(1, 1, **conv)
            yield AxisRecipe(kk, 1, pp, 0, dd), module, 1
    elif op in ("batch_norm", "instance_norm"):
        yield AxisRecipe(), nn.BatchNorm2d(1) if op == "batch_norm" else nn.InstanceNorm2d(1), 1
    elif op == "group_norm":
        # explore lists a layer torch runs for some channel count: 64 channels in 32 groups run on 1x1
        yield AxisRecipe(), nn.GroupNorm(32, 64), 64
    else:
        raise ValueError(op)


def torch_out(op: str, module: nn.Module, channels: int, shape: tuple[int, int]) -> tuple[int, ...] | None:
    """Spatial output shape of ``module`` on a real input, None when torch rejects it."""
    x = torch.randn(1, 2, channels, *shape) if op == "conv_lstm" else torch.randn(1, channels, *shape)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            y = module.eval()(x)
    except (RuntimeError, ValueError):
        return None
    return tuple(y.shape[-2:])


def reachable(
    op: str, size_in: tuple[int, int], max_kernel: int, max_stride: int, max_padding: int, max_dilation: int
) -> set[tuple[int, ...]]:
    """Every output shape some layer of kind ``op`` in the limits gives from ``size_in``."""
    lim = _limits(max_kernel, max_stride, max_padding, max_dilation)
    with one_thread():
        outs = {torch_out(op, module, channels, size_in) for _, module, channels in torch_layers(op, lim)}
    return {out for out in outs if out is not None}


@functools.lru_cache(maxsize=64)
def bruteforce(
    op: str,
    size_in: tuple[int, int],
    size_out: tuple[int, int],
    max_kernel: int,
    max_stride: int,
    max_padding: int,
    max_dilation: int,
    square: bool = True,
) -> set[tuple[str, tuple[AxisRecipe, ...]]]:
    """Every distinct layer of kind ``op`` in the limits that torch runs from ``size_in`` to ``size_out``.

    ``square``: one recipe on both axes; otherwise every pair of per-axis recipes (for
    plain convs, which take per-axis tuples).  A kernel of 1 is one layer at any
    dilation: it is kept once, at the smallest dilation torch accepts.
    """
    with one_thread():
        return _bruteforce(op, size_in, size_out, max_kernel, max_stride, max_padding, max_dilation, square)


def _bruteforce(
    op: str,
    size_in: tuple[int, int],
    size_out: tuple[int, int],
    max_kernel: int,
    max_stride: int,
    max_padding: int,
    max_dilation: int,
    square: bool,
) -> set[tuple[str, tuple[AxisRecipe, ...]]]:
    lim = _limits(max_kernel, max_stride, max_padding, max_dilation)
    found: dict[tuple[str, tuple[AxisRecipe, ...]], tuple[AxisRecipe, ...]] = {}
    if square:
        for r, module, channels in torch_layers(op, lim):
            if torch_out(op, module, channels, size_in) == size_out:
                _keep(found, op, (r, r))
        return {(op, axes) for axes in found.values()}
    assert op == "conv", "per-axis brute force covers plain convs"
    axis_choices = list(itertools.product(lim["k"], lim["s"], lim["p"], lim["d"]))
    for (k1, s1, p1, d1), (k2, s2, p2, d2) in itertools.product(axis_choices, repeat=2):
        module = nn.Conv2d(1, 1, (k1, k2), (s1, s2), (p1, p2), (d1, d2))
        if torch_out(op, module, 1, size_in) == size_out:
            _keep(found, op, (AxisRecipe(k1, s1, p1, 0, d1), AxisRecipe(k2, s2, p2, 0, d2)))
    return {(op, axes) for axes in found.values()}


def _keep(
    found: dict[tuple[str, tuple[AxisRecipe, ...]], tuple[AxisRecipe, ...]], op: str, axes: tuple[AxisRecipe, ...]
) -> None:
    key = (op, tuple(a._replace(dilation=1) if a.kernel == 1 else a for a in axes))
    if key not in found or [a.dilation for a in axes] < [a.dilation for a in found[key]]:
        found[key] = axes

"""Padding rules against torch: the pool padding checks and ceil_mode, and Keras ``same``/``valid`` words.

The Keras/TensorFlow sizes are TensorFlow's documented rules (``tf.nn.convolution``,
``Conv2DTranspose``); the catalog's explicit torch padding must make the real torch
layer produce them.
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from archsolve import catalog as ops
from archsolve.core.recipe import AxisRecipe, Ranges
from archsolve.design.layer import Layer
from archsolve.errors import InputError

POOLS = ("max_pool", "avg_pool")


def torch_pool_size(name: str, r: AxisRecipe, n: int, ndim: int) -> int | None:
    """Output size of the plain torch pool on an n^ndim input, None when torch rejects it."""
    args = {"kernel_size": r.kernel, "stride": r.stride, "padding": r.padding, "ceil_mode": r.ceil_mode}
    if name == "max_pool":
        module = getattr(torch.nn, f"MaxPool{ndim}d")(dilation=r.dilation, **args)
    else:
        module = getattr(torch.nn, f"AvgPool{ndim}d")(**args)
    try:
        y = module(torch.zeros(1, 1, *([n] * ndim)))
    except RuntimeError:
        return None
    assert len(set(y.shape[2:])) == 1
    return int(y.shape[2])


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("name", POOLS)
def test_pool_sizes_and_checks_match_torch_exhaustively(name: str, ndim: int) -> None:
    """Every small pool configuration, ceil_mode both ways: same size, same rejections as torch."""
    kind = ops.KINDS[name]
    dilations = (1, 2) if name == "max_pool" else (1,)
    sizes = range(1, 7) if ndim < 3 else range(1, 5)
    disagreements = []
    for n, k, s, p, d, ceil in itertools.product(sizes, range(1, 5), range(1, 4), range(4), dilations, (False, True)):
        r = AxisRecipe(kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        want = torch_pool_size(name, r, n, ndim)
        if kind.out_size(r, n, ndim) != want:
            disagreements.append((n, r, want, kind.out_size(r, n, ndim)))
    assert not disagreements, disagreements[:5]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_pool_padding_bound_is_on_the_undilated_kernel(ndim: int) -> None:
    """torch 2.13 refuses pad 2 for kernel 2 at dilation 3, although the dilated kernel spans 4."""
    r = AxisRecipe(kernel=2, stride=1, padding=2, dilation=3)
    assert torch_pool_size("max_pool", r, 8, ndim) is None
    assert ops.KINDS["max_pool"].out_size(r, 8, ndim) is None
    ok = r._replace(padding=1)
    assert torch_pool_size("max_pool", ok, 8, ndim) == ops.KINDS["max_pool"].out_size(ok, 8, ndim)


def test_avg_pool3d_needs_the_input_at_least_the_kernel() -> None:
    """Padding does not count for avg_pool3d (torch: "input image ... smaller than kernel size"); 2D is fine."""
    r = AxisRecipe(kernel=3, stride=1, padding=1)
    assert torch_pool_size("avg_pool", r, 2, 3) is None
    assert ops.KINDS["avg_pool"].out_size(r, 2, 3) is None
    assert torch_pool_size("avg_pool", r, 2, 2) == ops.KINDS["avg_pool"].out_size(r, 2, 2) == 2


def test_ceil_mode_drops_a_window_that_starts_in_the_right_padding() -> None:
    """MaxPool1d(2, 2, padding=1, ceil_mode=True) on 5: ceil gives 4 windows, torch keeps 3."""
    r = AxisRecipe(kernel=2, stride=2, padding=1, ceil_mode=True)
    assert torch_pool_size("max_pool", r, 5, 1) == 3
    assert ops.KINDS["max_pool"].out_size(r, 5, 1) == 3


# --- Keras / TensorFlow padding words -------------------------------------------------------------


def tf_size(name: str, word: str, n: int, r: AxisRecipe) -> int:
    """TensorFlow's documented output size for ``padding=word``."""
    span = r.dilation * (r.kernel - 1) + 1
    if name == "conv_transpose":
        return n * r.stride if word == "same" else n * r.stride + max(span - r.stride, 0)
    return math.ceil(n / r.stride) if word == "same" else math.ceil((n - span + 1) / r.stride)


def keras_recipe(name: str, word: str, n: int, r: AxisRecipe) -> AxisRecipe | None:
    kind = ops.KINDS[name]
    assert isinstance(kind, ops.PaddedKind)
    return kind.keras_padding(r, n, word)


def run_1d(name: str, n: int, r: AxisRecipe) -> int | None:
    """Output size of the plain torch layer on a length-n input, None when torch rejects it."""
    if name == "conv_transpose":
        module: torch.nn.Module = torch.nn.ConvTranspose1d(
            1, 1, r.kernel, r.stride, r.padding, r.output_padding, dilation=r.dilation
        )
    elif name == "max_pool":
        module = torch.nn.MaxPool1d(r.kernel, r.stride, r.padding, r.dilation, ceil_mode=r.ceil_mode)
    else:
        module = torch.nn.AvgPool1d(r.kernel, r.stride, r.padding, ceil_mode=r.ceil_mode)
    try:
        return int(module(torch.zeros(1, 1, n)).shape[-1])
    except RuntimeError:
        return None


def run_2d(name: str, n: int, fixed: AxisRecipe) -> tuple[int, ...] | None:
    """Output spatial shape of the catalog-built layer on an n x n input, None when the catalog refuses."""
    try:
        layer = Layer.make(name, (2, n, n), [fixed, fixed], out_channels=3 if ops.KINDS[name].has_weights else None)
    except InputError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = layer.build()(torch.randn(1, 2, n, n))
    assert tuple(y.shape[2:]) == layer.out_shape[1:]
    return tuple(y.shape[2:])


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["conv", "conv_transpose", "max_pool", "avg_pool"]),
    word=st.sampled_from(["same", "valid"]),
    n=st.integers(1, 12),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
)
def test_padding_words_give_tensorflow_sizes(
    name: str, word: str, n: int, kernel: int, stride: int, dilation: int
) -> None:
    """Where the catalog maps a word to torch padding, the built torch layer has TF's output size."""
    if name == "avg_pool":
        dilation = 1
    r = AxisRecipe(kernel=kernel, stride=stride, dilation=dilation)
    want = tf_size(name, word, n, r)
    fixed = keras_recipe(name, word, n, r)
    if fixed is None:
        # Only where torch cannot do it.  Transposed conv: no padding and output padding give TF's
        # size.  Pools: TF's windows start at -(total // 2); no torch pool starting there (padding
        # total // 2, ceil_mode either way) runs with TF's size.
        assert name != "conv"
        if name == "conv_transpose":
            paddings: range | list[int] = range(kernel * dilation)
        else:
            span = dilation * (kernel - 1) + 1
            paddings = [max((want - 1) * stride + span - n, 0) // 2]
        tries = [
            r._replace(padding=p, output_padding=op, ceil_mode=c)
            for p in paddings
            for op in range(max(stride, dilation) if name == "conv_transpose" else 1)
            for c in (False, True)
        ]
        assert all(run_1d(name, n, t) != want for t in tries)
        return
    got = run_2d(name, n, fixed)
    if want < 1:
        assert got is None  # TF rejects it too (input smaller than the kernel)
    else:
        assert got == (want, want)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), kernel=st.integers(1, 6), stride=st.integers(1, 4), dilation=st.integers(1, 3))
def test_conv_same_pads_like_tensorflow(n: int, kernel: int, stride: int, dilation: int) -> None:
    """``same`` puts the odd zero after the input, as TF does: values equal an explicit asymmetric pad."""
    r = AxisRecipe(kernel=kernel, stride=stride, dilation=dilation)
    fixed = keras_recipe("conv", "same", n, r)
    assert fixed is not None
    layer = Layer.make("conv", (1, n, n), [fixed, fixed], out_channels=1, bias=False)
    module = layer.build()
    conv = module[-1] if isinstance(module, torch.nn.Sequential) else module
    span = dilation * (kernel - 1) + 1
    total = max((math.ceil(n / stride) - 1) * stride + span - n, 0)  # tf.nn.convolution's rule
    before, after = total // 2, total - total // 2
    x = torch.randn(1, 1, n, n)
    want = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, stride=stride, dilation=dilation)
    torch.testing.assert_close(module(x), want)


@pytest.mark.parametrize("name", ["conv", "conv_transpose", "max_pool", "avg_pool"])
@pytest.mark.parametrize("word", ["same", "valid"])
def test_ranges_with_a_padding_word_list_only_tensorflow_sizes(name: str, word: str) -> None:
    """``Ranges.padding_word`` replaces the padding range: every recipe listed lands on TF's size."""
    kind = ops.KINDS[name]
    ranges = Ranges(kernel=(1, 5), stride=(1, 3), dilation=(1, 2), padding_word=word)
    listed = kind.recipes(9, ranges)
    assert listed
    for r, out in listed:
        base = AxisRecipe(kernel=r.kernel, stride=r.stride, dilation=r.dilation)
        assert out == tf_size(name, word, 9, base)
        assert run_2d(name, 9, r) == (out, out)

"""``gaps``, ``checkerboard`` and ``canonical`` checked by brute force over real torch layers.

- transposed conv: all-ones weights on an all-ones input count how many taps reach each
  output pixel; a zero is a gap, an uneven count in the interior is a checkerboard;
- conv: autograd on the input; a pixel with zero gradient was never read;
- pools: one input pixel at a time; a pixel that never shows in the output was never read;
- k=1 is one layer at any dilation: same weights, same output.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archsolve import catalog as ops
from archsolve.core.recipe import AxisRecipe, Ranges
from archsolve.design.layer import Layer

SETTINGS = settings(max_examples=50, deadline=None)

kernels = st.integers(1, 5)
strides = st.integers(1, 4)
paddings = st.integers(0, 3)
dilations = st.integers(1, 3)


def ones_layer(layer: Layer) -> torch.nn.Module:
    module = layer.build()
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(1.0)
    return module


def transposed_counts(r: AxisRecipe, n: int) -> torch.Tensor:
    """How many (input pixel, kernel tap) pairs land on each output pixel of a 1D transposed conv."""
    layer = Layer.make("conv_transpose", (1, n), [r], out_channels=1, bias=False)
    with torch.no_grad():
        return ones_layer(layer)(torch.ones(1, 1, n))[0, 0]


@SETTINGS
@given(n=st.integers(1, 8), k=kernels, s=strides, p=paddings, op=st.integers(0, 3), d=dilations)
def test_transposed_gaps_are_output_pixels_no_input_reaches(n: int, k: int, s: int, p: int, op: int, d: int) -> None:
    r = AxisRecipe(kernel=k, stride=s, padding=p, output_padding=op, dilation=d)
    kind = ops.KINDS["conv_transpose"]
    assume(kind.out_size(r, n) is not None)
    counts = transposed_counts(r, n)
    assert kind.gaps(r, n) == bool((counts == 0).any())


@SETTINGS
@given(k=kernels, s=strides, d=dilations)
def test_checkerboard_is_uneven_overlap_in_the_interior(k: int, s: int, d: int) -> None:
    """Odena et al. 2016: away from the borders every output pixel should get the same number of taps."""
    r = AxisRecipe(kernel=k, stride=s, dilation=d)
    n = k * d + 3 * s  # long enough for an interior of at least one full period
    counts = transposed_counts(r, n)
    interior = counts[d * (k - 1) : (n - 1) * s + 1]  # pixels every tap could reach from inside the input
    assert len(interior) >= s
    assert ops.KINDS["conv_transpose"].checkerboard(r) == bool((interior != interior[0]).any())


@SETTINGS
@given(n=st.integers(1, 10), k=kernels, s=strides, p=paddings, d=dilations)
def test_conv_gaps_are_input_pixels_never_read(n: int, k: int, s: int, p: int, d: int) -> None:
    r = AxisRecipe(kernel=k, stride=s, padding=p, dilation=d)
    kind = ops.KINDS["conv"]
    assume(kind.out_size(r, n) is not None)
    module = ones_layer(Layer.make("conv", (1, n), [r], out_channels=1, bias=False))
    x = torch.ones(1, 1, n, requires_grad=True)
    module(x).sum().backward()
    assert x.grad is not None
    assert kind.gaps(r, n) == bool((x.grad == 0).any())


@SETTINGS
@given(
    name=st.sampled_from(["max_pool", "avg_pool"]),
    n=st.integers(1, 10),
    k=kernels,
    s=strides,
    p=st.integers(0, 2),
    d=dilations,
    ceil=st.booleans(),
)
def test_pool_gaps_are_input_pixels_never_read(name: str, n: int, k: int, s: int, p: int, d: int, ceil: bool) -> None:
    kind = ops.KINDS[name]
    r = AxisRecipe(kernel=k, stride=s, padding=p, dilation=d if name == "max_pool" else 1, ceil_mode=ceil)
    assume(kind.out_size(r, n) is not None)
    module = Layer.make(name, (1, n), [r]).build()
    read = []
    for i in range(n):  # one bright pixel on a dark input: it shows in the output iff some window reads it
        x = torch.full((1, 1, n), -1.0)
        x[0, 0, i] = 1000.0
        read.append(bool((module(x) > 0).any()))
    assert kind.gaps(r, n) == (not all(read))


def test_every_other_kind_has_no_checkerboard_flag() -> None:
    """Only transposed conv spreads input pixels over overlapping output windows."""
    r = AxisRecipe(kernel=3, stride=2)
    assert [name for name, kind in ops.KINDS.items() if kind.checkerboard(r)] == ["conv_transpose"]


@pytest.mark.parametrize("name", ["conv", "conv_transpose", "max_pool", "residual_block", "conv_lstm"])
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), s=st.integers(1, 3), p=st.integers(0, 2), op=st.integers(0, 2), d=st.integers(2, 3))
def test_kernel_one_is_one_layer_at_any_dilation(name: str, n: int, s: int, p: int, op: int, d: int) -> None:
    """k=1 at dilation d computes what k=1 at dilation 1 computes; the catalog folds them into one recipe."""
    kind = ops.KINDS[name]
    fields = {"stride": s, "padding": p, "output_padding": op}
    base = AxisRecipe(kernel=1, **{f: v for f, v in fields.items() if f in kind.search_fields})
    dilated = base._replace(dilation=d)
    assert kind.canonical(dilated) == kind.canonical(base) == base
    assume(kind.out_size(base, n) is not None and kind.out_size(dilated, n) is not None)
    c_out = 2 if kind.has_weights and not kind.keeps_channels else None
    shape = (2, n) if kind.ndims != (2,) else (2, n, n)
    outputs = []
    for r in (base, dilated):
        torch.manual_seed(0)
        module = Layer.make(name, shape, [r] * (len(shape) - 1), out_channels=c_out).build()
        torch.manual_seed(1)
        x = torch.randn(1, 3, *shape) if name == "conv_lstm" else torch.randn(1, *shape)
        with torch.no_grad():
            outputs.append(module(x))
    torch.testing.assert_close(outputs[0], outputs[1])


def test_kernel_one_is_listed_once_with_dilation_one() -> None:
    ranges = Ranges(kernel=(1, 3), stride=(1, 2), padding=(0, 1), dilation=(1, 3))
    listed = [r for r, _ in ops.KINDS["conv"].recipes(8, ranges)]
    ones = [r for r in listed if r.kernel == 1]
    assert ones and all(r.dilation == 1 for r in ones)
    assert len(listed) == len(set(listed))

"""The design rules (``no_dead_pixels``, ``no_identity``, ``no_duplicates``) proven by brute force over torch.

For every kind, every recipe in small ranges and every small input size, the real
torch layer is built with weights fixed by its kernel (so recipes of one kernel
share their weights) and probed:

- linear kinds and max pooling: one one-hot input per input position gives the
  layer's whole response (its Jacobian; a max pool's windows);
- blocks with activations and norms inside: sixteen fixed random inputs.

Two recipes compute the same function exactly when their probes agree: the
catalog's :meth:`OpKind.signature` must split the recipes into the same classes
as torch does.  A dead output pixel is one no probe reaches (a max pool gives
−inf there; a transposed conv is also dead when some input reaches no output, the
transposed view of a window in padding); an identity layer returns its input
unchanged.  (A residual block's dead pixels are its branch's: the block adds its input back.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterator

import pytest
import torch

from archsolve import catalog as ops
from archsolve.core.recipe import AxisRecipe, Ranges
from archsolve.design.layer import Layer
from archsolve.errors import InputError
from helpers.ops_oracle import (
    TIME_STEPS,
    centres_1d,
    centres_of,
    dead_in_torch,
    one_hot_response,
    ordered,
    run_seeded,
    stride_fits,
    varies_in_torch,
)

#: Small ranges: every combination is tried at every input size.
RANGES = Ranges(kernel=(1, 4), stride=(1, 3), padding=(0, 3), output_padding=(0, 2), dilation=(1, 3), scale=(1, 3))
#: Kinds whose response to one-hot inputs is their whole function (linear, or a max over windows).
LINEAR = ("conv", "conv_transpose", "max_pool", "avg_pool", "upsample", "pixel_shuffle", "pixel_unshuffle")
SIZES = {1: range(1, 7), 2: range(1, 4)}


def ndim_of(kind: ops.OpKind) -> int:
    return 1 if 1 in kind.ndims else 2


def in_channels(kind: ops.OpKind, r: AxisRecipe, ndim: int) -> int:
    return r.stride**ndim if isinstance(kind, ops.PixelShuffle) and not isinstance(kind, ops.PixelUnshuffle) else 1


def layer_of(kind: ops.OpKind, r: AxisRecipe, n: int) -> Layer | None:
    ndim = ndim_of(kind)
    options = {"bias": False} if kind.has_weights else {}
    out = None if kind.keeps_channels or not kind.has_weights else 1
    try:
        return Layer.make(kind.name, (in_channels(kind, r, ndim), *([n] * ndim)), [r] * ndim, out, **options)
    except InputError:
        return None


def respond(layer: Layer) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, outputs): one-hot inputs for linear kinds, else sixteen fixed random inputs."""
    if layer.op in LINEAR:
        return one_hot_response(layer)
    shape = layer.in_shape
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(1))
    if layer.op == "conv_lstm":
        x = x.unsqueeze(1).expand(16, TIME_STEPS, *shape).contiguous()
    return x, run_seeded(layer, x)


def fingerprint(y: torch.Tensor) -> Hashable:
    return tuple(y.shape), tuple(torch.round(y.flatten(), decimals=4).tolist())


def valid(kind: ops.OpKind, n: int) -> Iterator[tuple[AxisRecipe, Layer]]:
    seen = set()
    for r in kind.candidates(RANGES):
        if r in seen:
            continue
        seen.add(r)
        layer = layer_of(kind, r, n)
        if layer is not None:
            yield r, layer


def dead(layer: Layer, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Some output position the input never reaches."""
    if layer.op in LINEAR:
        return dead_in_torch(layer, x, y)
    if layer.op == "residual_block":
        y = y - x  # the residual branch: the block adds its input back
    return not bool(((y - y.mean(dim=0)).abs().amax(dim=0) > 1e-6).all())  # the output varies with the input


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
@pytest.mark.parametrize("name", tuple(ops.KINDS))
def test_rules_agree_with_torch_on_every_small_recipe(name: str) -> None:
    """Per kind, every recipe in small ranges at every small size, each layer built and probed once:

    - same signature ⇔ same output for the same weights and inputs (``no_duplicates``);
    - dead pixels ⇔ some output position no input reaches (``no_dead_pixels``);
    - identity ⇔ the layer returns its input unchanged (``no_identity``).
    """
    kind = ops.KINDS[name]
    ndim = ndim_of(kind)
    for n in SIZES[ndim]:
        by_signature: dict[Hashable, set[AxisRecipe]] = defaultdict(set)
        by_torch: dict[Hashable, set[AxisRecipe]] = defaultdict(set)
        for r, layer in valid(kind, n):
            x, y = respond(layer)
            by_signature[(tuple(kind.signature(r, n) for _ in range(ndim)), layer.out_shape)].add(r)
            weights = r.kernel if kind.has_weights else None  # "the same weights" needs the same weight shape
            by_torch[(weights, fingerprint(y))].add(r)
            assert kind.dead_pixels(r, n) == dead(layer, x, y), f"dead pixels: {r} at n={n}"
            assert kind.identity(r, n) == (y.shape == x.shape and torch.equal(y, x)), f"identity: {r} at n={n}"
        catalog = {frozenset(g) for g in by_signature.values()}
        torch_ = {frozenset(g) for g in by_torch.values()}
        assert catalog == torch_, f"n={n}: catalog-only {catalog - torch_}, torch-only {torch_ - catalog}"


def torch_centres(kind: ops.OpKind, r: AxisRecipe, n: int, out: int) -> torch.Tensor:
    """Centres of the inputs feeding each output along the first axis, padding counted, probed in torch.

    The shape-keeping blocks and norms are stride-1 layers whose windows are one conv's (blocks) or
    a single pixel (norms): their conv's probe stands for them."""
    if isinstance(kind, ops.PixelShuffle):
        # One one-hot input per element; each output pixel's centre along H, lines along H per (C, W).
        layer = layer_of(kind, r, n)
        assert layer is not None
        _, y = one_hot_response(layer)
        rows = torch.arange(n).reshape(1, n, 1).expand(*layer.in_shape).flatten()
        centres = centres_of(y, rows)  # (C, H, W)
        return centres.transpose(-1, -2)  # lines along H last
    name = kind.name if kind.name in LINEAR else "conv"
    k = r.kernel if name != "upsample" else 1
    return centres_1d(name, k, r.stride, r.padding, r.output_padding, r.dilation, n, out)


def constant_along_first_axis(layer: Layer, count: int = 8) -> torch.Tensor:
    """Random inputs constant along the first spatial axis (free along the others and across channels)."""
    c, first, *rest = layer.in_shape
    x = torch.randn(count, c, 1, *rest, generator=torch.Generator().manual_seed(2)).expand(count, c, first, *rest)
    if layer.op == "conv_lstm":
        x = x.unsqueeze(1).expand(count, TIME_STEPS, c, first, *rest)
    return x.contiguous()


def free_input(layer: Layer, count: int = 64) -> torch.Tensor:
    x = torch.randn(count, *layer.in_shape, generator=torch.Generator().manual_seed(3))
    if layer.op == "conv_lstm":
        x = x.unsqueeze(1).expand(count, TIME_STEPS, *layer.in_shape)
    return x.contiguous()


def spatial(layer: Layer, y: torch.Tensor) -> torch.Tensor:
    return y.flatten(0, 1) if layer.op == "conv_lstm" else y  # (B·T, C, *spatial)


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
@pytest.mark.parametrize("name", tuple(ops.KINDS))
def test_faithful_and_varies_agree_with_torch_on_every_small_recipe(name: str) -> None:
    """Per kind, every recipe in small ranges at every small size, built in torch:

    - faithful ⇔ where the axis has 2+ pixels in and out, the stride fits torch's size ratio and the
      probed centres of the inputs feeding the outputs never go backwards (``constraints.faithful``);
    - varies(varying) ⇔ with random weights the output differs along the axis for some input that
      is free (varying) or constant along it (``constraints.no_constant_output``).
    """
    kind = ops.KINDS[name]
    ndim = ndim_of(kind)
    checked = unfaithful = 0
    for n in SIZES[ndim]:
        for r, layer in valid(kind, n):
            # One run: inputs constant along the first axis, then (n >= 2) free ones.
            inputs = [constant_along_first_axis(layer)] + ([free_input(layer)] if n >= 2 else [])
            try:
                y = spatial(layer, run_seeded(layer, torch.cat(inputs)))
            except RuntimeError:
                continue  # a shape torch refuses at run time (an instance norm of one value)
            cut = len(inputs[0]) * (TIME_STEPS if layer.op == "conv_lstm" else 1)
            y_const, y_free = y[:cut], y[cut:]
            out = y.shape[2]  # torch's own output size
            if n >= 2 and out >= 2:
                fits = stride_fits(r.stride, n, out, kind.scales_up)
                expected = fits and ordered(torch_centres(kind, r, n, out))
            else:
                expected = True
            assert kind.faithful(r, n) == expected, f"faithful: {r} at n={n} (torch: {expected})"
            unfaithful += not expected
            assert kind.varies(r, n, False) == varies_in_torch(y_const, 0), f"varies from constant: {r} at n={n}"
            if n >= 2:
                assert kind.varies(r, n, True) == varies_in_torch(y_free, 0), f"varies: {r} at n={n}"
            checked += 1
    assert checked > 0
    if name in ("conv", "conv_transpose", "max_pool", "avg_pool"):
        assert unfaithful > 0  # the small ranges hold unfaithful recipes of these kinds: the check can fail

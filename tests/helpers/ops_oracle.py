"""What real torch says about a layer: the oracle the op-catalog tests compare against.

Every number here is observed on a torch module run on a real tensor, never
computed from a formula, so the tests compare the catalog with torch itself.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from archsolve.design.layer import Layer

#: Time steps fed to a ConvLSTM in the contract tests (its input is (B, T, C, H, W)).
TIME_STEPS = 2


@dataclass(frozen=True)
class Observed:
    """One forward pass of a real torch module at batch 1."""

    out_shape: tuple[int, ...]  # (C, *spatial), one sample, one time step
    trainable: int
    non_trainable: int
    macs: int  # FlopCounterMode total FLOPs / 2


def torch_input(layer: Layer) -> torch.Tensor:
    """A batch-1 tensor of the layer's input shape (with a time axis for ConvLSTM)."""
    torch.manual_seed(0)
    if layer.op == "conv_lstm":
        return torch.randn(1, TIME_STEPS, *layer.in_shape)
    return torch.randn(1, *layer.in_shape)


def observe(layer: Layer) -> Observed | None:
    """Build ``layer`` with the catalog's builder and run it; None when torch rejects it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = layer.build().eval()
            x = torch_input(layer)
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                y = module(x)
    except (RuntimeError, ValueError):
        return None
    if 0 in y.shape[1:]:
        # A transposed conv whose padding eats the whole output runs and returns an empty tensor (a conv
        # raises instead): no layer maps to nothing, so an empty output counts as torch refusing it.
        return None
    if layer.op == "conv_lstm":
        out_shape = tuple(y.shape[2:])
        macs = counter.get_total_flops() // 2 // TIME_STEPS
    else:
        out_shape = tuple(y.shape[1:])
        macs = counter.get_total_flops() // 2
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    buffers = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    return Observed(out_shape, trainable, buffers, macs)


def one_hot_response(layer: Layer) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, outputs) of ``layer`` built with weights fixed by its kernel, one one-hot input per element.

    For linear layers (and a max over windows) the outputs are the layer's whole function.
    """
    count = math.prod(layer.in_shape)
    x = torch.eye(count).reshape(count, *layer.in_shape)
    return x, run_seeded(layer, x)


def run_seeded(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    """``layer`` built with weights fixed by its kernel (recipes of one kernel share them), run on ``x``."""
    torch.manual_seed(layer.axes[0].kernel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = layer.build().eval()
        with torch.no_grad():
            return module(x)


def dead_in_torch(layer: Layer, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Some output no one-hot input reaches (a max pool gives −inf there); for a transposed conv, also
    some input that reaches no output.  ``layer`` must be built without bias."""
    seen = y.isfinite() & (y != 0)
    dead = not bool(seen.any(dim=0).all())
    if layer.op == "conv_transpose":
        dead = dead or not bool(seen.flatten(1).any(dim=1).all())
    return dead


# --- the geometry rules (faithful resampling) and constant outputs, as torch shows them ------------------


def stride_fits(stride: int, n: int, out: int, up: bool) -> bool:
    """The stride half of ``constraints.faithful`` on torch's own sizes: the stride is the size ratio
    (out/in enlarging, in/out shrinking) rounded, a tie either way (docs/problems.md)."""
    num, den = (out, n) if up else (n, out)
    return 2 * abs(stride * den - num) <= den


def ordered(centres: torch.Tensor) -> bool:
    """Whether the centres (NaN: an output nothing feeds) never go backwards along the last axis."""
    for line in centres.reshape(-1, centres.shape[-1]):
        fed = line[~line.isnan()]
        if bool((fed[1:] < fed[:-1] - 1e-9).any()):
            return False
    return True


def centres_of(response: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Per output pixel the mean coordinate of the inputs whose one-hot response reaches it.

    ``response`` is (inputs, *output) with one row per one-hot input, ``coords`` each input's position."""
    fed = (response != 0).to(torch.float64)
    count = fed.sum(dim=0)
    total = torch.tensordot(coords.to(torch.float64), fed, dims=1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(count, float("nan")))


def _ones(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(1.0)
    return module.eval()


def centres_1d(kind: str, k: int, s: int, p: int, op: int, d: int, n: int, out: int) -> torch.Tensor:
    """Centres of the inputs feeding each of the ``out`` outputs of a 1-D layer on ``n`` inputs, padding
    and positions past the edges counted as positions: the same window rebuilt in torch on an input
    widened so that those positions are real (ones weights, one one-hot input per position).

    A conv or pool with padding p is its padding-free layer on the input with p zeros each side; a
    transposed conv with padding p on M more inputs each side, cropped M·s more, has the same outputs."""
    from torch import nn

    if kind in ("conv", "max_pool", "avg_pool"):
        width = max(n + 2 * p, (out - 1) * s + d * (k - 1) + 1)  # a ceil_mode window may hang past the end
        if kind == "conv":
            module: nn.Module = _ones(nn.Conv1d(1, 1, k, s, 0, dilation=d, bias=False))
        elif kind == "max_pool":
            module = nn.MaxPool1d(k, s, 0, dilation=d)
        else:
            module = nn.AvgPool1d(k, s, 0)
        shift = p
    elif kind == "conv_transpose":
        margin = (k - 1) * d + op + 1
        width, shift = n + 2 * margin, margin
        module = _ones(nn.ConvTranspose1d(1, 1, k, s, p + margin * s, op, dilation=d, bias=False))
    else:
        width, shift = n, 0
        module = nn.Upsample(scale_factor=float(s), mode="nearest")
    with torch.no_grad():
        y = module(torch.eye(width).reshape(width, 1, width))[:, 0, :out]
    assert y.shape[-1] == out  # the widened layer gives at least the real one's outputs
    return centres_of(y, torch.arange(width) - shift)


def varies_in_torch(y: torch.Tensor, axis: int) -> bool:
    """Whether some sample's output differs between two positions along spatial ``axis`` (of (B, C, *spatial))."""
    dim = 2 + axis
    if y.shape[dim] < 2:
        return False
    spread = y.amax(dim=dim) - y.amin(dim=dim)
    return bool((spread > 1e-5 * (1 + y.abs().amax())).any())

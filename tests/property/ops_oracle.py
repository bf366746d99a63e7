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

from archsolve.layer import Layer

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

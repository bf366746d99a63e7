"""Torch modules for the composite kinds in the op catalog (imported only when building)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def center_crop(skip: torch.Tensor, like: torch.Tensor, dims: int) -> torch.Tensor:
    """The middle of ``skip``'s last ``dims`` axes, as large as ``like``'s (U-Net's cropped skip)."""
    for axis in range(-dims, 0):
        start = (skip.shape[axis] - like.shape[axis]) // 2
        skip = skip.narrow(axis, start, like.shape[axis])
    return skip


class ResidualBlock(nn.Module):
    """conv → norm → ReLU → conv → norm, added to the input (CycleGAN's ResnetBlock shape)."""

    def __init__(
        self,
        ndim: int,
        channels: int,
        make_norm: Callable[[], nn.Module] = nn.Identity,
        bias: bool = True,
        **conv: Any,
    ) -> None:
        """``make_norm`` builds each of the two norms (the op catalog supplies ``[build].norm``'s)."""
        super().__init__()
        conv_cls = getattr(nn, f"Conv{ndim}d")
        self.body = nn.Sequential(
            conv_cls(channels, channels, bias=bias, **conv),
            make_norm(),
            nn.ReLU(inplace=True),
            conv_cls(channels, channels, bias=bias, **conv),
            make_norm(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if y.shape != x.shape:  # a size-1 axis would otherwise broadcast into a size-changing "residual"
            raise RuntimeError(f"residual block changes the shape {tuple(x.shape)} to {tuple(y.shape)}")
        return x + y


class ConvLSTM(nn.Module):
    """A ConvLSTM cell unrolled over time: (B, T, C_in, H, W) → (B, T, C_h, H, W).

    The four gates come from one conv over the concatenated input and hidden
    state, C_in + C_h → 4·C_h (Shi et al. 2015, without peepholes).
    """

    def __init__(self, in_channels: int, hidden: int, bias: bool = True, **conv: Any) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, bias=bias, **conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _, height, width = x.shape
        h = x.new_zeros(batch, self.hidden, height, width)
        c = torch.zeros_like(h)
        outputs = []
        for t in range(steps):
            gates = self.gates(torch.cat([x[:, t], h], dim=1))
            if gates.shape[2:] != h.shape[2:]:  # a 1x1 gate map would otherwise broadcast over the state
                raise RuntimeError(f"ConvLSTM gates change the size {tuple(h.shape[2:])} to {tuple(gates.shape[2:])}")
            i, f, o, g = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)

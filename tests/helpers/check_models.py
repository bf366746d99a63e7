"""Small models with known size behaviour for the ``archsolve check`` tests (written here, run for real)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyUNet(nn.Module):
    """Conv, pool, transposed conv, concat: runs on even sizes only."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, width, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Conv2d(width, width, 3, padding=1)
        self.up = nn.ConvTranspose2d(width, width, 2, stride=2)
        self.head = nn.Conv2d(2 * width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.enc(x))
        b = self.up(torch.relu(self.mid(self.pool(a))))
        return self.head(torch.cat([a, b], 1))


class Strided(nn.Module):
    """Five stride-2 convs and a decoder of x2 upsampling adding every skip, the input last: multiples of 32
    (and 1, where every skip broadcasts)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.ModuleList([nn.Conv2d(4, 4, 3, stride=2, padding=1) for i in range(5)])
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for conv in self.down:
            skips.append(x)
            x = conv(x)
        for skip in reversed(skips):
            x = self.up(x) + skip
        return x


class SizedUp(nn.Module):
    """F.interpolate to the skip's size, then add: every size runs (the size comes from the other tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 3, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(3, stride=2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.down(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False) + x


class PadOdd(nn.Module):
    """Pads odd sizes before a stride-2 conv and its x2 pixel shuffle: a branch on the size in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, stride=2, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2))
        y = self.shuffle(self.conv(x))
        return y[..., :h, :w] + x[..., :h, :w]


class Classifier(nn.Module):
    """Convs then flatten into a Linear sized for 28x28: one size per axis runs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 5)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.fc = nn.Linear(2 * 12 * 12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


class Decoder1d(nn.Module):
    """A 1-D transposed-conv decoder: out = 2·L + 1 from every L."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(2, 2, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


def needs_arguments(channels: int) -> nn.Module:
    return nn.Conv2d(channels, channels, 3)


CASES = {
    "TinyUNet": (TinyUNet, "1x3x?x?"),
    "Strided": (Strided, "1x4x?x64"),
    "SizedUp": (SizedUp, "1x3x?x?"),
    "PadOdd": (PadOdd, "1x3x?x?"),
    "Classifier": (Classifier, "1x1x?x28"),
    "Decoder1d": (Decoder1d, "1x2x?"),
}

"""Models whose forward code does more than call layers (issue 20): in-place writes, loops over a size,
``numel()``, index ops that the meta device does not check, two merges in one forward, a CRNN.

Each one is brute-forced on CPU by the tests; the size behaviour in each docstring is torch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InplaceBuffer(nn.Module):
    """``buf[:] = ceil-mode pool``: a buffer of H // 2 rows takes (H + 1) // 2 rows only where H is even (or 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        buf = x.new_zeros(1, 1, h // 2, 8)
        buf[:] = F.max_pool2d(x, (2, 1), ceil_mode=True)
        return buf


class CopyBuffer(nn.Module):
    """The same buffer filled by ``.copy_(...)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        buf = torch.zeros(1, 1, x.shape[2] // 2, 8, device=x.device)
        buf.copy_(F.max_pool2d(x, (2, 1), ceil_mode=True))
        return buf + 1


class InplaceAdd(nn.Module):
    """``y += skip`` and ``y.add_(...)``: in place, the left side cannot grow (stride-2 conv then x2 upsample)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.proj = nn.Conv2d(1, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.proj(x)
        y = self.up(self.down(x))
        y += skip
        y.add_(1.0)
        return y


class RowLoop(nn.Module):
    """A row recurrence ``for i in range(1, x.shape[2])`` then ``torch.cat``: every H runs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        rows = [x[:, :, :1]]
        for i in range(1, x.shape[2]):
            rows.append(torch.tanh(x[:, :, i].unsqueeze(2) + rows[-1]))
        return torch.cat(rows, 2) + x


class NumelFC(nn.Module):
    """``x.view(1, x.numel())`` into a Linear sized for H = 16: only the fc decides (H = 15 and 16 run)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.fc = nn.Linear(2 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(x.view(1, x.numel()))


class Unpool(nn.Module):
    """Max pool with indices, unpool without ``output_size``: the meta device runs every size,
    CPU raises where an index falls outside the smaller unpooled tensor (odd sizes)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, idx = self.pool(x)
        return self.unpool(y, idx)


class TwoCats(nn.Module):
    """Two ``torch.cat`` calls in one forward, each breaking at its own sizes (odd H, H ≡ 2 mod 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.d1 = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.d2 = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.u2 = nn.ConvTranspose2d(2, 2, 2, stride=2)
        self.u1 = nn.ConvTranspose2d(4, 2, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.d1(x)
        b = self.d2(a)
        c = torch.cat([self.u2(b), a], 1)
        return torch.cat([self.u1(c), x], 1)


class CRNN(nn.Module):
    """Convs and pools bring H = 32 to 1, the width becomes a sequence for an LSTM and a per-step Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d((2, 1)),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d((2, 1)),
            nn.Conv2d(16, 16, (4, 1)),
        )
        self.rnn = nn.LSTM(16, 8, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x)
        if f.shape[2] != 1:
            raise ValueError(f"the height must reach 1, got {f.shape[2]}")
        seq = f.squeeze(2).permute(0, 2, 1)
        out, _ = self.rnn(seq)
        return self.fc(out)


class ShapeLoop(nn.Module):
    """``while`` a size is above 4, pool: the number of pools follows the size (every H runs, output ≤ 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.shape[2] > 4 or x.shape[3] > 4:
            x = self.pool(x)
        return x


class NumelBranch(nn.Module):
    """A branch on ``x.numel()``: large inputs are pooled first, then a Linear sized for 8 columns."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() > 128:
            x = F.avg_pool2d(x, (1, 2))
        return self.fc(x)


class Strided1(nn.Module):
    """One ``Conv2d(1, 1, 3, stride=2, padding=1)``: every size runs; the export Dim must start at 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UpNoSize(nn.Module):
    """A U-Net step whose transposed conv lands on 2·⌊H/2⌋: odd H fails at the cat; ``output_size=`` fixes every H."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(1, 2, 3, padding=1)
        self.down = nn.Conv2d(2, 2, 2, stride=2)
        self.up = nn.ConvTranspose2d(2, 2, 2, stride=2)
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.enc(x))
        b = self.up(self.down(a))
        return self.head(torch.cat([a, b], 1))


#: name → (factory, input shape, range high)
REAL_CASES = {
    "InplaceBuffer": (InplaceBuffer, "1x1x?x8", 24),
    "CopyBuffer": (CopyBuffer, "1x1x?x8", 24),
    "InplaceAdd": (InplaceAdd, "1x1x?x?", 24),
    "RowLoop": (RowLoop, "1x1x?x4", 32),
    "NumelFC": (NumelFC, "1x1x?x16", 32),
    "Unpool": (Unpool, "1x1x?x?", 24),
    "TwoCats": (TwoCats, "1x2x?x8", 32),
    "CRNN": (CRNN, "1x1x32x?", 64),
    "ShapeLoop": (ShapeLoop, "1x1x?x?", 40),
    "NumelBranch": (NumelBranch, "1x1x?x8", 40),
    "Strided1": (Strided1, "1x1x?x?", 64),
    "UpNoSize": (UpNoSize, "1x1x?x?", 32),
}

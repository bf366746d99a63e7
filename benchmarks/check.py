"""Benchmark: ``archsolve check`` on sizes 1..1024 of one axis of a ~100-layer U-Net, against brute force.

- ``check``: :func:`archsolve.check` in this process, after one warm-up call (torch loads its meta
  kernels on first use, once per process; the cold run is reported separately).
- ``brute``: one whole-model forward on the meta device per size, the obvious way to answer the same
  question; timed on an evenly spaced sample of sizes and scaled to the 1024 (said in the output).

The two must agree on every sampled size.  Medians of ``--runs`` interleaved runs, with min and max;
raw numbers go to ``benchmarks/results/check.json``.
Usage: ``.venv/bin/python benchmarks/check.py [--runs 5] [--sample 64]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import archsolve

RESULTS = Path(__file__).parent / "results" / "check.json"
LOW, HIGH = 1, 1024
SHAPE = "1x3x?x64"


def block(c_in: int, c_out: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU()]
    return layers


class DeepUNet(nn.Module):
    """Four levels of four conv-BN-ReLU layers, max pools, transposed convs and concatenated skips."""

    def __init__(self, width: int = 4, levels: int = 4, convs: int = 4) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList(nn.Sequential(*block(3 if i == 0 else widths[i - 1], widths[i], convs))
                                  for i in range(levels))
        self.pool = nn.MaxPool2d(2)
        self.bottom = nn.Sequential(*block(widths[levels - 1], widths[levels], convs))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(levels)))
        self.merge = nn.ModuleList(nn.Sequential(*block(2 * widths[i], widths[i], convs))
                                   for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([skip, up(x)], 1))
        return self.head(x)


def layer_count(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if not list(m.children()))


def brute(model: nn.Module, sizes: list[int]) -> dict[int, tuple[int, ...] | None]:
    out: dict[int, tuple[int, ...] | None] = {}
    for n in sizes:
        try:
            with torch.no_grad():
                out[n] = tuple(model(torch.empty(1, 3, n, 64, device="meta")).shape)
        except RuntimeError:
            out[n] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sample", type=int, default=64, help="sizes the brute-force baseline is timed on")
    args = parser.parse_args()
    with torch.device("meta"):
        model = DeepUNet().eval()
    start = time.perf_counter()
    archsolve.check(model, SHAPE, (LOW, HIGH))
    cold = time.perf_counter() - start
    step = max(1, (HIGH - LOW + 1) // args.sample)
    sample = list(range(LOW, HIGH + 1, step))
    checks, brutes = [], []
    result = None
    for _ in range(args.runs):
        start = time.perf_counter()
        result = archsolve.check(model, SHAPE, (LOW, HIGH))
        checks.append(time.perf_counter() - start)
        start = time.perf_counter()
        truth = brute(model, sample)
        brutes.append((time.perf_counter() - start) * (HIGH - LOW + 1) / len(sample))
    assert result is not None
    h = result.axis("H")
    for n in sample:
        v = h.verdict(n)
        assert (v.out[0] if v.out else None) == truth[n], n
    data = {
        "model": f"DeepUNet, {layer_count(model)} layers",
        "input": SHAPE,
        "range": [LOW, HIGH],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cold_first_call_s": cold,
        "check_s": checks,
        "brute_scaled_s": brutes,
        "brute_sample": len(sample),
        "meta_forwards": result.meta_forwards,
        "graph_sizes": h.decided,
        "runs": h.runs.text("H"),
        "load_average": os.getloadavg(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    med_c, med_b = statistics.median(checks), statistics.median(brutes)
    print(f"{data['model']}, {SHAPE}, H in {LOW}..{HIGH}: runs on {data['runs']}")
    print(f"check  median {med_c:.3f} s (min {min(checks):.3f}, max {max(checks):.3f}, {args.runs} runs); "
          f"{result.meta_forwards} meta forwards; cold first call {cold:.2f} s")
    print(f"brute  median {med_b:.2f} s (scaled from {len(sample)} sizes; "
          f"min {min(brutes):.2f}, max {max(brutes):.2f})")
    print(f"ratio  brute / check = {med_b / med_c:.1f}x")


if __name__ == "__main__":
    main()

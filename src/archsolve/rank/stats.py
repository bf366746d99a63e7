"""Small statistics the ranker uses: rank correlation, the Pareto front and the racing rule (pure, tested directly)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get their average rank); None when undefined."""
    if len(xs) != len(ys):
        raise ValueError("spearman: sequences of different lengths")
    if len(xs) < 2:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx > 0 and vy > 0 else None


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``; equal values share their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates, every objective minimised."""
    front = []
    for i, p in enumerate(points):
        dominated = any(
            all(a <= b for a, b in zip(q, p, strict=True)) and any(a < b for a, b in zip(q, p, strict=True))
            for j, q in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def slower_beyond_doubt(
    leader: Sequence[float], other: Sequence[float], confidence: float, resamples: int, seed: int
) -> bool:
    """Whether ``other`` is slower than ``leader`` beyond noise: the paired-bootstrap upper bound of
    ``median(leader) / median(other)`` (seconds, sample ``r`` of both taken in the same round) is below 1.

    The racing rule: a design this says cannot catch the leader takes no more samples.
    """
    rounds = min(len(leader), len(other))
    if rounds < 2:
        return False
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        picks = [rng.randrange(rounds) for _ in range(rounds)]
        ratios.append(statistics.median(leader[r] for r in picks) / statistics.median(other[r] for r in picks))
    ratios.sort()
    return ratios[min(len(ratios) - 1, int(confidence * len(ratios)))] < 1.0

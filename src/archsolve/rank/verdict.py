"""What the measurements let us say: the final race's ratios, intervals and ties, and the latency model's quality.

Pure functions of the numbers (no torch, no Optuna), tested directly.

**The race.**  The finalists' samples were taken round-robin, one sample of
each design per round, so round ``r`` of every design saw the same machine
state.  A design's speed ratio to the reference is ``median(reference) /
median(design)`` (above 1: faster than the reference).  Its confidence
interval is a paired bootstrap over rounds: resample the rounds with
replacement, recompute every ratio, take the percentiles.  Designs whose
interval overlaps the leader's tie with it.  A design *beats* the reference
when its whole interval lies above 1.  The winner is, among the designs that
beat the reference and tie with the leader, the one with fewer parameters,
then fewer MACs; when none beats the reference, the verdict is to keep the
reference, and it says why.  When the leader ties with every other finalist
the machine was too noisy to separate anything, and the warning says so first.

The race is the headline: after it, the ranking's places are the race's
(:meth:`RaceResult.rerank`); the per-trial figures are the screening.

**The latency model**, reported as nn-Meter does: the share of measured
designs whose predicted time is within ±10 % of the measured one, and
Spearman's rank correlation between predicted and measured time.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from .candidate import Candidate, Raced
from .stats import spearman

WITHIN = 0.10


@dataclass(frozen=True)
class ModelQuality:
    """How well the latency model predicts the designs measured in the study.

    ``within_10pct`` and ``spearman``: its predictions of the designs it was
    fitted on (in-sample).  ``held_out_*``: each design predicted by the
    model fitted without it (leave-one-out), the figures that say whether it
    ranks; ``form`` names the calibration chosen, ``ranks`` is held-out
    Spearman >= 0.5 (None while too few designs are measured).
    """

    designs: int
    within_10pct: float | None
    spearman: float | None
    held_out_designs: int = 0
    held_out_within_10pct: float | None = None
    held_out_spearman: float | None = None
    form: str = "step sum"
    ranks: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_quality(candidates: Sequence[Candidate]) -> ModelQuality:
    pairs = [(c.predicted_s, c.median_s) for c in candidates if c.predicted_s is not None and c.median_s > 0]
    if not pairs:
        return ModelQuality(0, None, None)
    within = sum(abs(p - m) <= WITHIN * m for p, m in pairs) / len(pairs)
    return ModelQuality(len(pairs), within, spearman([p for p, _ in pairs], [m for _, m in pairs]))


@dataclass(frozen=True)
class RaceEntry:
    """One finalist: its race median, speed ratio to the reference and that ratio's interval."""

    candidate: Candidate
    median_s: float
    rounds: int
    ratio: float
    low: float
    high: float
    tie: bool
    is_reference: bool

    @property
    def beats(self) -> bool:
        """Faster than the reference beyond the interval: its whole interval lies above 1."""
        return not self.is_reference and self.low > 1.0

    def raced(self, batch_size: int) -> Raced:
        throughput = batch_size / self.median_s if self.median_s > 0 else float("inf")
        return Raced(
            self.ratio,
            self.low,
            self.high,
            self.median_s,
            throughput,
            self.rounds,
            self.tie,
            self.is_reference,
            self.beats,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.candidate.rank,
            "trial": self.candidate.trial,
            "choices": list(self.candidate.keys),
            "median_s": self.median_s,
            "rounds": self.rounds,
            "ratio": self.ratio,
            "interval": [self.low, self.high],
            "tie": self.tie,
            "reference": self.is_reference,
            "beats_reference": self.beats,
        }


@dataclass(frozen=True)
class RaceResult:
    """The final race: every finalist (fastest first), the winner, its ties, and whether noise hid everything."""

    entries: tuple[RaceEntry, ...]
    winner: RaceEntry
    leader: RaceEntry
    confidence: float
    reused: bool

    @property
    def reference(self) -> RaceEntry:
        return next(e for e in self.entries if e.is_reference)

    @property
    def ties(self) -> tuple[RaceEntry, ...]:
        return tuple(e for e in self.entries if e.tie)

    @property
    def keep_reference(self) -> bool:
        """No finalist beats the reference beyond its interval: the advice is to keep it."""
        return self.winner.is_reference

    @property
    def noisy(self) -> bool:
        """Noise separated nothing: several finalists and all of them tie with the leader."""
        return len(self.entries) > 1 and all(e.tie for e in self.entries)

    def verdict(self) -> str:
        """One sentence: beat the reference (by how much, within what) or keep it (and why); the ties and why."""
        w = self.winner
        pct = f"{self.confidence:.0%}"
        if self.keep_reference:
            head = f"keep the reference {label(w)}: no finalist runs faster beyond its {pct} interval"
            rivals = [e for e in self.entries if not e.is_reference]
            if rivals:
                best = rivals[0]  # entries are fastest first
                head += (
                    f" (the fastest, {label(best)}, at {best.ratio:.2f}×, interval {best.low:.2f}–{best.high:.2f})"
                    if best.ratio > 1
                    else f"; it is the fastest finalist (next: {label(best)} at {best.ratio:.2f}×)"
                )
        else:
            head = f"{name(w)} runs at {w.ratio:.2f}× the reference's speed ({pct} interval {w.low:.2f}–{w.high:.2f})"
        ties = sorted(self.ties, key=lambda e: e.candidate.rank)
        if len(ties) == 1:
            return f"{head}; no other finalist ties with it"
        names = [name(e) for e in ties]
        joined = " and ".join(names) if len(names) == 2 else ", ".join(names[:-1]) + " and " + names[-1]
        if self.keep_reference:
            return f"{head}; {joined} tie within noise"
        others = [e for e in ties if e is not w and e.beats]
        design = w.candidate.design
        if not others:
            why = "is the only one of them faster than the reference beyond noise"
        elif all(design.params.total < e.candidate.design.params.total for e in others):
            why = "has fewer params"
        elif all((design.params.total, design.macs) < _cost(e) for e in others):
            why = "has fewer MACs at no more params"
        else:
            why = "has the best median"
        return f"{head}; {joined} tie within noise; {name(w)} {why}"

    def warning(self) -> str | None:
        if not self.noisy:
            return None
        return (
            f"noise separates nothing: all {len(self.entries)} finalists tie within their {self.confidence:.0%} "
            "intervals; keep the reference (nothing here is faster beyond noise)"
        )

    def rerank(self, candidates: Sequence[Candidate], batch_size: int) -> tuple[tuple[Candidate, ...], RaceResult]:
        """The ranking in the race's order: the winner, the other finalists by ratio, then the rest by screening.

        Every candidate keeps its screening place in ``screening_rank``;
        finalists carry their race figures (``raced``).  The race returned
        refers to the renumbered candidates.
        """
        entry = {e.candidate.keys: e for e in self.entries}
        first = [self.winner, *(e for e in self.entries if e is not self.winner)]
        order = [e.candidate.keys for e in first] + [c.keys for c in candidates if c.keys not in entry]
        by_keys = {c.keys: c for c in candidates}
        placed: dict[tuple[str, ...], Candidate] = {}
        for place, keys in enumerate(order, 1):
            c = by_keys.get(keys, entry[keys].candidate if keys in entry else None)
            if c is None:
                continue
            raced = entry[keys].raced(batch_size) if keys in entry else None
            placed[keys] = replace(c, rank=place, screening_rank=c.screening_rank or c.rank, raced=raced)

        def moved(e: RaceEntry) -> RaceEntry:
            return replace(e, candidate=placed[e.candidate.keys])

        race = replace(
            self, entries=tuple(moved(e) for e in self.entries), winner=moved(self.winner), leader=moved(self.leader)
        )
        return tuple(placed.values()), race

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner.to_dict(),
            "reference": self.reference.to_dict(),
            "ratio": self.winner.ratio,
            "interval": [self.winner.low, self.winner.high],
            "confidence": self.confidence,
            "keep_reference": self.keep_reference,
            "ties": [e.to_dict() for e in self.ties],
            "noisy": self.noisy,
            "verdict": self.verdict(),
            "warning": self.warning(),
            "finalists": [e.to_dict() for e in self.entries],
            "reused": self.reused,
        }


def _cost(entry: RaceEntry) -> tuple[int, int]:
    return entry.candidate.design.params.total, entry.candidate.design.macs


def label(entry: RaceEntry) -> str:
    return f"#{entry.candidate.rank}" if entry.candidate.rank > 0 else "(outside the ranking)"


def name(entry: RaceEntry) -> str:
    return f"{label(entry)} (reference)" if entry.is_reference else label(entry)


def decide(
    finalists: Sequence[Candidate],
    samples: Sequence[Sequence[float]],
    reference: int,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    reused: bool = False,
) -> RaceResult:
    """The race's verdict from interleaved ``samples`` (``samples[i][r]``: finalist ``i`` in round ``r``).

    A finalist dropped from the race early (it could not catch the leader)
    has fewer rounds: its ratio and interval pair it with the reference's
    first rounds, the ones they ran side by side.
    """
    if min(len(s) for s in samples) < 1:
        raise ValueError("decide: every finalist needs at least one sample")
    paired = [min(len(s), len(samples[reference])) for s in samples]
    cols = [list(s[:n]) for s, n in zip(samples, paired, strict=True)]
    refs = [list(samples[reference][:n]) for n in paired]
    medians = [statistics.median(c) for c in cols]
    ratios = [statistics.median(r) / m for r, m in zip(refs, medians, strict=True)]
    rng = random.Random(seed)
    boot: list[list[float]] = [[] for _ in cols]
    lengths = sorted(set(paired), reverse=True)
    for _ in range(resamples):
        for rounds in lengths:  # one draw of rounds per length: with equal lengths, one paired draw for all
            picks = [rng.randrange(rounds) for _ in range(rounds)]
            ref = statistics.median(samples[reference][r] for r in picks)
            for i, c in enumerate(cols):
                if paired[i] == rounds:
                    boot[i].append(ref / statistics.median(c[r] for r in picks))
    tail = (1 - confidence) / 2
    bounds = [(quantile(b, tail), quantile(b, 1 - tail)) for b in boot]
    lead = max(range(len(cols)), key=lambda i: (ratios[i], -i))
    ties = [bounds[i][1] >= bounds[lead][0] and bounds[i][0] <= bounds[lead][1] for i in range(len(cols))]
    entries = [
        RaceEntry(f, medians[i], len(samples[i]), ratios[i], bounds[i][0], bounds[i][1], ties[i], i == reference)
        for i, f in enumerate(finalists)
    ]
    # The winner must beat the reference beyond its interval; without one, the reference stays.
    chosen = [i for i in range(len(cols)) if ties[i] and i != reference and bounds[i][0] > 1.0]
    win = min(
        chosen or [reference],
        key=lambda i: (finalists[i].design.params.total, finalists[i].design.macs, -ratios[i], i),
    )
    order = sorted(range(len(cols)), key=lambda i: (-ratios[i], i))
    return RaceResult(tuple(entries[i] for i in order), entries[win], entries[lead], confidence, reused)


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

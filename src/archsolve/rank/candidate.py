"""A measured design with its place in the ranking, and a design that could not be measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..design.design import Design

Keys = tuple[str, ...]


@dataclass(frozen=True)
class Raced:
    """A finalist's figures from the final race: timed in turns with the reference, in one process.

    ``ratio`` is the reference's race median over this design's (above 1:
    faster), ``low``–``high`` its bootstrap interval; ``beats``: faster than
    the reference beyond that interval; ``tie``: not separable from the race's
    leader.
    """

    ratio: float
    low: float
    high: float
    median_s: float
    throughput: float
    rounds: int
    tie: bool
    reference: bool
    beats: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "interval": [self.low, self.high],
            "median_s": self.median_s,
            "throughput": self.throughput,
            "rounds": self.rounds,
            "tie": self.tie,
            "reference": self.reference,
            "beats_reference": self.beats,
        }


@dataclass(frozen=True, repr=False)
class Candidate:
    """A measured design, with its place in the ranking.

    ``throughput``, ``median_s`` and ``iqr_s`` are the screening figures: the
    design timed alone, at its own moment.  After a race, ``rank`` is the
    final place (the race's winner first, then the other finalists by their
    race ratio, then the rest by screening), ``screening_rank`` the place by
    screening throughput, and ``raced`` holds a finalist's race figures.
    """

    rank: int
    trial: int
    keys: Keys
    design: Design
    throughput: float
    median_s: float
    iqr_s: float
    flagged: bool
    peak_memory_bytes: int | None
    predicted_s: float | None
    screening_rank: int | None = None
    raced: Raced | None = None

    def __repr__(self) -> str:
        return (
            f"<Candidate #{self.rank} {self.design.name!r}: {self.throughput:,.1f} samples/s, "
            f"{self.design.params.total:,} params>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``solve --json`` candidate (docs/json.md) plus the measurement's details."""
        return {
            **self.design.to_dict(self.throughput),
            "rank": self.rank,
            "screening_rank": self.screening_rank if self.screening_rank is not None else self.rank,
            "trial": self.trial,
            "choices": list(self.keys),
            "median_s": self.median_s,
            "iqr_s": self.iqr_s,
            "flagged": self.flagged,
            "peak_memory_bytes": self.peak_memory_bytes,
            "predicted_s": self.predicted_s,
            "race": self.raced.to_dict() if self.raced else None,
        }


@dataclass(frozen=True)
class FailedCandidate:
    """A design whose build or measurement raised, with the reason."""

    trial: int
    keys: Keys
    reason: str

"""A measured design with its place in the ranking, and a design that could not be measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..design import Design

Keys = tuple[str, ...]


@dataclass(frozen=True, repr=False)
class Candidate:
    """A measured design, with its place in the ranking."""

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
            "trial": self.trial,
            "choices": list(self.keys),
            "median_s": self.median_s,
            "iqr_s": self.iqr_s,
            "flagged": self.flagged,
            "peak_memory_bytes": self.peak_memory_bytes,
            "predicted_s": self.predicted_s,
        }


@dataclass(frozen=True)
class FailedCandidate:
    """A design whose build or measurement raised, with the reason."""

    trial: int
    keys: Keys
    reason: str

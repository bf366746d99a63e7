"""The ranker's values: its settings, its progress events, the measured candidates and the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..display import Shown
from ..errors import InputError, Issue
from .candidate import Candidate, FailedCandidate, Keys
from .measure import Environment, MeasureSettings
from .verdict import ModelQuality, RaceResult

__all__ = ["Candidate", "FailedCandidate", "Keys", "RankProgress", "RankResult", "RankSettings", "RunCounts", "Tally"]
SAMPLERS = ("tpe", "random")


@dataclass(frozen=True)
class RankSettings:
    """How to search and where to keep the study (``[rank]`` in a problem file, ``--storage``, ``--study``).

    ``trials``: designs measured in the study in total (all runs, all workers).
    ``enqueue``: designs predicted fastest by the latency model to measure
    first (default: half of ``trials``).  ``max_asks``: proposals before giving
    up on finding new valid designs (default ``10 * trials + 50``).
    ``patience``: consecutive proposals that measure nothing before the next
    predicted-best unmeasured design is enqueued.  ``race``: re-time the
    ``finalists`` best measured designs and the reference round-robin,
    ``race_rounds`` rounds, and decide with ``confidence`` intervals.
    """

    trials: int = 20
    results_dir: Path | None = None
    storage: str | None = None
    study_name: str | None = None
    sampler: str = "tpe"
    seed: int | None = None
    model: bool = True
    enqueue: int | None = None
    model_repeats: int = 5
    pool_limit: int = 5000
    model_limit: int = 512
    startup_trials: int = 5
    patience: int = 1
    max_asks: int | None = None
    pareto: bool = True
    stale_after_s: float = 3600.0
    race: bool = True
    finalists: int = 3
    race_rounds: int = 15
    confidence: float = 0.95

    def __post_init__(self) -> None:
        issues = []
        for name, low in (
            ("trials", 1),
            ("model_repeats", 3),
            ("pool_limit", 1),
            ("model_limit", 0),
            ("finalists", 1),
            ("race_rounds", 3),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                issues.append(Issue(name, f"{value!r}: expected an integer >= {low}"))
        for name in ("enqueue", "max_asks"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                issues.append(Issue(name, f"{value!r}: expected an integer >= 0"))
        if not 0.5 <= self.confidence < 1:
            issues.append(Issue("confidence", f"{self.confidence!r}: expected a level in [0.5, 1)"))
        if self.sampler not in SAMPLERS:
            issues.append(Issue("sampler", f"{self.sampler!r}: expected one of {', '.join(SAMPLERS)}"))
        if self.startup_trials < 0 or self.patience < 1:
            issues.append(Issue("startup_trials/patience", "expected startup_trials >= 0 and patience >= 1"))
        if issues:
            raise InputError(issues)


@dataclass(frozen=True)
class RankProgress:
    """What a progress bar needs: phase, done/total, ETA and the best design so far."""

    phase: Literal["model", "search", "race"]
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    best_throughput: float | None
    best_keys: Keys | None
    message: str


@dataclass(frozen=True)
class RunCounts:
    """What this run did (the study may hold more from earlier runs and other workers).

    ``measured``: designs this run measured.  ``reused``: ranked designs whose
    measurement this run took from the study (earlier runs, other workers).
    ``repeats``: proposals of a design already measured, answered from the
    study without measuring.  ``deferred``: proposals left to another worker
    measuring the same design; ``contested``: queued trials another worker
    took at the same moment.  ``dropped``: stale queue entries removed.
    """

    measured: int = 0
    reused: int = 0
    repeats: int = 0
    invalid: int = 0
    failed: int = 0
    deferred: int = 0
    contested: int = 0
    dropped: int = 0
    step_timings: int = 0
    step_timings_reused: int = 0
    asks: int = 0


@dataclass(frozen=True, repr=False)
class RankResult(Shown):
    """The ranking of every design measured in the study, best first, and how this run got there.

    ``timed_s`` is the wall time this run spent inside timed windows (design
    and step measurements); ``wall_s`` all of this run.
    """

    problem: str
    study_name: str
    storage: str
    results_path: Path
    plot_path: Path | None
    candidates: tuple[Candidate, ...]
    pareto: tuple[Candidate, ...]
    failed: tuple[FailedCandidate, ...]
    run: RunCounts
    spearman: float | None
    environment: Environment
    settings: RankSettings
    measure: MeasureSettings
    timed_s: float
    wall_s: float
    stop_reason: str
    reference: Candidate | None = None
    race: RaceResult | None = None
    quality: ModelQuality | None = None

    @property
    def winner(self) -> Candidate | None:
        """The race's winner (fewest params among the designs tied with the fastest); without a race, #1."""
        if self.race is not None:
            return self.race.winner.candidate
        return self.candidates[0] if self.candidates else None

    @property
    def ties(self) -> tuple[Candidate, ...]:
        """The designs the race could not separate from its leader (the winner among them)."""
        return tuple(e.candidate for e in self.race.ties) if self.race else ()

    def __repr__(self) -> str:
        best = f", winner {self.winner.throughput:,.1f} samples/s" if self.winner else ""
        return f"<RankResult {self.problem!r}: {len(self.candidates)} measured{best}>"

    def text(self) -> str:
        from ..report import ranked_text

        return ranked_text(self)

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        settings["results_dir"] = str(self.results_path.parent)
        settings["storage"] = self.storage
        return {
            "problem": self.problem,
            "study": self.study_name,
            "storage": self.storage,
            "count": len(self.candidates),
            "candidates": [c.to_dict() for c in self.candidates],
            "winner": self.winner.to_dict() if self.winner else None,
            "pareto": [c.to_dict() for c in self.pareto],
            "failed": [{"trial": f.trial, "choices": list(f.keys), "reason": f.reason} for f in self.failed],
            "spearman": self.spearman,
            "model_quality": self.quality.to_dict() if self.quality else None,
            "reference": self.reference.to_dict() if self.reference else None,
            "race": self.race.to_dict() if self.race else None,
            "ratio": self.race.winner.ratio if self.race else None,
            "interval": [self.race.winner.low, self.race.winner.high] if self.race else None,
            "ties": [c.to_dict() for c in self.ties],
            "run": asdict(self.run),
            "stop_reason": self.stop_reason,
            "timed_s": self.timed_s,
            "wall_s": self.wall_s,
            "environment": self.environment.to_dict(),
            "rank_settings": settings,
            "measure_settings": self.measure.to_dict(),
            "plot": str(self.plot_path) if self.plot_path else None,
        }


@dataclass
class Tally:
    """What this run has done so far: the running side of :class:`RunCounts`."""

    measured: int = 0
    repeats: int = 0
    invalid: int = 0
    failed: int = 0
    deferred: int = 0
    contested: int = 0
    dropped: int = 0
    step_timings: int = 0
    step_timings_reused: int = 0
    asks: int = 0
    timed_s: float = 0.0
    enqueued: set[Keys] = field(default_factory=set)
    mine: set[int] = field(default_factory=set)  # trial numbers this run measured

    def counts(self, reused: int) -> RunCounts:
        """The frozen result, field by field by name; ``reused`` comes from the ranking, not the tally."""
        return RunCounts(
            reused=reused, **{f.name: getattr(self, f.name) for f in fields(RunCounts) if f.name != "reused"}
        )

"""The ranker's values: its settings, its progress events, the measured candidates and the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..console import PIPE_WIDTH, render
from ..display import Shown
from ..errors import InputError, Issue
from ..notation import RECIPE, Trajectory, design_text
from ..table import Column, Table, plural
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


def ranked_table(result: RankResult, problem: Trajectory | None = None) -> Table:
    """The measured designs, fastest first: throughput with its flag, time with its IQR, params, MACs, recipe."""
    rows = tuple(
        (
            str(c.rank),
            f"{c.throughput:,.1f}" + (" ?" if c.flagged else ""),
            f"{c.median_s * 1e3:.3f} ± {c.iqr_s * 1e3:.3f}",
            f"{c.design.params.total:,}",
            f"{c.design.macs:,}",
            design_text(c.design, problem),
        )
        for c in result.candidates
    )
    env = result.environment
    title = (
        f"measured on {env.device_name} ({result.measure.dtype}, batch {result.measure.batch_size}, "
        f"{result.measure.mode}); samples/s, '?' = spread too wide after re-measuring"
    )
    columns = (
        Column("#", "right"),
        Column("samples/s", "right"),
        Column("ms ± IQR", "right"),
        Column("params", "right"),
        Column("MACs", "right"),
        RECIPE,
    )
    return Table(columns, rows, title=title)


def race_table(result: RankResult, problem: Trajectory | None = None) -> Table | None:
    """The final race: each finalist's speed as a ratio to the reference, with its interval; the verdict below."""
    race = result.race
    if race is None:
        return None
    rows = []
    for e in race.entries:
        marks = [m for m, on in (("reference", e.is_reference), ("tie", e.tie and not e.is_reference)) if on]
        rows.append(
            (
                str(e.candidate.rank),
                f"{e.ratio:.2f}×",
                f"{e.low:.2f}–{e.high:.2f}",
                ", ".join(marks),
                design_text(e.candidate.design, problem),
            )
        )
    columns = (
        Column("#", "right"),
        Column("× reference", "right"),
        Column(f"{race.confidence:.0%} interval", "right"),
        Column(""),
        RECIPE,
    )
    title = f"final race: {plural(len(rows), 'finalist')} re-timed in turns, {race.winner.rounds} rounds"
    return Table(columns, tuple(rows), title=title, notes=(race.verdict(),))


def ranked_warnings(result: RankResult) -> list[str]:
    """What goes above the ranked table: the machine was too noisy to separate the finalists."""
    warning = result.race.warning() if result.race else None
    return [f"warning: {warning}"] if warning else []


def ranked_lines(result: RankResult, problem: Trajectory | None = None) -> list[str]:
    """What follows the ranked table: the winner, this run's counts, the model, where the files are."""
    lines = []
    if result.winner:
        lines.append(
            f"winner: #{result.winner.rank} at {result.winner.throughput:,.1f} samples/s — "
            f"{design_text(result.winner.design, problem)}"
        )
    run = result.run
    extra = [
        f"{count} {what}"
        for count, what in (
            (run.repeats, "repeated proposals answered from the study"),
            (run.invalid, "invalid skipped"),
            (run.failed, "failed"),
            (run.deferred + run.contested, "left to other workers"),
        )
        if count
    ]
    lines.append(
        f"this run: {run.measured} measured, {run.reused} reused from the study" + "".join(f", {e}" for e in extra)
    )
    quality = result.quality
    if quality is not None and quality.within_10pct is not None:
        rho = "n/a" if quality.spearman is None else f"{quality.spearman:.2f}"
        lines.append(
            f"latency model (sum of step timings): {quality.within_10pct:.0%} of {plural(quality.designs, 'design')} "
            f"predicted within ±10 %, Spearman {rho}"
        )
    for failed in result.failed:
        lines.append(f"failed: {' | '.join(failed.keys)}: {failed.reason}")
    lines.append(f"study {result.study_name!r} in {result.storage}")
    lines.append(f"results: {result.results_path}")
    if result.plot_path:
        lines.append(f"Pareto front (throughput vs params, peak memory): {result.plot_path}")
    return lines


def ranked_text(result: RankResult, problem: Trajectory | None = None, width: int = PIPE_WIDTH) -> str:
    """The ranking as plain text: the table, then the winner, the run's counts and where the files are."""
    race = race_table(result, problem)
    tables = [render(ranked_table(result, problem), width), *([render(race, width)] if race else [])]
    return "\n".join([*ranked_warnings(result), *tables, *ranked_lines(result, problem)])

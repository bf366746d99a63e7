"""The ranker's values: its settings, its progress events, the measured candidates and the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..core.console import PIPE_WIDTH, render
from ..core.display import Shown
from ..core.table import Column, Table, plural
from ..design.notation import RECIPE, Trajectory, design_text
from .candidate import Candidate, FailedCandidate, Keys
from .measure import Environment
from .settings import MeasureSettings, RankSettings
from .verdict import ModelQuality, RaceResult

if TYPE_CHECKING:
    from . import Candidate

__all__ = ["Candidate", "FailedCandidate", "Keys", "RankProgress", "RankResult", "RunCounts", "Tally"]


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
    ``model_s``, ``screen_s``, ``race_s``: wall seconds of the phases (step
    timings, screening the designs, the final race).
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
    model_s: float = 0.0
    screen_s: float = 0.0
    race_s: float = 0.0


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
        """The race's winner: the reference unless a finalist beats it beyond its interval; without a race, #1."""
        if self.race is not None:
            return self.race.winner.candidate
        return self.candidates[0] if self.candidates else None

    @property
    def ties(self) -> tuple[Candidate, ...]:
        """The designs the race could not separate from its leader (the winner among them)."""
        return tuple(e.candidate for e in self.race.ties) if self.race else ()

    def __repr__(self) -> str:
        # The headline is the race's, as everywhere else; screening figures only when there was no race.
        if self.race is not None:
            w = self.race.winner
            best = (
                f", keep the reference (race, {self.race.confidence:.0%})"
                if self.race.keep_reference
                else f", winner #{w.candidate.rank} at {w.ratio:.2f}× the reference ({w.low:.2f}–{w.high:.2f})"
            )
        elif self.winner is not None:
            best = f", winner {self.winner.throughput:,.1f} samples/s (screening)"
        else:
            best = ""
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
            "keep_reference": self.race.keep_reference if self.race else None,
            "verdict": self.race.verdict() if self.race else None,
            "ties": [c.to_dict() for c in self.ties],
            "run": asdict(self.run),
            "phases": {"step_timings_s": self.run.model_s, "screening_s": self.run.screen_s, "race_s": self.run.race_s},
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
    model_s: float = 0.0
    screen_s: float = 0.0
    race_s: float = 0.0
    timed_s: float = 0.0
    enqueued: set[Keys] = field(default_factory=set)
    mine: set[int] = field(default_factory=set)  # trial numbers this run measured

    def counts(self, reused: int) -> RunCounts:
        """The frozen result, field by field by name; ``reused`` comes from the ranking, not the tally."""
        return RunCounts(
            reused=reused, **{f.name: getattr(self, f.name) for f in fields(RunCounts) if f.name != "reused"}
        )


def ranked_table(result: RankResult, problem: Trajectory | None = None) -> Table:
    """The measured designs in their final places: the race's ratio and interval first, then the screening.

    After a race the rows are the race's order (the winner, the other
    finalists by ratio, the rest by screening); without one, by screening
    throughput.  The verdict is the table's note.
    """
    race = result.race
    env = result.environment
    screening = (
        f"screening: each design timed alone on {env.device_name} ({result.measure.dtype}, batch "
        f"{result.measure.batch_size}, {result.measure.mode}), samples/s, '?' = IQR over max_spread "
        "of the median (screening samples are taken once, never re-measured)"
    )
    screened = (Column("screening samples/s", "right"), Column("ms ± IQR", "right"))
    costs = (Column("params", "right"), Column("MACs", "right"), RECIPE)
    if race is None:
        rows = tuple((str(c.rank), *_screening(c), *_costs(c, problem)) for c in result.candidates)
        return Table((Column("#", "right"), *screened, *costs), rows, title=f"{screening} (no final race)")
    pct = f"{race.confidence:.0%}"
    raced = []
    for c in result.candidates:
        figures = c.raced
        ratio = f"{figures.ratio:.2f}×" if figures else ""
        interval = f"{figures.low:.2f}–{figures.high:.2f}" if figures and not figures.reference else ""
        # The screening time and its IQR stay in the JSON: the race's figures need the width here.
        raced.append((str(c.rank), ratio, interval, _marks(result, c), _screening(c)[0], *_costs(c, problem)))
    columns = (
        Column("#", "right"),
        Column("× reference", "right"),
        Column(f"{pct} interval", "right"),
        Column(""),
        screened[0],
        *costs,
    )
    title = (
        f"final race: {plural(len(race.entries), 'finalist')} re-timed in turns with the reference, "
        f"{race.winner.rounds} rounds (× reference: speed over the reference's); {screening}"
    )
    return Table(columns, tuple(raced), title=title, notes=(race.verdict(),))


def _screening(c: Candidate) -> tuple[str, str]:
    return f"{c.throughput:,.1f}" + (" ?" if c.flagged else ""), f"{c.median_s * 1e3:.3f} ± {c.iqr_s * 1e3:.3f}"


def _costs(c: Candidate, problem: Trajectory | None) -> tuple[str, str, str]:
    return f"{c.design.params.total:,}", f"{c.design.macs:,}", design_text(c.design, problem)


def _marks(result: RankResult, c: Candidate) -> str:
    """winner / keep (the reference when it stays) / reference / tie: what the race made of a row."""
    race = result.race
    figures = c.raced
    if race is None or figures is None:
        return ""
    won = race.winner.candidate.keys == c.keys
    words = [
        word
        for word, on in (
            ("keep" if figures.reference else "winner", won),
            ("reference", figures.reference),
            ("tie", figures.tie and not won and not figures.reference),
        )
        if on
    ]
    return ", ".join(words)


def headline(result: RankResult, problem: Trajectory | None = None) -> str | None:
    """The ``winner:`` line: the race's figures (or the advice to keep the reference); screening without a race."""
    winner = result.winner
    if winner is None:
        return None
    recipe = design_text(winner.design, problem)
    race = result.race
    if race is None:
        return f"winner: #{winner.rank} at {winner.throughput:,.1f} samples/s (screening, no final race) — {recipe}"
    pct = f"{race.confidence:.0%}"
    if race.keep_reference:
        return f"winner: keep the reference #{winner.rank} — {recipe}: no finalist beats it beyond its {pct} interval"
    w, ref = race.winner, race.reference
    figures, base = w.candidate.raced, ref.candidate.raced
    speeds = f"; {figures.throughput:,.1f} vs {base.throughput:,.1f} samples/s" if figures and base else ""
    return (
        f"winner: #{winner.rank} at {w.ratio:.2f}× the reference's speed in the final race "
        f"({pct} interval {w.low:.2f}–{w.high:.2f}{speeds}) — {recipe}"
    )


def ranked_warnings(result: RankResult) -> list[str]:
    """What goes above the ranked table: the machine was too noisy to separate the finalists."""
    warning = result.race.warning() if result.race else None
    return [f"warning: {warning}"] if warning else []


def ranked_lines(result: RankResult, problem: Trajectory | None = None) -> list[str]:
    """What follows the ranked table: the winner, this run's counts, the model, where the files are."""
    lines = []
    if (line := headline(result, problem)) is not None:
        lines.append(line)
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
    lines += model_lines(result)
    for failed in result.failed:
        lines.append(f"failed: {' | '.join(failed.keys)}: {failed.reason}")
    lines.append(f"study {result.study_name!r} in {result.storage}")
    lines.append(f"results: {result.results_path}")
    if result.plot_path:
        lines.append(f"Pareto front (throughput vs params, peak memory): {result.plot_path}")
    return lines


def ranked_text(result: RankResult, problem: Trajectory | None = None, width: int = PIPE_WIDTH) -> str:
    """The ranking as plain text: the table, then the winner, the run's counts and where the files are."""
    table = render(ranked_table(result, problem), width)
    return "\n".join([*ranked_warnings(result), table, *ranked_lines(result, problem)])


def model_lines(result: RankResult) -> list[str]:
    """The latency model's held-out quality (and a caveat when it does not rank), and the phase times."""
    lines = []
    quality = result.quality
    if quality is not None and quality.held_out_within_10pct is not None:
        rho = "n/a" if quality.held_out_spearman is None else f"{quality.held_out_spearman:.2f}"
        lines.append(
            f"latency model ({quality.form}, calibrated on the measured designs re-timed interleaved): held out, "
            f"{quality.held_out_within_10pct:.0%} of {plural(quality.held_out_designs, 'design')} predicted within "
            f"±10 %, Spearman {rho}"
        )
        if quality.ranks is False:
            lines.append(
                "latency model: does not rank these designs (held-out Spearman below 0.5): "
                "designs were spread over the space instead of taken from its predictions"
            )
    elif quality is not None and quality.within_10pct is not None:
        rho = "n/a" if quality.spearman is None else f"{quality.spearman:.2f}"
        lines.append(
            f"latency model (sum of step timings): {quality.within_10pct:.0%} of {plural(quality.designs, 'design')} "
            f"predicted within ±10 %, Spearman {rho} (too few designs to hold any out)"
        )
    run = result.run
    if run.model_s or run.screen_s or run.race_s:
        lines.append(
            f"phases: step timings {run.model_s:.1f} s, screening {run.screen_s:.1f} s, race {run.race_s:.1f} s"
        )
    return lines

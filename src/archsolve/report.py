"""Tables, text and JSON forms of solver and ranking results (values only; the CLI prints them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .console import PIPE_WIDTH, render
from .notation import STEP_SEPARATOR, Trajectory, design_text
from .table import Column, Table, plural

if TYPE_CHECKING:
    from .rank import RankResult
    from .solve import Solution

SHORT = {
    "kernel": "k",
    "stride": "s",
    "padding": "p",
    "output_padding": "op",
    "dilation": "d",
    "scale": "×",
    "factor": "r",
}
DEFAULTS = {"output_padding": 0, "dilation": 1, "ceil_mode": False, "padding": 0}


def solution_json(solution: Solution) -> dict[str, Any]:
    """``archsolve solve --no-rank --json`` (docs/json.md): nothing measured, the best by objective wins."""
    candidates = [c.design.to_dict(None) for c in solution.candidates]
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "folded": solution.folded,
        "candidates": candidates,
        "winner": candidates[0] if candidates else None,
        "reference": reference_json(solution),
    }


def reference_json(solution: Solution) -> dict[str, Any] | None:
    """The problem's reference design (``reference = "…"``) with its recipe line, or None without one."""
    reference = solution.reference
    if reference is None:
        return None
    return {"recipe": design_text(reference.design, solution.problem), **reference.design.to_dict(None)}


def reference_line(solution: Solution) -> str | None:
    """``reference: conv_transpose k4 s1 | 4× conv_transpose k4 s2 p1 (3,578,624 params, … MACs)``."""
    reference = solution.reference
    if reference is None:
        return None
    text = design_text(reference.design, solution.problem)
    return f"reference: {text} ({reference.params:,} params, {reference.macs:,} MACs)"


def ranked_json(solution: Solution, result: RankResult) -> dict[str, Any]:
    """``archsolve solve --json`` after ranking: measured designs best first, the race against the reference."""
    full = result.to_dict()
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "folded": solution.folded,
        "candidates": [c.to_dict() for c in result.candidates],
        "winner": result.winner.to_dict() if result.winner else None,
        "study": result.study_name,
        "results": str(result.results_path),
        "spearman": result.spearman,
        "failed": [{"choices": list(f.keys), "reason": f.reason} for f in result.failed],
    } | {key: full[key] for key in ("reference", "ratio", "interval", "ties", "race", "model_quality")}


def solution_table(solution: Solution) -> Table:
    """``solve --no-rank``: the count, then the best designs by the objective."""
    rows = tuple(
        (str(i), f"{c.params:,}", f"{c.macs:,}", design_text(c.design, solution.problem))
        for i, c in enumerate(solution.candidates, 1)
    )
    return Table(
        (Column("#", "right"), Column("params", "right"), Column("MACs", "right"), RECIPE),
        rows,
        title=f"best {len(rows)} by {_order(solution.problem.objective)}:",
    )


def _order(objective: str) -> str:
    # Without measurements the listing cannot be by latency; the ranker orders by predicted time.
    return "params (latency is predicted and measured when ranking)" if objective == "latency" else objective


def count_line(solution: Solution) -> str:
    """``dcgan-generator: 6,710 valid designs (10,570 functional duplicates folded; solved in 0.52 s)``."""
    folded = f"{plural(solution.folded, 'functional duplicate')} folded; " if solution.folded else ""
    return (
        f"{solution.problem.name}: {plural(solution.count, 'valid design')} "
        f"({folded}solved in {solution.seconds:.2f} s)"
    )


RECIPE = Column("recipe", separator=STEP_SEPARATOR)


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


def solution_text(solution: Solution, width: int = PIPE_WIDTH) -> str:
    """``solve --no-rank`` as plain text: the count line, then the table of the best designs."""
    return "\n".join([count_line(solution), render(solution_table(solution), width)])


def ranked_text(result: RankResult, problem: Trajectory | None = None, width: int = PIPE_WIDTH) -> str:
    """The ranking as plain text: the table, then the winner, the run's counts and where the files are."""
    race = race_table(result, problem)
    tables = [render(ranked_table(result, problem), width), *([render(race, width)] if race else [])]
    return "\n".join([*ranked_warnings(result), *tables, *ranked_lines(result, problem)])

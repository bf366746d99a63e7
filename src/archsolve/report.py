"""Tables, text and JSON forms of solver and ranking results (values only; the CLI prints them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .console import PIPE_WIDTH, render
from .notation import STEP_SEPARATOR, Trajectory, design_text
from .table import Column, Table, plural

if TYPE_CHECKING:
    from .rank import Candidate, RankResult
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
    candidates = [c.design.to_dict(None) | {"variants": len(c.variants)} for c in solution.candidates]
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "count_is_lower_bound": solution.count_is_lower_bound,
        "folded": solution.folded,
        "expanded": solution.expanded,
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


# The run-level keys of the ranked JSON that RankResult.to_dict already holds (docs/json.md).
RANKED_KEYS = ("reference", "ratio", "interval", "keep_reference", "verdict", "ties", "race", "model_quality", "phases")


def ranked_json(solution: Solution, result: RankResult) -> dict[str, Any]:
    """``archsolve solve --json`` after ranking: measured designs best first, the race against the reference."""
    full = result.to_dict()
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "count_is_lower_bound": solution.count_is_lower_bound,
        "folded": solution.folded,
        "candidates": [c.to_dict() for c in result.candidates],
        "winner": result.winner.to_dict() if result.winner else None,
        "study": result.study_name,
        "results": str(result.results_path),
        "spearman": result.spearman,
        "failed": [{"choices": list(f.keys), "reason": f.reason} for f in result.failed],
    } | {key: full[key] for key in RANKED_KEYS}


def solution_table(solution: Solution) -> Table:
    """``solve --no-rank``: the count, then the best designs by the objective; unless expanded, distinct
    ideas with the count of designs one step apart folded under each (``+N``)."""
    folded = not solution.expanded and any(c.variants for c in solution.candidates)
    rows = tuple(
        (
            str(i),
            f"{c.params:,}",
            f"{c.macs:,}",
            *((f"+{len(c.variants):,}" if c.variants else "",) if folded else ()),
            design_text(c.design, solution.problem),
        )
        for i, c in enumerate(solution.candidates, 1)
    )
    order = _order(solution.problem.objective)
    title = f"best {len(rows)} by {order}:"
    if folded:
        title = (
            f"best {len(rows)} ideas by {order}; +N: designs one step apart folded under the row (--expand lists them):"
        )
    columns = (Column("#", "right"), Column("params", "right"), Column("MACs", "right"))
    return Table((*columns, *((Column("+", "right"),) if folded else ()), RECIPE), rows, title=title)


def _order(objective: str) -> str:
    # Without measurements the listing cannot be by latency; the ranker orders by predicted time.
    return "params (latency is predicted and measured when ranking)" if objective == "latency" else objective


def count_line(solution: Solution) -> str:
    """``dcgan-generator: 6,710 valid designs (10,570 functional duplicates folded; solved in 0.52 s)``."""
    folded = f"{plural(solution.folded, 'functional duplicate')} folded; " if solution.folded else ""
    # A count the time limit stopped is a lower bound, and says so.
    at_least = "at least " if solution.count_is_lower_bound else ""
    return (
        f"{solution.problem.name}: {at_least}{plural(solution.count, 'valid design')} "
        f"({folded}solved in {solution.seconds:.2f} s)"
    )


RECIPE = Column("recipe", separator=STEP_SEPARATOR)


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
        f"{result.measure.batch_size}, {result.measure.mode}), samples/s, '?' = spread too wide after re-measuring"
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


def solution_text(solution: Solution, width: int = PIPE_WIDTH) -> str:
    """``solve --no-rank`` as plain text: the count line, then the table of the best designs."""
    return "\n".join([count_line(solution), render(solution_table(solution), width)])


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
            f"latency model ({quality.form}, calibrated on the measured designs): held out, "
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

"""Text and JSON forms of solver results (strings and dicts only; the CLI prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .notation import design_text

if TYPE_CHECKING:
    from .rank import RankResult
    from .solve import Solution


def solution_json(solution: Solution) -> dict[str, Any]:
    """``archsolve solve --no-rank --json`` (design.md contract): nothing measured, the best by objective wins."""
    candidates = [c.design.to_dict(None) for c in solution.candidates]
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "candidates": candidates,
        "winner": candidates[0] if candidates else None,
    }


def ranked_json(solution: Solution, result: RankResult) -> dict[str, Any]:
    """``archsolve solve --json`` after ranking: measured designs best first, with their throughput."""
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "candidates": [c.to_dict() for c in result.candidates],
        "winner": result.winner.to_dict() if result.winner else None,
        "study": result.study_name,
        "results": str(result.results_path),
        "spearman": result.spearman,
        "failed": [{"choices": list(f.keys), "reason": f.reason} for f in result.failed],
    }


def ranked_text(result: RankResult) -> str:
    """The ranked table, the winner and where the study and results live."""
    rows = [
        (
            str(c.rank),
            f"{c.throughput:,.1f}" + (" ?" if c.flagged else ""),
            f"{c.median_s * 1e3:.3f} ± {c.iqr_s * 1e3:.3f}",
            f"{c.design.params.total:,}",
            f"{c.design.macs:,}",
            design_text(c.design),
        )
        for c in result.candidates
    ]
    env = result.environment
    lines = [
        f"measured on {env.device_name} ({result.measure.dtype}, batch {result.measure.batch_size}, "
        f"{result.measure.mode}); samples/s, '?' = spread too wide after re-measuring",
        table(("#", "samples/s", "ms (median ± IQR)", "params", "MACs", "recipe"), rows, right=(0, 1, 2, 3, 4)),
    ]
    if result.winner:
        lines.append(
            f"winner: #{result.winner.rank} at {result.winner.throughput:,.1f} samples/s — "
            f"{design_text(result.winner.design)}"
        )
    run = result.run
    lines.append(
        f"this run: {run.measured} measured, {run.reused} reused from the study, {run.invalid} invalid "
        f"skipped, {run.failed} failed"
    )
    if result.spearman is not None:
        lines.append(f"latency model: Spearman rank correlation predicted vs measured = {result.spearman:.2f}")
    for failed in result.failed:
        lines.append(f"failed: {' | '.join(failed.keys)}: {failed.reason}")
    lines.append(f"study {result.study_name!r} in {result.storage}; results {result.results_path}")
    if result.plot_path:
        lines.append(f"Pareto front (throughput vs params, peak memory): {result.plot_path}")
    return "\n".join(lines)


def solution_rows(solution: Solution) -> list[tuple[str, ...]]:
    """Rows for the human table: rank, params, MACs, recipe per step."""
    return [
        (str(i + 1), f"{c.params:,}", f"{c.macs:,}", design_text(c.design, solution.problem))
        for i, c in enumerate(solution.candidates)
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A plain aligned text table (no dependency, so light commands stay light)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            out.append(str(cell).rjust(width) if i in right else str(cell).ljust(width))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])

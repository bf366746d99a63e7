"""The command line's forms of results: the solution and ranking text (each result's own), and the JSON
``solve`` prints after ranking, which needs both the solution and the ranking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .rank.values import race_table, ranked_lines, ranked_table, ranked_text, ranked_warnings
from .solve.choices import count_line, reference_json, reference_line, solution_json, solution_table, solution_text

if TYPE_CHECKING:
    from .rank import RankResult
    from .solve import Solution

__all__ = [
    "count_line",
    "race_table",
    "ranked_json",
    "ranked_lines",
    "ranked_table",
    "ranked_text",
    "ranked_warnings",
    "reference_json",
    "reference_line",
    "solution_json",
    "solution_table",
    "solution_text",
]


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

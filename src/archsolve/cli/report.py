"""Tables, text and JSON forms of solver and ranking results (values only; the CLI prints them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..design.notation import RECIPE
from ..rank.values import headline, model_lines, ranked_lines, ranked_table, ranked_text, ranked_warnings
from ..solve.choices import count_line, reference_json, reference_line, solution_json, solution_table, solution_text

if TYPE_CHECKING:
    from ..rank import RankResult
    from ..solve import Solution

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


__all__ = [
    "DEFAULTS",
    "RANKED_KEYS",
    "RECIPE",
    "SHORT",
    "count_line",
    "headline",
    "model_lines",
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

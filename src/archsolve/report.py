"""Text and JSON forms of solver results (strings and dicts only; the CLI prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .design import Design
from .layer import Layer
from .solver import Solution

SHORT = {"kernel": "k", "stride": "s", "padding": "p", "output_padding": "op", "dilation": "d", "scale": "×",
         "factor": "r"}
DEFAULTS = {"output_padding": 0, "dilation": 1, "ceil_mode": False, "padding": 0}
NORMS = ("batch_norm", "instance_norm", "group_norm")


def recipe_text(layer: Layer) -> str:
    """``conv_transpose k4 s2 p1`` (fields at their defaults left out)."""
    parts = [layer.op]
    for name, value in layer.recipe().items():
        if DEFAULTS.get(name) == value:
            continue
        if name == "ceil_mode":
            parts.append("ceil")
            continue
        shown = "x".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{SHORT.get(name, name)}{shown}")
    return " ".join(parts)


def design_text(design: Design) -> str:
    """One line per design: the steps' op recipes, norms left out."""
    steps = []
    for step in design.steps:
        steps.append(" + ".join(recipe_text(layer) for layer in step.layers if layer.op not in NORMS))
    return " | ".join(steps)


def shape_text(shape: Sequence[int]) -> str:
    return f"{shape[0]}×" + "x".join(map(str, shape[1:]))


def solution_json(solution: Solution, throughputs: Sequence[float | None] | None = None,
                  winner: int = 0) -> dict[str, Any]:
    """``archsolve solve --json`` (design.md contract)."""
    rates = list(throughputs) if throughputs is not None else [None] * len(solution.candidates)
    candidates = [c.design.to_dict(rate) for c, rate in zip(solution.candidates, rates, strict=True)]
    return {
        "problem": solution.problem.name,
        "count": solution.count,
        "candidates": candidates,
        "winner": candidates[winner] if candidates else None,
    }


def solution_rows(solution: Solution) -> list[tuple[str, ...]]:
    """Rows for the human table: rank, params, MACs, recipe per step."""
    return [
        (str(i + 1), f"{c.params:,}", f"{c.macs:,}", design_text(c.design))
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

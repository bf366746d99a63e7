"""``pareto.html``: the measured designs as a plotly figure, and the Pareto front as a table below it.

One self-contained file (plotly.js is embedded: the page opens with no
network).  The figure plots throughput against parameters, and against peak
memory where it was measured (CUDA).  Each point carries its IQR as an error
bar (the interquartile range of the per-batch times, mapped to samples/s);
noisy measurements (spread still too wide after re-measuring) are drawn hollow;
the Pareto front is joined by a line; the reference design and the designs the
final race could not separate from the winner are marked.  Hovering a point
shows its compact recipe (:mod:`archsolve.notation`).

plotly is imported only here, when a page is written.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .notation import Trajectory, design_text

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

    from .rank import Candidate, RankResult

#: Spread (max / min) beyond which an axis is drawn on a log scale.
LOG_SPREAD = 20.0
FRONT_COLOUR = "#d62728"
OTHER_COLOUR = "#7f7f7f"
REFERENCE_COLOUR = "#1f77b4"
TIE_COLOUR = "#ff7f0e"


@dataclass(frozen=True)
class Marks:
    """What the page marks besides the front: the reference design and the race's ties (trial numbers)."""

    reference: int | None = None
    ties: frozenset[int] = frozenset()

    @classmethod
    def of(cls, result: RankResult) -> Marks:
        """The reference and ties ``result`` carries (a ranking without a final race carries none)."""
        reference = getattr(result, "reference", None)  # set by rankers that measure a reference
        ties = getattr(result, "ties", ())
        return cls(
            getattr(reference, "trial", None),
            frozenset(getattr(c, "trial", c) for c in ties),
        )


def interval(candidate: Candidate) -> tuple[float, float]:
    """Throughput at the IQR's two ends: batch / (median ± IQR/2), as samples/s (low, high)."""
    median, half = candidate.median_s, candidate.iqr_s / 2
    if not (math.isfinite(median) and math.isfinite(half)) or median <= 0:
        return candidate.throughput, candidate.throughput
    low = candidate.throughput * median / (median + half)
    high = candidate.throughput * median / (median - half) if half < median else math.inf
    return low, high


def log_axis(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and len(positive) == len(values) and max(positive) / min(positive) > LOG_SPREAD


def _hover(candidate: Candidate, problem: Trajectory | None) -> str:
    low, high = interval(candidate)
    noisy = "<br><i>noisy: spread too wide after re-measuring</i>" if candidate.flagged else ""
    memory = (
        f"<br>peak memory {candidate.peak_memory_bytes / 2**20:,.1f} MB"
        if candidate.peak_memory_bytes is not None
        else ""
    )
    return (
        f"<b>#{candidate.rank}</b> (trial {candidate.trial})<br>{html.escape(design_text(candidate.design, problem))}"
        f"<br>{candidate.throughput:,.1f} samples/s (IQR {low:,.1f} – {high:,.1f})"
        f"<br>{candidate.design.params.total:,} params, {candidate.design.macs:,} MACs{memory}{noisy}"
    )


def pareto_figure(result: RankResult, marks: Marks | None = None, problem: Trajectory | None = None) -> Figure:
    """The figure: one panel per cost (parameters; peak memory where measured), samples/s upwards."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    marks = marks or Marks.of(result)
    cands = list(result.candidates)
    front = {c.trial for c in result.pareto}
    memory = [c for c in cands if c.peak_memory_bytes is not None]
    costs: list[tuple[str, Any]] = [("parameters", lambda c: c.design.params.total)]
    if memory:
        costs.append(("peak memory (MB)", lambda c: c.peak_memory_bytes / 2**20))
    figure = make_subplots(rows=1, cols=len(costs), shared_yaxes=True, horizontal_spacing=0.06)
    groups = [
        ("measured designs", [c for c in cands if c.trial not in front], OTHER_COLOUR),
        (
            "Pareto front",
            sorted((c for c in cands if c.trial in front), key=lambda c: c.design.params.total),
            FRONT_COLOUR,
        ),
    ]
    for col, (label, cost) in enumerate(costs, 1):
        for name, members, colour in groups:
            shown = [c for c in members if label == "parameters" or c.peak_memory_bytes is not None]
            if not shown:
                continue
            bounds = [interval(c) for c in shown]
            figure.add_trace(
                go.Scatter(
                    x=[cost(c) for c in shown],
                    y=[c.throughput for c in shown],
                    mode="lines+markers" if name == "Pareto front" and label == "parameters" else "markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": colour, "width": 1.5},
                    marker={
                        "color": colour,
                        "size": 10 if name == "Pareto front" else 8,
                        "symbol": ["circle-open" if c.flagged else "circle" for c in shown],
                        "line": {"width": 2, "color": colour},
                    },
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [
                            min(high, 10 * c.throughput) - c.throughput
                            for c, (_, high) in zip(shown, bounds, strict=True)
                        ],
                        "arrayminus": [c.throughput - low for c, (low, _) in zip(shown, bounds, strict=True)],
                        "color": colour,
                        "thickness": 1,
                        "width": 3,
                    },
                    text=[_hover(c, problem) for c in shown],
                    hovertemplate="%{text}<extra></extra>",
                    customdata=[c.trial for c in shown],
                ),
                row=1,
                col=col,
            )
        for name, trials, symbol, colour, size in (
            ("reference", {marks.reference} - {None}, "star", REFERENCE_COLOUR, 18),
            ("tie with the winner (final race)", marks.ties, "diamond-open", TIE_COLOUR, 20),
        ):
            chosen = [
                c for c in cands if c.trial in trials and (label == "parameters" or c.peak_memory_bytes is not None)
            ]
            if not chosen:
                continue
            figure.add_trace(
                go.Scatter(
                    x=[cost(c) for c in chosen],
                    y=[c.throughput for c in chosen],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    marker={"symbol": symbol, "size": size, "color": colour, "line": {"width": 2, "color": colour}},
                    text=[_hover(c, problem) for c in chosen],
                    hovertemplate="%{text}<extra></extra>",
                    customdata=[c.trial for c in chosen],
                ),
                row=1,
                col=col,
            )
        values = [float(cost(c)) for c in (cands if label == "parameters" else memory)]
        figure.update_xaxes(
            title_text=label + (" (log scale)" if log_axis(values) else ""),
            type="log" if log_axis(values) else "linear",
            showgrid=True,
            ticks="outside",
            row=1,
            col=col,
        )
    throughputs = [c.throughput for c in cands]
    figure.update_yaxes(
        title_text="samples/s (median; bars: IQR)" + (" (log scale)" if log_axis(throughputs) else ""),
        type="log" if log_axis(throughputs) else "linear",
        showgrid=True,
        ticks="outside",
        rangemode="tozero" if not log_axis(throughputs) else "normal",
        row=1,
        col=1,
    )
    env, measure = result.environment, result.measure
    figure.update_layout(
        title={
            "text": f"{html.escape(result.problem)}: throughput against cost — {len(cands)} measured designs"
            f"<br><sup>{html.escape(env.device_name)}, {measure.dtype}, batch {measure.batch_size}, {measure.mode};"
            " hollow: noisy measurement</sup>"
        },
        template="plotly_white",
        height=560,
        legend={"orientation": "h", "yanchor": "bottom", "y": -0.25, "x": 0},
        hoverlabel={"align": "left"},
        margin={"t": 90},
    )
    return figure


@functools.cache
def _plotly_js() -> str:
    """plotly.js, read once per process: every page embeds it so that it opens offline."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def front_rows(result: RankResult, marks: Marks, problem: Trajectory | None = None) -> list[list[str]]:
    """The table under the figure: the front's designs, fewest parameters first."""
    memory = any(c.peak_memory_bytes is not None for c in result.pareto)
    rows = []
    for c in result.pareto:
        low, high = interval(c)
        notes = [
            word
            for word, on in (
                ("reference", c.trial == marks.reference),
                ("tie", c.trial in marks.ties),
                ("noisy", c.flagged),
            )
            if on
        ]
        row = [
            str(c.rank),
            design_text(c.design, problem),
            f"{c.throughput:,.1f}",
            f"{low:,.1f} – {high:,.1f}",
            f"{c.median_s * 1e3:.3f}",
            f"{c.design.params.total:,}",
            f"{c.design.macs:,}",
        ]
        if memory:
            row.append("" if c.peak_memory_bytes is None else f"{c.peak_memory_bytes / 2**20:,.1f}")
        rows.append([*row, ", ".join(notes)])
    return rows


def pareto_html(result: RankResult, marks: Marks | None = None, problem: Trajectory | None = None) -> str:
    """The whole page: the figure (plotly.js embedded) and the front as a table."""
    import plotly.io as pio

    marks = marks or Marks.of(result)
    figure = pio.to_html(
        pareto_figure(result, marks, problem), include_plotlyjs=False, full_html=False, div_id="pareto"
    )
    header = ["#", "recipe", "samples/s", "IQR (samples/s)", "ms / batch", "params", "MACs"]
    memory = any(c.peak_memory_bytes is not None for c in result.pareto)
    if memory:
        header.append("peak memory (MB)")
    header.append("")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"recipe" if i == 1 else "n"}">{html.escape(v)}</td>' for i, v in enumerate(row))
        + "</tr>"
        for row in front_rows(result, marks, problem)
    )
    title = html.escape(f"{result.problem}: Pareto front")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script type="text/javascript">{_plotly_js()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-top: 1em; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; }}
th {{ text-align: left; background: #f4f4f4; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.recipe {{ font-family: ui-monospace, monospace; font-size: 13px; max-width: 60em; }}
</style></head><body>
{figure}
<h2>Pareto front: {len(result.pareto)} of {len(result.candidates)} measured designs</h2>
<p>No other measured design is both faster and smaller{" (or lighter on memory)" if memory else ""}.
IQR: the interquartile range of the per-batch times, as samples/s.</p>
<table><tr>{head}</tr>
{body}</table>
</body></html>
"""

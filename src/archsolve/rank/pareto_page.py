"""``pareto.html``: the measured designs as a plotly figure, and the Pareto front as a table below it.

One self-contained file (plotly.js is embedded: the page opens with no
network).  The figure plots throughput against parameters, and against peak
memory where it was measured (CUDA).  Each point carries its IQR as an error
bar (the interquartile range of the per-batch times, mapped to samples/s);
noisy screening measurements (IQR over ``max_spread`` of the median; screening
takes its samples once, it does not re-measure) are ringed;
the Pareto front is joined by a line; the reference design, the race's winner
and the designs the final race could not separate from its leader are marked.
Hovering a point shows its compact recipe (:mod:`archsolve.design.notation`) and,
for a finalist, its race figures.

The points are the *screening* figures (each design timed alone, at its own
moment); the headline above the figure is the final race's: its verdict and
every finalist's speed as a ratio to the reference with its interval, the
same figures as the ``winner:`` line and the JSON.

plotly is imported only here, when a page is written.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..design.notation import Trajectory, design_text

if TYPE_CHECKING:
    from plotly.graph_objects import Figure, Scatter

    from . import Candidate, RankResult

#: Spread (max / min) beyond which an axis is drawn on a log scale.
LOG_SPREAD = 20.0
FRONT_COLOUR = "#d62728"
OTHER_COLOUR = "#7f7f7f"
REFERENCE_COLOUR = "#1f77b4"
WINNER_COLOUR = "#2ca02c"
TIE_COLOUR = "#ff7f0e"
NOISY_COLOUR = "#222222"


@dataclass(frozen=True)
class Marks:
    """What the page marks besides the front: the reference design and the race's ties (trial numbers)."""

    reference: int | None = None
    ties: frozenset[int] = frozenset()
    winner: int | None = None

    @classmethod
    def of(cls, result: RankResult) -> Marks:
        """The reference, the race's ties and its winner in ``result`` (none without a reference or a race)."""
        reference = result.reference.trial if result.reference is not None else None
        winner = result.winner.trial if result.race is not None and result.winner is not None else None
        return cls(reference, frozenset(c.trial for c in result.ties), winner)


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
    noisy = "<br><i>noisy: screening spread over max_spread</i>" if candidate.flagged else ""
    memory = (
        f"<br>peak memory {candidate.peak_memory_bytes / 2**20:,.1f} MB"
        if candidate.peak_memory_bytes is not None
        else ""
    )
    raced = candidate.raced
    race = (
        f"<br>final race: {raced.ratio:.2f}× the reference (interval {raced.low:.2f}–{raced.high:.2f})"
        if raced is not None and not raced.reference
        else ""
    )
    return (
        f"<b>#{candidate.rank}</b> (trial {candidate.trial})<br>{html.escape(design_text(candidate.design, problem))}"
        f"{race}<br>screening: {candidate.throughput:,.1f} samples/s (IQR {low:,.1f} – {high:,.1f})"
        f"<br>{candidate.design.params.total:,} params, {candidate.design.macs:,} MACs{memory}{noisy}"
    )


def pareto_figure(result: RankResult, marks: Marks | None = None, problem: Trajectory | None = None) -> Figure:
    """The figure: one panel per cost (parameters; peak memory where measured), samples/s upwards."""
    from plotly.subplots import make_subplots

    marks = marks or Marks.of(result)
    cands = list(result.candidates)
    front = {c.trial for c in result.pareto}
    costs: list[tuple[str, Callable[[Candidate], float]]] = [("parameters", lambda c: c.design.params.total)]
    if any(c.peak_memory_bytes is not None for c in cands):
        costs.append(("peak memory (MB)", lambda c: (c.peak_memory_bytes or 0) / 2**20))
    figure = make_subplots(rows=1, cols=len(costs), shared_yaxes=True, horizontal_spacing=0.06)
    layers = (
        # name, members, marker symbol, colour, size, error bars
        ("measured designs", [c for c in cands if c.trial not in front], "circle", OTHER_COLOUR, 8, True),
        (
            "Pareto front",
            sorted((c for c in cands if c.trial in front), key=lambda c: c.design.params.total),
            "circle",
            FRONT_COLOUR,
            10,
            True,
        ),
        ("noisy: spread too wide", [c for c in cands if c.flagged], "circle-open", NOISY_COLOUR, 16, False),
        ("reference", [c for c in cands if c.trial == marks.reference], "star", REFERENCE_COLOUR, 18, False),
        (
            "winner (final race)",
            [c for c in cands if c.trial == marks.winner and c.trial != marks.reference],
            "star-open",
            WINNER_COLOUR,
            22,
            False,
        ),
        (
            "tie with the winner (final race)",
            [c for c in cands if c.trial in marks.ties],
            "diamond-open",
            TIE_COLOUR,
            20,
            False,
        ),
    )
    for col, (label, cost) in enumerate(costs, 1):
        for name, members, symbol, colour, size, bars in layers:
            shown = [c for c in members if col == 1 or c.peak_memory_bytes is not None]
            if shown:
                trace = _trace(name, shown, cost, symbol, colour, size, bars, problem)
                trace.update(
                    showlegend=col == 1, mode="lines+markers" if name == "Pareto front" and col == 1 else "markers"
                )
                figure.add_trace(trace, row=1, col=col)
        values = [float(cost(c)) for c in cands if col == 1 or c.peak_memory_bytes is not None]
        figure.update_xaxes(_axis(label, values), row=1, col=col)
    screening = "samples/s, screening: each design alone (median; bars: IQR)"
    figure.update_yaxes(_axis(screening, [c.throughput for c in cands]), row=1, col=1)
    env, measure = result.environment, result.measure
    figure.update_layout(
        title={
            "text": f"{html.escape(result.problem)}: throughput against cost — {len(cands)} measured designs"
            f"<br><sup>{html.escape(env.device_name)}, {measure.dtype}, batch {measure.batch_size}, {measure.mode}"
            "</sup>"
        },
        template="plotly_white",
        height=560,
        legend={"orientation": "h", "yanchor": "bottom", "y": -0.25, "x": 0},
        hoverlabel={"align": "left"},
        margin={"t": 90},
    )
    return figure


def _trace(
    name: str,
    shown: Sequence[Candidate],
    cost: Callable[[Candidate], float],
    symbol: str,
    colour: str,
    size: int,
    bars: bool,
    problem: Trajectory | None,
) -> Scatter:
    """One layer of points, hover text the compact recipe, IQR error bars where ``bars``."""
    import plotly.graph_objects as go

    error: dict[str, Any] = {"visible": False}
    if bars:
        bounds = [interval(c) for c in shown]
        error = {
            "type": "data",
            "symmetric": False,
            # A spread wider than the median has no upper end in samples/s: capped at ten times the median.
            "array": [min(high, 10 * c.throughput) - c.throughput for c, (_, high) in zip(shown, bounds, strict=True)],
            "arrayminus": [c.throughput - low for c, (low, _) in zip(shown, bounds, strict=True)],
            "color": colour,
            "thickness": 1,
            "width": 3,
        }
    return go.Scatter(
        x=[cost(c) for c in shown],
        y=[c.throughput for c in shown],
        name=name,
        legendgroup=name,
        line={"color": colour, "width": 1.5},
        marker={"symbol": symbol, "size": size, "color": colour, "line": {"width": 2, "color": colour}},
        error_y=error,
        text=[_hover(c, problem) for c in shown],
        hovertemplate="%{text}<extra></extra>",
        customdata=[c.trial for c in shown],
    )


def _axis(title: str, values: Sequence[float]) -> dict[str, Any]:
    """A real axis: gridlines, outside ticks, log scale where the values spread over more than :data:`LOG_SPREAD`."""
    log = log_axis(values)
    return {
        "title_text": title + (" (log scale)" if log else ""),
        "type": "log" if log else "linear",
        "showgrid": True,
        "ticks": "outside",
        "rangemode": "normal" if log else "tozero",
    }


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


def race_rows(result: RankResult, problem: Trajectory | None = None) -> list[list[str]]:
    """The finalists in the race's order: place, recipe, ratio to the reference, interval, marks."""
    race = result.race
    if race is None:
        return []
    rows = []
    for e in race.entries:
        won = e is race.winner or e.candidate.keys == race.winner.candidate.keys
        marks = [
            word
            for word, on in (
                ("keep" if e.is_reference else "winner", won),
                ("reference", e.is_reference),
                ("tie", e.tie and not won and not e.is_reference),
                ("beats the reference", e.beats),
            )
            if on
        ]
        interval = "" if e.is_reference else f"{e.low:.2f}–{e.high:.2f}"
        rows.append(
            [
                str(e.candidate.rank),
                design_text(e.candidate.design, problem),
                f"{e.ratio:.2f}×",
                interval,
                ", ".join(marks),
            ]
        )
    return rows


def race_section(result: RankResult, problem: Trajectory | None = None) -> str:
    """The headline: the race's verdict and its table (empty without a race)."""
    race = result.race
    if race is None:
        return "<p>No final race: the figures below are the screening (each design timed alone).</p>"
    header = ["#", "recipe", "× reference", f"{race.confidence:.0%} interval", "marks"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"recipe" if i == 1 else "n"}">{html.escape(v)}</td>' for i, v in enumerate(row))
        + "</tr>"
        for row in race_rows(result, problem)
    )
    warning = race.warning()
    return (
        f'<h2>Final race</h2>\n<p class="verdict"><b>{html.escape(race.verdict())}</b></p>\n'
        + (f"<p>warning: {html.escape(warning)}</p>\n" if warning else "")
        + f"<p>{len(race.entries)} finalists re-timed in turns with the reference, {race.winner.rounds} rounds; "
        "× reference: the reference's median time over the design's (above 1: faster).</p>\n"
        f'<table class="race"><tr>{head}</tr>\n{body}</table>'
    )


def pareto_html(result: RankResult, marks: Marks | None = None, problem: Trajectory | None = None) -> str:
    """The whole page: the figure (plotly.js embedded) and the front as a table."""
    import plotly.io as pio

    marks = marks or Marks.of(result)
    figure = pio.to_html(
        pareto_figure(result, marks, problem), include_plotlyjs=False, full_html=False, div_id="pareto"
    )
    header = ["#", "recipe", "screening samples/s", "IQR (samples/s)", "ms / batch", "params", "MACs"]
    memory = any(c.peak_memory_bytes is not None for c in result.pareto)
    if memory:
        header.append("peak memory (MB)")
    header.append("marks")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"recipe" if i == 1 else "n"}">{html.escape(v)}</td>' for i, v in enumerate(row))
        + "</tr>"
        for row in front_rows(result, marks, problem)
    )
    title = html.escape(f"{result.problem}: Pareto front")
    race = race_section(result, problem)
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
{race}
{figure}
<h2>Pareto front: {len(result.pareto)} of {len(result.candidates)} measured designs</h2>
<p>No other measured design is both faster and smaller{" (or lighter on memory)" if memory else ""}.
IQR: the interquartile range of the per-batch times, as samples/s.</p>
<table><tr>{head}</tr>
{body}</table>
</body></html>
"""

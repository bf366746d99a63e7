"""pareto.html: the figure's data (points, IQR error bars, noisy, reference, ties, axes) and a self-contained page."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from archsolve.design.notation import design_text
from archsolve.rank import RankResult, rank
from archsolve.rank.pareto_page import Marks, pareto_figure, pareto_html
from helpers.rank_fakes import CountingMeasurer, settings, tiny_space


@pytest.fixture(scope="module")
def ranked(tmp_path_factory: pytest.TempPathFactory) -> RankResult:
    """A real ranking of the tiny space on the fake clock, then given spreads, flags and memory we choose."""
    tmp_path = tmp_path_factory.mktemp("pareto")
    result = rank(tiny_space(), settings(tmp_path, trials=8), measurer=CountingMeasurer())
    batch = result.measure.batch_size
    edited = []
    for i, c in enumerate(result.candidates):
        median = 0.01 * (i + 1)
        edited.append(
            replace(
                c,
                median_s=median,
                iqr_s=median * 0.2,
                throughput=batch / median,
                flagged=i == 2,
                peak_memory_bytes=(i + 1) * 2**20,
            )
        )
    return replace(result, candidates=tuple(edited), pareto=tuple(edited[:3]))


def traces(figure: Any, name: str) -> list[Any]:
    return [t for t in figure.data if t.name == name]


def test_points_and_iqr_error_bars_come_from_the_measurements(ranked: RankResult) -> None:
    figure = pareto_figure(ranked, Marks())
    batch = ranked.measure.batch_size
    front, *more = traces(figure, "Pareto front")
    members = sorted(ranked.pareto, key=lambda c: c.design.params.total)
    assert list(front.x) == [c.design.params.total for c in members]
    assert list(front.y) == pytest.approx([c.throughput for c in members])
    for c, up, down in zip(members, front.error_y.array, front.error_y.arrayminus, strict=True):
        # The per-batch times' quartiles, median ± IQR/2, as samples/s.
        assert c.throughput + up == pytest.approx(batch / (c.median_s - c.iqr_s / 2))
        assert c.throughput - down == pytest.approx(batch / (c.median_s + c.iqr_s / 2))
    others = traces(figure, "measured designs")[0]
    assert len(others.x) == len(ranked.candidates) - len(ranked.pareto)
    # The memory panel holds the same points against peak memory (MB).
    assert more and list(more[0].x) == pytest.approx([c.peak_memory_bytes / 2**20 for c in members])


def test_noisy_points_are_ringed(ranked: RankResult) -> None:
    rings = traces(pareto_figure(ranked, Marks()), "noisy: spread too wide")
    flagged = [c for c in ranked.candidates if c.flagged]
    assert flagged and len(rings) == 2  # both panels: parameters and peak memory
    assert list(rings[0].customdata) == [c.trial for c in flagged]
    assert rings[0].marker.symbol == "circle-open"


def test_reference_and_ties_are_marked(ranked: RankResult) -> None:
    reference, tied = ranked.candidates[4], ranked.candidates[1]
    figure = pareto_figure(ranked, Marks(reference.trial, frozenset({tied.trial})))
    marked = traces(figure, "reference")[0]
    assert list(marked.x) == [reference.design.params.total] and list(marked.y) == [reference.throughput]
    assert marked.marker.symbol == "star"
    ties = traces(figure, "tie with the winner (final race)")[0]
    assert list(ties.customdata) == [tied.trial]
    assert not traces(pareto_figure(ranked, Marks()), "reference")


def test_hover_shows_the_compact_recipe_and_axes_are_real(ranked: RankResult) -> None:
    figure = pareto_figure(ranked, Marks())
    front = traces(figure, "Pareto front")[0]
    members = sorted(ranked.pareto, key=lambda c: c.design.params.total)
    for c, text in zip(members, front.text, strict=True):
        assert design_text(c.design).replace(">", "&gt;") in text
    spread = max(c.design.params.total for c in ranked.candidates) / min(
        c.design.params.total for c in ranked.candidates
    )
    assert figure.layout.xaxis.type == ("log" if spread > 20 else "linear")
    assert "parameters" in figure.layout.xaxis.title.text
    assert figure.layout.yaxis.title.text.startswith("samples/s")


def test_the_page_is_self_contained_with_the_front_as_a_table(ranked: RankResult, tmp_path: Path) -> None:
    page = pareto_html(ranked, Marks(ranked.candidates[0].trial))
    assert "<script src" not in page  # nothing fetched: no CDN, no network
    assert len(page) > 1_000_000  # plotly.js itself is inside
    assert "Plotly.newPlot" in page
    table = page.split("<table>")[1]
    assert table.count("<tr>") == 1 + len(ranked.pareto)
    assert "peak memory (MB)" in table and "reference" in table and "noisy" in table


def test_written_by_the_ranker(ranked: RankResult) -> None:
    assert ranked.plot_path is not None
    assert "Plotly.newPlot" in ranked.plot_path.read_text()


def test_marks_come_from_the_ranking(ranked: RankResult) -> None:
    assert ranked.reference is not None  # without one given, the space's best design serves
    marks = Marks.of(ranked)
    assert marks.reference == ranked.reference.trial
    assert marks.ties == frozenset(c.trial for c in ranked.ties)

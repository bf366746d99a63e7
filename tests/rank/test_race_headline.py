"""One headline, from the race: the table, the ``winner:`` line, ``--json``, results.json and pareto.html agree.

Every figure checked here is recomputed from the race's own samples (stored
in the study) with ``statistics``, never read back from the code under test:
the ratio is median(reference) / median(design).  The fake clocks of
test_rank make the outcome known in advance: one gives every module the same
time (a full tie: the advice must be to keep the reference), the default one
makes the slowest design of the tiny space a reference every finalist beats.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import archsolve
from archsolve.cli.report import ranked_json
from archsolve.rank import rank
from archsolve.rank.values import ranked_table, ranked_text
from archsolve.rank.verdict import decide
from archsolve.solve import SolutionSpace
from helpers.rank_fakes import CountingMeasurer, FakeTimer, candidates, journal, settings, tiny_space, true_throughputs


@pytest.fixture(autouse=True)
def keep_threads() -> Any:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class SameTimer(FakeTimer):
    """Every module takes the same 0.1 ms: nothing can beat anything."""

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
        run()
        return 1e-4 * iterations


def race_samples(tmp_path: Path) -> list[list[float]]:
    (samples,) = [v["samples"] for k, v in journal(tmp_path).user_attrs.items() if k.startswith("race:")]
    return [list(map(float, s)) for s in samples]


def test_a_full_tie_says_keep_the_reference_everywhere(tmp_path: Path) -> None:
    space = tiny_space()
    truth = true_throughputs(space)
    fastest = max(truth, key=lambda k: truth[k])
    result = rank(space, settings(tmp_path, trials=4), reference=fastest, measurer=CountingMeasurer(SameTimer()))
    race = result.race
    assert race is not None and race.keep_reference and race.noisy
    assert result.winner is not None and result.winner.keys == fastest and result.winner.rank == 1
    text = ranked_text(result)
    assert "keep the reference (race, 95%)" in repr(result)
    assert "winner: keep the reference #1 — " in text and "no finalist beats it beyond its 95% interval" in text
    assert ranked_table(result).notes[0].startswith("keep the reference #1: no finalist runs faster")
    saved = json.loads(result.results_path.read_text())
    assert saved["keep_reference"] is True and saved["verdict"] == race.verdict()
    assert saved["winner"]["choices"] == list(fastest) and saved["winner"]["race"]["reference"] is True
    assert all(not c["race"]["beats_reference"] for c in saved["candidates"] if c["race"])
    assert result.plot_path is not None
    page = result.plot_path.read_text()
    assert "keep the reference #1" in page and "winner: keep" not in page


def test_the_table_winner_line_json_and_page_report_the_race_figures(tmp_path: Path) -> None:
    problem = archsolve.Problem.create(
        name="tiny-decoder",
        sizes=[4, 8, 16],
        channels=[8, 4, 2],
        ops="conv_transpose",
        search={"kernel": [2, 4], "stride": 2, "padding": [0, 1]},
    )
    solution = archsolve.solve(problem)
    space = SolutionSpace(solution)
    # The slowest design on the fake clock as the reference: every finalist beats it, noise-free.
    options = space.step_options()
    designs = {(a, b): space.design([i, j]) for i, a in enumerate(options[0]) for j, b in enumerate(options[1])}
    from archsolve.build.modules import build
    from helpers.rank_fakes import fake_cost

    cost = {k: fake_cost(build(d)) for k, d in designs.items() if d is not None}
    slowest = max(cost, key=lambda k: cost[k])
    result = rank(space, settings(tmp_path, trials=4), reference=slowest, measurer=CountingMeasurer())
    race = result.race
    assert race is not None and not race.keep_reference and result.winner is not None
    samples = race_samples(tmp_path)
    medians = sorted(statistics.median(s) for s in samples)
    reference_median = statistics.median(samples[-1])  # the reference is raced last
    assert reference_median == medians[-1]  # the slowest
    ratio = reference_median / medians[0]
    w = race.winner
    assert w.ratio == pytest.approx(ratio) and w.low > 1 and w.beats
    assert f"winner #1 at {ratio:.2f}× the reference" in repr(result)  # the repr's headline is the race's too
    # The winner is #1, and every place after it follows the race, then the screening.
    assert result.candidates[0].keys == result.winner.keys and result.winner.rank == 1
    finalists = [c for c in result.candidates if c.raced is not None]
    assert [c.rank for c in finalists] == list(range(1, len(finalists) + 1))
    assert [c.raced.ratio for c in finalists[1:]] == sorted((c.raced.ratio for c in finalists[1:]), reverse=True)
    assert all(c.screening_rank is not None for c in result.candidates)
    # The winner line: the race's ratio and interval, not the screening samples/s.
    line = next(line for line in ranked_text(result).splitlines() if line.startswith("winner: "))
    assert line.startswith(f"winner: #1 at {ratio:.2f}× the reference's speed in the final race (95% interval ")
    assert f"{w.low:.2f}–{w.high:.2f}" in line
    table = ranked_table(result)
    assert table.rows[0][1] == f"{ratio:.2f}×" and "winner" in table.rows[0][3]
    # --json, results.json and pareto.html: the same figures.
    for data in (ranked_json(solution, result), json.loads(result.results_path.read_text())):
        assert data["winner"]["race"]["ratio"] == pytest.approx(ratio) == data["ratio"]
        assert data["interval"] == pytest.approx([w.low, w.high]) == data["winner"]["race"]["interval"]
        assert data["keep_reference"] is False and data["verdict"] == race.verdict()
        assert data["candidates"][0]["choices"] == list(result.winner.keys)
        assert data["winner"]["screening_rank"] >= 1
    assert result.plot_path is not None
    page = result.plot_path.read_text()
    assert race.verdict().replace("—", "—") in page.replace("&#x27;", "'")
    assert f"{ratio:.2f}×" in page and "screening" in page


def test_a_tied_design_that_does_not_beat_the_reference_cannot_win_on_params() -> None:
    found = candidates(tiny_space(), 3)  # params ascending: found[0] has the fewest
    # found[1] is clearly faster than the reference (10 %, tight); found[0] ties with it but also with the reference.
    samples = [
        [0.6 + 0.8 * ((7 * r) % 15) / 14 for r in range(15)],  # median 1.0, spread ±40 %
        [0.909 + 0.001 * (r % 3) for r in range(15)],
        [1.0 + 0.001 * (r % 3) for r in range(15)],
    ]
    race = decide(found, samples, reference=2)
    ratios = [statistics.median(samples[2]) / statistics.median(s) for s in samples]
    assert race.entries[0].candidate is found[1] and race.entries[0].ratio == pytest.approx(ratios[1])
    zero = next(e for e in race.entries if e.candidate is found[0])
    assert zero.tie and not zero.beats  # ties with the leader, but not faster than the reference beyond noise
    assert race.winner.candidate is found[1] and not race.keep_reference
    assert "is the only one of them faster than the reference beyond noise" in race.verdict()


def test_nothing_beyond_the_interval_keeps_the_reference_even_against_fewer_params() -> None:
    found = candidates(tiny_space(), 2)
    samples = [[1.0 * (0.7 + 0.6 * (r % 2)) for r in range(15)], [1.0 + 0.001 * (r % 3) for r in range(15)]]
    race = decide(found, samples, reference=1)
    assert race.keep_reference and race.winner.candidate is found[1]
    assert race.verdict().startswith("keep the reference #2: no finalist runs faster beyond its 95% interval")

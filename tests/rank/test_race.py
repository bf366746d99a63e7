"""The final race: ratios to the reference with bootstrap intervals, ties to the fewer params, the noise warning.

``decide`` is checked on hand-made samples (the expected ratios are the
definition, median(reference) / median(design), computed here with
``statistics``); ``rank`` on a fake clock: noise-free, every finalist is
separated and the fastest wins; with heavy noise everything ties and the
output says so first; the reference is measured whatever the budget.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from archsolve.rank import rank
from archsolve.rank.values import ranked_table, ranked_warnings
from archsolve.rank.verdict import decide
from helpers.rank_fakes import (
    CountingMeasurer,
    FakeTimer,
    candidates,
    fake_cost,
    journal,
    settings,
    tiny_space,
    true_throughputs,
)

pytestmark = pytest.mark.filterwarnings("error::FutureWarning", "error::DeprecationWarning")


@pytest.fixture(autouse=True)
def keep_threads() -> Any:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_separated_designs_have_their_ratio_and_no_tie() -> None:
    finalists = candidates(tiny_space(), 3)
    rng = random.Random(1)
    samples = [[base * (1 + 0.01 * rng.random()) for _ in range(15)] for base in (1.0, 2.0, 4.0)]
    race = decide(finalists, samples, reference=2)
    medians = [statistics.median(s) for s in samples]
    assert race.winner.candidate is finalists[0]
    assert race.winner.ratio == pytest.approx(medians[2] / medians[0])
    assert race.winner.low <= race.winner.ratio <= race.winner.high
    assert race.winner.low > 3.9 and race.winner.high < 4.1
    assert [e.candidate for e in race.ties] == [finalists[0]]
    assert race.reference.candidate is finalists[2] and race.reference.ratio == 1.0
    assert not race.noisy and race.warning() is None
    assert "no other finalist ties" in race.verdict()


def test_overlapping_intervals_tie_and_the_tie_goes_to_fewer_params() -> None:
    finalists = candidates(tiny_space(), 3)
    rng = random.Random(2)
    # #2 (more params) is a little faster than #1, well within the noise; the reference is 3x slower.
    samples = [
        [1.00 * (1 + 0.3 * rng.random()) for _ in range(15)],
        [0.97 * (1 + 0.3 * rng.random()) for _ in range(15)],
        [3.00 * (1 + 0.01 * rng.random()) for _ in range(15)],
    ]
    race = decide(finalists, samples, reference=2)
    assert {e.candidate.rank for e in race.ties} == {1, 2}
    assert race.winner.candidate is finalists[0]  # fewer params than #2
    assert race.verdict().endswith("#1 and #2 tie within noise; #1 has fewer params")
    assert not race.noisy  # the reference is clearly slower: the race did separate something


def test_when_noise_separates_nothing_the_output_says_so_first(tmp_path: Path) -> None:
    class NoisyTimer(FakeTimer):
        """The fake clock times a factor between 0.2 and 1.8, drawn anew for every sample."""

        def __init__(self) -> None:
            super().__init__()
            self.rng = random.Random(0)

        def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
            run()
            return fake_cost(module) * iterations * (0.2 + 1.6 * self.rng.random())

    space = tiny_space()
    truth = true_throughputs(space)
    # The reference and the finalists within a few percent of each other: only noise can tell them apart.
    close = sorted(truth, key=lambda k: -truth[k])[:4]
    result = rank(
        space, settings(tmp_path, trials=4), reference=close[3], measurer=CountingMeasurer(timer=NoisyTimer())
    )
    assert result.race is not None and result.race.noisy
    warning = ranked_warnings(result)
    assert warning and warning[0].startswith("warning: noise separates nothing")
    table = ranked_table(result)
    assert any("tie within noise" in line for line in table.notes)
    assert result.race.keep_reference and table.notes[0].startswith("keep the reference")
    assert result.to_dict()["race"]["noisy"] is True


def test_the_reference_is_always_measured_and_a_second_run_reuses_the_race(tmp_path: Path) -> None:
    space = tiny_space()
    truth = true_throughputs(space)
    slowest = min(truth, key=lambda k: truth[k])
    first = rank(space, settings(tmp_path, trials=3), measurer=CountingMeasurer())
    assert slowest not in {c.keys for c in first.candidates}
    # The budget is already met; the reference is measured anyway, and raced.
    measurer = CountingMeasurer()
    second = rank(space, settings(tmp_path, trials=3), reference=slowest, measurer=measurer)
    assert measurer.designs == 1 and measurer.raced == [4]
    assert second.reference is not None and second.reference.keys == slowest
    assert second.race is not None and second.race.reference.candidate.keys == slowest
    sources = {t.user_attrs.get("source") for t in journal(tmp_path).get_trials() if "measurement" in t.user_attrs}
    assert "reference" in sources
    # Noise-free fake clock: the fastest design wins, clearly faster than the slowest reference.
    assert second.winner is not None and second.winner.throughput == pytest.approx(max(truth.values()))
    assert second.race.winner.low > 1 and len(second.race.ties) == 1
    saved = second.to_dict()
    assert saved["reference"]["choices"] == list(slowest)
    assert saved["ratio"] == pytest.approx(second.race.winner.ratio)
    assert saved["interval"][0] <= saved["ratio"] <= saved["interval"][1]
    assert [t["choices"] for t in saved["ties"]] == [list(second.winner.keys)]
    assert saved["model_quality"]["within_10pct"] is not None
    third_measurer = CountingMeasurer()
    third = rank(space, settings(tmp_path, trials=3), reference=slowest, measurer=third_measurer)
    assert (third_measurer.designs, third_measurer.steps, third_measurer.raced) == (0, 0, [])
    assert third.race is not None and third.race.reused
    assert third.race.winner.ratio == pytest.approx(second.race.winner.ratio)
    assert (third.run.measured, third.run.reused) == (0, 4)


def test_a_reference_outside_the_space_is_a_clear_error(tmp_path: Path) -> None:
    from archsolve.errors import InputError

    with pytest.raises(InputError, match="reference"):
        rank(tiny_space(), settings(tmp_path, trials=2), reference=("ct k2s2", "ct k2s2", "ct k2s2"))


# --- racing: a finalist that cannot catch the leader stops being timed ----------------------------------


def test_the_racing_rule_drops_the_clearly_slower_keeps_the_close_and_ends_with_the_leader_alone() -> None:
    from archsolve.rank.race import still_in

    rng = random.Random(3)
    leader = [1.0 + 0.01 * rng.random() for _ in range(6)]
    close = [1.0 + 0.01 * rng.random() for _ in range(6)]
    slow = [2.0 + 0.01 * rng.random() for _ in range(6)]
    reference = [3.0 + 0.01 * rng.random() for _ in range(6)]
    # The close one cannot be told from the leader: it stays, and so does the reference (others still race).
    assert still_in([leader, close, slow, reference], [True] * 4, reference=3, seed=0) == [True, True, False, True]
    # Only the leader left besides a clearly slower reference: the race is over.
    assert still_in([leader, slow, reference], [True, False, True], reference=2, seed=0) == [False, False, False]
    # The reference itself leads: everyone else clearly slower ends the race too.
    assert still_in([slow, leader], [True, True], reference=1, seed=0) == [False, False]


def test_interleaved_rounds_skip_dropped_items_and_stop_when_none_is_left() -> None:
    from archsolve.rank.measure import Measurer
    from archsolve.rank.settings import MeasureSettings

    fields = {"device": "cpu", "batch_size": 2, "warmup": 1, "repeats": 3, "min_sample_s": 0.0}
    measurer = Measurer(MeasureSettings(**fields), timer=FakeTimer())
    modules = [(torch.nn.Conv2d(3, c, 3), (3, 8, 8)) for c in (2, 4, 8)]
    asked: list[list[int]] = []

    def keep(samples: Any) -> list[bool]:
        asked.append([len(s) for s in samples])
        rounds = len(samples[0])
        return [rounds < 4, rounds < 2, rounds < 4]  # the second drops after round 2, the others after round 4

    results = measurer.interleaved(modules, rounds=10, keep=keep)
    counts = [len(r.samples_s) for r in results if not isinstance(r, Exception)]
    assert counts == [4, 2, 4]  # all dropped after round 4: the rounds end early
    assert asked[-1] == [4, 2, 4]


def test_a_noise_free_race_ends_at_its_minimum_rounds_and_reports_phase_times(tmp_path: Path) -> None:
    from archsolve.rank.race import min_rounds

    space = tiny_space()
    truth = true_throughputs(space)
    result = rank(space, settings(tmp_path, trials=6, race_rounds=15), measurer=CountingMeasurer())
    assert result.race is not None
    rounds = {e.rounds for e in result.race.entries}
    assert rounds == {min_rounds(15)} and min_rounds(15) < 15  # every finalist separated at the first check
    assert result.winner is not None and result.winner.throughput == pytest.approx(max(truth.values()))
    assert result.run.model_s > 0 and result.run.screen_s > 0 and result.run.race_s > 0
    assert result.to_dict()["run"]["race_s"] == result.run.race_s

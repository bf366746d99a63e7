"""The study optuna-dashboard opens is labelled: its metric is "samples/s", its trials carry readable attributes."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archsolve.design.notation import design_text, parse_design
from archsolve.rank import rank
from archsolve.rank.dashboard import METRIC, trial_labels
from helpers.rank_fakes import CountingMeasurer, load, settings, tiny_space


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_the_stored_study_names_its_metric_and_labels_each_measured_trial(tmp_path: Path) -> None:
    space = tiny_space()
    result = rank(space, settings(tmp_path, trials=5, storage=None), measurer=CountingMeasurer())
    # Read back through optuna's own API from the SQLite file, as the dashboard does.
    study = load(tmp_path)
    assert study.metric_names == ["samples/s"] == [METRIC]
    measured = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert measured
    by_trial = {c.trial: c for c in result.candidates}
    for trial in measured:
        if "reused_from" in trial.user_attrs:
            continue
        candidate = by_trial[trial.number]
        attrs = trial.user_attrs
        assert attrs["recipe"] == design_text(candidate.design)
        assert len(parse_design(attrs["recipe"])) == len(candidate.design.steps)
        assert attrs["params"] == candidate.design.params.total
        assert attrs["MACs"] == candidate.design.macs
        # The reference is queued first, so every later trial knows its ratio to it.
        assert result.reference is not None
        assert attrs["screening ratio to reference"] == pytest.approx(
            trial.value / result.reference.throughput, abs=1e-4
        )
    # A second run on the same study keeps the name (and does not fail on it).
    rank(space, settings(tmp_path, trials=6, storage=None), measurer=CountingMeasurer())
    assert load(tmp_path).metric_names == [METRIC]


def test_ratio_to_the_reference_when_there_is_one() -> None:
    design = next(d for d in (tiny_space().design(p) for p in [(0, 0, 2), (0, 2, 0), (2, 0, 0)]) if d is not None)
    assert "screening ratio to reference" not in trial_labels(design, 50.0)
    assert trial_labels(design, 50.0, 40.0)["screening ratio to reference"] == 1.25

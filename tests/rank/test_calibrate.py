"""Calibrating the latency model: it recovers a scale and an overhead, and its held-out figures are honest.

Synthetic designs with known true times (a linear function of their features
plus noise, or noise alone); the expected figures come from numpy and from
``scipy``-free definitions computed here, never from the module's own code.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from archsolve.rank.calibrate import STEP_SUM, choose, fit, forms, held_out


def designs(count: int, seed: int) -> list[dict[str, float]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a, b = rng.uniform(1e-3, 8e-3), rng.uniform(1e-3, 8e-3)
        rows.append(
            {
                "one": 1.0,
                "sum": a + b,
                "kind:conv": a,
                "kind:conv_transpose": b,
                "layers": float(rng.randint(3, 9)),
                "macs": rng.uniform(1e6, 1e8),
                "elements": rng.uniform(1e4, 1e6),
            }
        )
    return rows


def rank_correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson correlation of the ranks (numpy's argsort twice; no ties in continuous data)."""
    rx = np.argsort(np.argsort(xs))
    ry = np.argsort(np.argsort(ys))
    return float(np.corrcoef(rx, ry)[0, 1])


def test_a_scale_and_an_overhead_are_recovered_and_predict_held_out_designs() -> None:
    rows = designs(12, seed=1)
    rng = random.Random(2)
    times = [1.4 * r["sum"] + 0.003 for r in rows]  # the whole design: 40 % slower and 3 ms of overhead
    times = [t * (1 + 0.01 * rng.uniform(-1, 1)) for t in times]  # 1 % noise
    fitted = fit(forms(["conv"])[1], rows, times)
    assert fitted.form.name == "scaled step sum"
    constant, scale = fitted.coef
    assert scale == pytest.approx(1.4, rel=0.05) and constant == pytest.approx(0.003, rel=0.15)
    quality = held_out(forms(["conv", "conv_transpose"]), rows, times)
    assert quality.within_10pct == 1.0 and quality.spearman is not None and quality.spearman > 0.95
    assert quality.ranks is True
    # The plain step sum is off by 40 % or more on every design: none within ±10 %.
    assert all(abs(r["sum"] - t) > 0.1 * t for r, t in zip(rows, times, strict=True))


def test_a_per_kind_scale_is_chosen_when_one_kind_is_slower_than_timed_alone() -> None:
    rows = designs(14, seed=3)
    times = [r["kind:conv"] + 3.0 * r["kind:conv_transpose"] for r in rows]
    chosen = choose(forms(["conv", "conv_transpose"]), rows, times)
    assert chosen.form.name == "per-kind scales"
    predicted = [chosen.predict(r) for r in rows]
    assert np.allclose(predicted, times, rtol=0.05)  # the ridge pulls a little towards the plain sum
    raw = [r["sum"] for r in rows]
    quality = held_out(forms(["conv", "conv_transpose"]), rows, times)
    assert quality.spearman is not None and quality.spearman > rank_correlation(raw, times)


def test_times_unrelated_to_the_features_are_reported_as_not_ranking() -> None:
    rows = designs(12, seed=4)
    rng = random.Random(5)
    times = [rng.uniform(1e-3, 1e-2) for _ in rows]
    quality = held_out(forms(["conv", "conv_transpose"]), rows, times)
    assert quality.spearman is not None and quality.spearman < 0.5
    assert quality.ranks is False


def test_too_few_designs_give_no_held_out_figure_and_the_plain_step_sum() -> None:
    rows = designs(3, seed=6)
    times = [2 * r["sum"] for r in rows]
    quality = held_out(forms(["conv"]), rows, times)
    assert (quality.designs, quality.spearman, quality.within_10pct, quality.ranks) == (3, None, None, None)
    assert choose(forms(["conv"]), rows[:2], times[:2]).form is STEP_SUM


def test_the_held_out_prediction_never_sees_its_own_design() -> None:
    rows = designs(8, seed=7)
    times = [r["sum"] for r in rows]
    times[3] *= 5  # one outlier: predicted from the others, it must miss
    quality = held_out(forms(["conv"]), rows, times)
    assert quality.within_10pct is not None and quality.within_10pct <= 7 / 8


def test_held_out_groups_cover_every_design_once_and_stay_bounded() -> None:
    from archsolve.rank.calibrate import FOLDS, folds

    assert folds(5) == [[0], [1], [2], [3], [4]]  # leave-one-out
    groups = folds(100)
    assert len(groups) == FOLDS < 100
    assert sorted(i for g in groups for i in g) == list(range(100))


def test_on_noisy_times_the_scale_is_fitted_and_spare_columns_are_not_chosen() -> None:
    """Whole designs 1.3× their step sum with ±15 % screening noise: the plain step sum (its own level) is never
    chosen once a scale can be fitted, and the layer, MAC and traffic columns, which explain none of the time,
    are left out; the fit then predicts fresh designs of the same law within ±10 % where the noise allows."""
    for seed in range(5):
        rows = designs(12, seed=10 + seed)
        rng = random.Random(20 + seed)
        times = [1.3 * r["sum"] * (1 + 0.15 * rng.uniform(-1, 1)) for r in rows]
        chosen = choose(forms(["conv"]), rows, times)
        assert chosen.form.name == "scaled step sum"
        fresh = designs(50, seed=30 + seed)
        within = sum(abs(chosen.predict(r) - 1.3 * r["sum"]) <= 0.1 * 1.3 * r["sum"] for r in fresh) / len(fresh)
        assert within >= 0.8
        # the plain step sum is 30 % off every fresh design
        assert all(abs(r["sum"] - 1.3 * r["sum"]) > 0.1 * 1.3 * r["sum"] for r in fresh)

"""Calibrating the latency model on the designs measured so far, and judging it on designs it did not see.

The step sum (each step timed alone, summed) misses what a whole design adds
or hides: the per-layer dispatch overhead, caches shared between steps, the
merges it drops.  A small regression corrects it, fitted on the designs
measured so far (screening medians) over a few features of each design:

* ``sum``: the step sum itself; ``kind:<op>``: the step sum split by the op
  kind of each step's first layer (a per-kind scale);
* ``layers``: torch modules in the design (launch overhead per module);
* ``macs`` and ``elements``: multiply-accumulates and activation elements
  written (compute and memory traffic).

Each :class:`Form` is a least-squares fit of one subset of these plus a
constant, on relative error (a 1 ms and a 100 ms design count alike), with
a ridge pull towards the plain step sum so a handful of designs cannot
produce wild coefficients.  The form is the scaled step sum unless a richer
one cuts its leave-one-out error clearly (:func:`choose`); the plain step
sum only before a scale can be fitted.

**Held-out quality** is what the report gives: every measured design is
predicted by a model (form chosen and fitted) that never saw it (leave-one-out
up to ``FOLDS`` designs, k-fold beyond); Spearman's
rank correlation and the share within ±10 % of those predictions say whether
the model ranks.  numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .stats import spearman

#: Ridge strength towards the plain step sum, in units of one design's squared relative error.
RIDGE = 0.01
#: Held-out Spearman below this: the model does not rank, measurements are spread instead.
RANKS = 0.5
#: Fewest measured designs for a held-out figure (each fit sees one fewer).
FEWEST = 4
WITHIN = 0.10
#: A richer form is chosen over the scaled step sum only when it cuts the leave-one-out error by this share.
SIMPLER = 0.2
#: Leave-one-out up to this many designs; k-fold with this many folds beyond (bounded work per refit).
FOLDS = 12


@dataclass(frozen=True)
class Form:
    """One regression: a constant plus these features (none: the plain step sum, nothing fitted)."""

    name: str
    columns: tuple[str, ...]

    @property
    def fitted(self) -> bool:
        return bool(self.columns)


STEP_SUM = Form("step sum", ())


def forms(kinds: Sequence[str]) -> list[Form]:
    """The candidate regressions for a space whose steps start with ``kinds`` (per-kind only for several)."""
    out = [
        STEP_SUM,
        Form("scaled step sum", ("one", "sum")),
        Form("step sum + per-layer overhead", ("one", "sum", "layers")),
        Form("step sum + compute and traffic", ("one", "sum", "macs", "elements")),
    ]
    if len(kinds) > 1:
        out.append(Form("per-kind scales", ("one", *(f"kind:{k}" for k in sorted(kinds)))))
    return out


@dataclass(frozen=True)
class Fit:
    """A fitted form: coefficients per feature column."""

    form: Form
    coef: tuple[float, ...]

    def predict(self, features: Mapping[str, float]) -> float:
        if not self.form.fitted:
            return features["sum"]
        value = sum(c * features.get(name, 0.0) for c, name in zip(self.coef, self.form.columns, strict=True))
        return max(value, 1e-3 * features["sum"])  # a regression can dip below zero far from its data


def fit(form: Form, rows: Sequence[Mapping[str, float]], times: Sequence[float]) -> Fit:
    """Least squares on relative error, ridge-pulled towards ``time = step sum``."""
    if not form.fitted:
        return Fit(form, ())
    x = np.array([[row.get(c, 0.0) for c in form.columns] for row in rows], dtype=float)
    t = np.array(times, dtype=float)
    ratio = x / t[:, None]  # row i, column j: feature j in units of design i's time
    scale = np.median(np.abs(ratio), axis=0)
    scale[scale == 0] = 1.0
    z = ratio / scale
    prior = np.array([1.0 if c == "sum" or c.startswith("kind:") else 0.0 for c in form.columns]) * scale
    lhs = z.T @ z + RIDGE * len(t) * np.eye(len(form.columns))
    rhs = z.T @ np.ones(len(t)) + RIDGE * len(t) * prior
    coef = np.linalg.solve(lhs, rhs) / scale
    return Fit(form, tuple(float(c) for c in coef))


def folds(count: int) -> list[list[int]]:
    """Held-out groups: one design each (leave-one-out) up to ``FOLDS`` designs, else ``FOLDS`` interleaved groups."""
    k = min(count, FOLDS)
    return [list(range(f, count, k)) for f in range(k)]


def loo_error(form: Form, rows: Sequence[Mapping[str, float]], times: Sequence[float]) -> float:
    """Mean squared relative error of ``form`` predicting each design from the others (by :func:`folds`)."""
    errors = []
    for group in folds(len(rows)):
        out = set(group)
        fitted = fit(
            form, [r for j, r in enumerate(rows) if j not in out], [t for j, t in enumerate(times) if j not in out]
        )
        errors += [(fitted.predict(rows[i]) / times[i] - 1) ** 2 for i in group]
    return float(np.mean(errors))


def choose(candidates: Sequence[Form], rows: Sequence[Mapping[str, float]], times: Sequence[float]) -> Fit:
    """The scaled step sum, or a richer form whose leave-one-out error is clearly lower; fitted on all.

    The plain step sum is used only while too few designs are measured to fit
    a scale: its level is that of the step timings, which drifts from run to
    run (the whole designs are 0.7× to 1.3× it on the bundled problems), so a
    leave-one-out win on a dozen noisy screening times is luck.  A richer form
    must cut the scaled step sum's error by ``SIMPLER`` or more for the same
    reason: on so few, noisy times, extra columns mostly fit the noise.
    """
    usable = [f for f in candidates if f.fitted and len(rows) >= len(f.columns) + 2]
    if not usable:
        return fit(STEP_SUM, rows, times)
    errors = {f.name: loo_error(f, rows, times) for f in usable}
    simplest = min(usable, key=lambda f: len(f.columns))
    best = min(usable, key=lambda f: (errors[f.name], len(f.columns)))
    return fit(best if errors[best.name] < (1 - SIMPLER) * errors[simplest.name] else simplest, rows, times)


@dataclass(frozen=True)
class HeldOut:
    """How the calibrated model predicts designs it was not fitted on (leave-one-out over the measured)."""

    designs: int
    spearman: float | None
    within_10pct: float | None
    form: str

    @property
    def ranks(self) -> bool | None:
        """Whether the model ranks (held-out Spearman >= 0.5); None while too few designs are measured."""
        return None if self.spearman is None else self.spearman >= RANKS


def held_out(candidates: Sequence[Form], rows: Sequence[Mapping[str, float]], times: Sequence[float]) -> HeldOut:
    """Leave-one-out: each design predicted by a form chosen and fitted on the other designs alone."""
    whole = choose(candidates, rows, times).form.name
    if len(rows) < FEWEST:
        return HeldOut(len(rows), None, None, whole)
    predicted = [0.0] * len(rows)
    for group in folds(len(rows)):
        out = set(group)
        fitted = choose(
            candidates,
            [r for j, r in enumerate(rows) if j not in out],
            [t for j, t in enumerate(times) if j not in out],
        )
        for i in group:
            predicted[i] = fitted.predict(rows[i])
    within = sum(abs(p - t) <= WITHIN * t for p, t in zip(predicted, times, strict=True)) / len(rows)
    return HeldOut(len(rows), spearman(predicted, list(times)), within, whole)

"""The latency model: each distinct step timed once, a design's time predicted from its steps', then calibrated.

Before searching, each distinct step of the candidate pool (every valid
combination when the product of the options is at most ``pool_limit``; else
:class:`~archsolve.design.search_space.CandidateSource` or random samples) is timed once on
its own input shape.  Step timings are stored in the study's user attributes,
so a resumed run or another worker does not repeat them.

The raw prediction is the sum of a design's step timings.  Once designs are
measured, :mod:`.calibrate` fits a small regression on them (a scale and an
overhead, per kind or with layer, compute and traffic features) and judges
it on held-out designs; :attr:`LatencyModel.held_out` says whether it ranks.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import islice, product
from typing import TYPE_CHECKING

from ..design.design import Design, Step
from ..design.search_space import CandidateSource
from .calibrate import FEWEST, Fit, HeldOut, fit, forms, held_out
from .calibrate import STEP_SUM as STEP_SUM_FORM
from .identity import context_key, measure_key
from .part import Part, Run
from .settings import MeasureSettings
from .values import Keys

if TYPE_CHECKING:
    import optuna
    import torch

STEP_ATTR = "step_time:"
#: Interleaved re-timings of measured designs for the last calibration, by measurement key.
RETIME_ATTR = "retime:"


def build_module(design: Design) -> torch.nn.Module:
    """The torch module measured for ``design``: exactly what ``archsolve.build`` hands the user."""
    from ..build.modules import build

    return build(design)


def sample_shape(design: Design, settings: MeasureSettings) -> tuple[int, ...]:
    """One sample's input shape: ``in_shape``, with ``time_steps`` in front for sequence designs."""
    return (settings.time_steps, *design.in_shape) if design.sequence else design.in_shape


def alone(step: Step, design: Design) -> Design:
    """One step as a design of its own, for the latency model.

    A skip connection needs the earlier output it joins, so the merge is
    dropped: the model times the step's layers and activation, not the concat.
    """
    return Design(f"{design.name}/step", (replace(step, merge=None),), design.options, design.sequence)


def step_id(step: Step, design: Design) -> str:
    """A stable identity for a step's timing (its layers, activation and the sequence flag)."""
    text = f"{replace(step, merge=None)!r}|{design.sequence}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def design_features(design: Design, step_times: Mapping[str, float]) -> dict[str, float] | None:
    """The step sum (whole and per kind of each step's first layer), layers, MACs and elements written.

    ``layers`` counts torch modules that launch work (layers and their norms);
    ``elements`` the values the layers write per sample.  None when a step
    has no timing in ``step_times``.
    """
    times = [step_times.get(step_id(step, design)) for step in design.steps]
    if not all(t is not None for t in times):
        return None
    row = {"one": 1.0, "sum": 0.0, "layers": 0.0, "elements": 0.0, "macs": float(design.macs)}
    for step, seconds in zip(design.steps, times, strict=True):
        assert seconds is not None
        row["sum"] += seconds
        kind = f"kind:{step.layers[0].op}"
        row[kind] = row.get(kind, 0.0) + seconds
        row["layers"] += len(step.layers) + sum(layer.norm != "none" for layer in step.layers)
        row["elements"] += sum(math.prod(layer.out_shape) for layer in step.layers)
    return row


def calibrated(rows: Sequence[Mapping[str, float]], times: Sequence[float]) -> tuple[Fit, HeldOut]:
    """The calibration chosen and fitted on ``rows`` (features) and ``times``, and its held-out quality."""
    kinds = sorted({name.removeprefix("kind:") for row in rows for name in row if name.startswith("kind:")})
    candidates = forms(kinds)
    quality = held_out(candidates, rows, times)
    chosen = next(f for f in candidates if f.name == quality.form)
    return fit(chosen, rows, times), quality


class LatencyModel(Part):
    """Step timings (from the study or measured here) and the predictions they give."""

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.step_times: dict[str, float] = {}
        self.predicted: dict[Keys, float] = {}
        self.option_steps: dict[tuple[int, str], set[str]] = {}
        self.pool_complete = False
        self.calibration: Fit = fit(STEP_SUM_FORM, [], [])
        self.held_out = HeldOut(0, None, None, STEP_SUM_FORM.name)
        self._features: dict[Keys, dict[str, float]] = {}
        self._fitted_on: tuple[tuple[Keys, float], ...] = ()
        #: Seconds per batch of measured designs re-timed together (:meth:`recalibrate_interleaved`).
        self.retimed: dict[Keys, float] = {}

    def pool(self) -> list[Keys]:
        """Valid designs for the model and for exhaustion checks (every one when the space is small)."""
        sizes = self.choices.sizes
        limit = self.settings.pool_limit
        space = self.choices.space
        picks: Iterator[Sequence[int]]
        if math.prod(sizes) <= limit:
            picks = iter(product(*(range(n) for n in sizes)))
            self.pool_complete = True
        elif isinstance(space, CandidateSource):
            picks = islice(iter(space.candidates(limit)), limit)
        else:
            rng = random.Random(self.settings.seed)
            picks = iter([tuple(rng.randrange(n) for n in sizes) for _ in range(limit)])
        pool: list[Keys] = []
        seen: set[Keys] = set()
        for pick in picks:
            keys = self.choices.keys(pick)
            if keys in seen:
                continue
            seen.add(keys)
            if self.choices.design(keys) is not None:
                pool.append(keys)
        return pool

    def time_steps(self, study: optuna.Study, pool: Sequence[Keys], measure_new: bool) -> None:
        """Time each distinct step of ``pool`` once (or reuse the study's timing) and predict every design.

        A step is timed in its context: its own input shape, the run's batch,
        dtype and mode, with its norm and activation.  The new steps are timed
        together, interleaved round-robin (``model_repeats`` rounds), so drift
        hits them all alike.  With ``measure_new`` false (the study already has
        its trials) only the study's stored timings are used, for the report.
        """
        prefix = self.prefix()
        known = {k.removeprefix(prefix): v for k, v in study.user_attrs.items() if k.startswith(prefix)}
        steps: dict[str, tuple[Step, Design]] = {}
        for keys in pool:
            design = self.choices.design(keys)
            if design is None:
                continue
            for i, step in enumerate(design.steps):
                sid = step_id(step, design)
                steps.setdefault(sid, (step, design))
                self.option_steps.setdefault((i, keys[i]), set()).add(sid)
        if len(steps) > self.settings.model_limit:
            return  # too many distinct steps: timing them would cost more than the search saves
        self.tally.step_timings_reused += sum(sid in known and sid not in self.step_times for sid in steps)
        self.step_times.update({sid: float(v) for sid, v in known.items() if sid in steps})
        todo = [(sid, pair) for sid, pair in steps.items() if sid not in self.step_times and measure_new]
        if todo:
            self._time(study, todo)
        for keys in pool:
            predicted = self.raw(keys)
            if predicted is not None:
                self.predicted[keys] = predicted

    def _time(self, study: optuna.Study, todo: Sequence[tuple[str, tuple[Step, Design]]]) -> None:
        mset = self.measurer.settings
        self.report("model", 0, len(todo), None, None, f"timing {len(todo)} distinct steps, interleaved")
        items = []
        for _sid, (step, design) in todo:
            single = alone(step, design)
            items.append((self.build(single), sample_shape(single, mset)))
        started = time.perf_counter()
        results = self.measurer.interleaved(items, self.settings.model_repeats)
        for (sid, _pair), result in zip(todo, results, strict=True):
            if isinstance(result, Exception):
                continue  # a step that cannot run: its designs get no prediction and fail when measured
            self.step_times[sid] = result.median_s
            self.tally.timed_s += result.timed_s
            self.tally.step_timings += 1
            study.set_user_attr(self.prefix() + sid, result.median_s)
        spent = time.perf_counter() - started
        self.report("model", len(todo), len(todo), 0.0, None, f"{len(todo)} steps timed in {spent:.1f} s")

    def prefix(self) -> str:
        """Step timings are stored per measuring context (settings and environment): another one re-times them."""
        return f"{STEP_ATTR}{context_key(self.measurer)}:"

    def option_time(self, step: int, key: str) -> float | None:
        """Predicted seconds of one step option: its timing (the slowest where its input shape varies)."""
        times = [self.step_times.get(sid) for sid in self.option_steps.get((step, key), ())]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    def fastest(self, limit: int, pool: Sequence[Keys], study: optuna.Study, measure_new: bool) -> list[Keys]:
        """The ``limit`` designs predicted fastest: exact where the space can search by step times, else the pool's.

        A space with ``fastest(limit, step_time)`` (the solver) returns the exact
        top designs under every constraint; steps of those designs the table
        lacks (another input shape) are timed and the order is recomputed.
        Without it the pool is sorted, which is exact when the pool holds every
        valid design.
        """
        search = getattr(self.choices.space, "fastest", None)
        if not callable(search) or not self.step_times:
            ranked = sorted((k for k in pool if k in self.predicted), key=lambda k: self.predicted[k])
            return ranked[:limit]
        unknown = 1e3 * max(self.step_times.values())  # an option never timed: last, not excluded

        def step_time(i: int, j: int) -> float:
            seconds = self.option_time(i, self.choices.options[i][j])
            return unknown if seconds is None else seconds

        top = [self.choices.keys(picks) for picks in search(limit, step_time)]
        self.time_steps(study, top, measure_new)
        return sorted(top, key=lambda k: self.predicted.get(k, math.inf))

    def raw(self, keys: Keys) -> float | None:
        """The sum of the design's step timings; None when a step has no timing."""
        row = self.features(keys)
        return None if row is None else row["sum"]

    def predict(self, keys: Keys) -> float | None:
        """The calibrated prediction (the raw step sum until designs are measured); None without step timings."""
        row = self.features(keys)
        return None if row is None else self.calibration.predict(row)

    def features(self, keys: Keys) -> dict[str, float] | None:
        """What :mod:`.calibrate` fits on (:func:`design_features`); None without a timing for every step."""
        if keys in self._features:
            return self._features[keys]
        design = self.choices.design(keys)
        row = design_features(design, self.step_times) if design is not None else None
        if row is not None:  # a design with a step still untimed may be timed later (``fastest``)
            self._features[keys] = row
        return row

    def calibrate(self, measured: Mapping[Keys, float]) -> None:
        """Refit on ``measured`` (seconds per batch) and recompute the held-out quality, when it changed."""
        retimed = {k: self.retimed[k] for k in measured if k in self.retimed}
        if len(retimed) >= FEWEST:  # the interleaved re-times, once taken, replace the drifting screening times
            measured = retimed
        pairs = tuple(sorted((k, t) for k, t in measured.items() if t > 0 and self.features(k) is not None))
        if pairs == self._fitted_on:
            return
        self._fitted_on = pairs
        rows = [self.features(k) or {} for k, _ in pairs]
        self.calibration, self.held_out = calibrated(rows, [t for _, t in pairs])

    def recalibrate_interleaved(self, study: optuna.Study, keys: Sequence[Keys]) -> None:
        """Refit on ``keys`` re-timed together, interleaved round-robin (``model_repeats`` rounds).

        Screening times each design alone at its own moment, and on a shared
        machine two such timings of one design differ by up to a quarter;
        interleaved, the same designs agree within a few per cent (drift hits
        them alike).  The last fit and its held-out figures are therefore on
        these times, like the step timings it scales; the table keeps the
        screening figures.  The re-timings are stored in the study under each
        design's measurement key (:func:`~.identity.measure_key`), so a rerun
        re-times only what it lacks, and what it lacks all together (drift
        between the old and the new would come back otherwise).  A design that
        fails here keeps no time; too few left keep the screening fit.
        """
        designs = [(k, d) for k in keys if (d := self.choices.design(k)) is not None and self.features(k) is not None]
        if len(designs) < FEWEST:
            return
        names = [RETIME_ATTR + measure_key(d, self.measurer) for _, d in designs]
        stored = study.user_attrs
        if all(n in stored for n in names):
            self.retimed = {k: float(stored[n]) for (k, _), n in zip(designs, names, strict=True)}
            self.calibrate(self.retimed)
            return
        mset = self.measurer.settings
        items = [(self.build(d), sample_shape(d, mset)) for _, d in designs]
        self.report("model", 0, len(items), None, None, f"re-timing {len(items)} measured designs, interleaved")
        results = self.measurer.interleaved(items, self.settings.model_repeats)
        retimed = {}
        for (k, _), name, r in zip(designs, names, results, strict=True):
            if isinstance(r, Exception):
                continue
            retimed[k] = r.median_s
            self.tally.timed_s += r.timed_s
            study.set_user_attr(name, r.median_s)
        if len(retimed) >= FEWEST:
            self.retimed = retimed
            self.calibrate(retimed)

    def ranked(self, keys: Sequence[Keys]) -> list[Keys]:
        """``keys`` with a prediction, predicted fastest first (calibrated)."""
        scored = [(p, i) for i, k in enumerate(keys) if (p := self.predict(k)) is not None]
        return [keys[i] for _, i in sorted(scored)]

    def spread(self, keys: Sequence[Keys], count: int) -> list[Keys]:
        """``count`` designs evenly spread over the raw predicted order: what calibrating and judging need."""
        ordered = sorted((p, i) for i, k in enumerate(keys) if (p := self.raw(k)) is not None)
        if count <= 0 or not ordered:
            return []
        picks = sorted({min(len(ordered) - 1, int((j + 0.5) * len(ordered) / count)) for j in range(count)})
        return [keys[ordered[j][1]] for j in picks]

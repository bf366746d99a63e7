"""The run: wire study, latency model, queue, search, race and results writing together for one call of :func:`rank`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from ..design.design import Design
from ..design.search_space import CandidateSource, SearchSpace
from ..errors import InputError, Issue
from .choices import Choices
from .dashboard import label_race
from .measure import Measurer
from .model import LatencyModel, build_module
from .part import Run
from .picks import measured_times
from .progress import Reporter
from .queue import Queue
from .race import Race
from .results import ResultsWriter
from .search import Search
from .settings import MeasureSettings, RankSettings
from .study import StudyStore, slug
from .values import Keys, RankProgress, RankResult, Tally

if TYPE_CHECKING:
    import optuna
    import torch

Reference = Design | Sequence[int] | Sequence[str]
#: Trials from which the first designs include a spread to calibrate the latency model on.
CALIBRATE_FROM = 8


def rank(
    space: SearchSpace,
    settings: RankSettings | None = None,
    measure: MeasureSettings | None = None,
    progress: Callable[[RankProgress], None] | None = None,
    *,
    reference: Reference | None = None,
    measurer: Measurer | None = None,
    build: Callable[[Design], torch.nn.Module] | None = None,
) -> RankResult:
    """Measure designs of ``space`` in an Optuna study, race the best against a reference, rank by throughput.

    ``reference``: the design to beat, as a :class:`Design` of the space, its
    pick indices or its option keys; it is always measured.  Without one, the
    space's best design by its objective serves (the first of
    ``space.candidates``), else the valid design with the fewest parameters.
    ``measurer`` replaces the measuring harness (tests inject one with a fake
    timer); ``build`` replaces :func:`build_module`.  Writes ``results.json``
    (and ``pareto.html``) to the results directory after every trial.  Raises
    InputError for bad settings, storage or reference, MeasureError when no
    design at all could be measured.
    """
    settings = settings or RankSettings()
    measure = measure or MeasureSettings()
    ranker = Ranker(space, settings, measurer or Measurer(measure), progress, build or build_module)
    with quiet_optuna():
        return ranker.run(reference)


#: At most this many measured designs are re-timed interleaved for the last calibration (bounded work).
RETIME = 24


def retime_set(measured: dict[Keys, float]) -> list[Keys]:
    """The measured designs to re-time for the last fit: all, or ``RETIME`` spread evenly over their times."""
    ordered = sorted(measured, key=lambda k: measured[k])
    if len(ordered) <= RETIME:
        return ordered
    return [ordered[int((j + 0.5) * len(ordered) / RETIME)] for j in range(RETIME)]


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; the library must not print, so keep it to warnings during a run."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


class Ranker:
    """One worker's run: open the study, build the model, queue, search, race, write the final result."""

    def __init__(
        self,
        space: SearchSpace,
        settings: RankSettings,
        measurer: Measurer,
        progress: Callable[[RankProgress], None] | None,
        build: Callable[[Design], torch.nn.Module],
    ) -> None:
        self.settings = settings
        self.choices = Choices(space)
        results_dir = settings.results_dir or Path("results") / slug(space.name)
        self.tally = Tally()
        run = Run(self.choices, settings, measurer, build, self.tally, Reporter(progress))
        self.store = StudyStore(self.choices, settings, measurer, results_dir)
        self.model = LatencyModel(run)
        self.writer = ResultsWriter(run, self.store, self.model, results_dir)
        self.queue = Queue(run, self.store, self.model)
        self.search = Search(run, self.store, self.model, self.queue, self.writer)
        self.race = Race(run)

    def run(self, reference: Reference | None) -> RankResult:
        study = self.store.open()
        self.store.fail_dead(study)
        pool = self.model.pool()
        ledger = self.store.ledger(study.get_trials(deepcopy=False))
        self.queue.drop_stale(ledger)
        measure_new = len(ledger.measured) < self.settings.trials
        ref = self.reference_keys(reference, pool)
        first: list[Keys] = [ref] if ref is not None else []
        spread: list[Keys] = []
        started = time.perf_counter()
        if self.settings.model:
            self.model.time_steps(study, [*first, *pool], measure_new)
            budget = self.settings.trials
            # Enough trials to calibrate the model and still use it: a quarter from the step sum and as many
            # spread over its order (the calibration needs slow designs as well as fast); else half from it.
            calibrating = budget >= CALIBRATE_FROM
            default = -(-budget // 4) if calibrating else -(-budget // 2)
            wanted = self.settings.enqueue if self.settings.enqueue is not None else default
            top = self.model.fastest(wanted + len(first), pool, study, measure_new)
            first += [k for k in top if k not in first][:wanted]
            if calibrating:
                spread = self.model.spread([k for k in pool if k not in first], wanted)
        self.queue.order(pool, first)
        self.queue.fill(study, self.store.ledger(study.get_trials(deepcopy=False)), first, ref)
        if self.settings.model:
            self.spread(study, spread)
        self.tally.model_s = time.perf_counter() - started
        started = time.perf_counter()
        self.search.run(study, ref)
        self.tally.screen_s = time.perf_counter() - started
        trials = study.get_trials(deepcopy=False)
        if self.settings.model:
            started = time.perf_counter()
            self.model.recalibrate_interleaved(study, retime_set(measured_times(self.store.ledger(trials))))
            self.tally.model_s += time.perf_counter() - started
        self.queue.drop_stale(self.store.ledger(trials))
        nothing_valid = self.model.pool_complete and not pool
        result = self.writer.finish(trials, self.search.stop_reason, nothing_valid, ref)
        if not self.settings.race or result.reference is None:
            return result
        finalists = self.race.finalists(result.candidates, result.reference, self.settings.finalists)
        started = time.perf_counter()
        race = self.race.run(study, finalists, result.reference)
        self.tally.race_s = time.perf_counter() - started
        if race is not None:
            label_race(study, race)
        return self.writer.write(trials, self.search.stop_reason, ref, race)

    def spread(self, study: optuna.Study, keys: Sequence[Keys]) -> None:
        """Queue ``keys`` (source ``spread``) after the model's picks, within the trials still to measure."""
        ledger = self.store.ledger(study.get_trials(deepcopy=False))
        room = self.settings.trials - len(ledger.measured) - ledger.queued
        for k in [k for k in keys if self.queue.untouched(k, ledger)][: max(0, room)]:
            self.queue.enqueue(study, k, "spread")

    def reference_keys(self, reference: Reference | None, pool: Sequence[Keys]) -> Keys | None:
        """The reference's keys in the space: given, else the best by the objective, else the fewest params."""
        choices = self.choices
        if reference is None:
            space = choices.space
            if isinstance(space, CandidateSource):
                for picks in islice(iter(space.candidates(1)), 1):
                    return choices.keys(picks)
            designs = [(d.params.total, i) for i, k in enumerate(pool) if (d := choices.design(k)) is not None]
            return pool[min(designs)[1]] if designs else None
        if isinstance(reference, Design):
            keys = self._match(reference, pool)
        elif all(isinstance(v, int) for v in reference) and len(reference) == len(choices.names):
            keys = choices.keys([int(v) for v in reference])
        else:
            keys = tuple(str(v) for v in reference)
        if len(keys) != len(choices.names) or choices.design(keys) is None:
            raise InputError(Issue("reference", "not a valid design of this problem (sizes, budget or rules)"))
        return keys

    def _match(self, reference: Design, pool: Sequence[Keys]) -> Keys:
        """The keys whose steps are the reference's (compared without skip merges), step by step over the pool."""
        if len(reference.steps) != len(self.choices.names):
            return ()
        option: dict[tuple[int, object], str] = {}
        for keys in pool:
            design = self.choices.design(keys)
            for i, step in enumerate(design.steps if design is not None else ()):
                option.setdefault((i, replace(step, merge=None)), keys[i])
        found = [option.get((i, replace(step, merge=None))) for i, step in enumerate(reference.steps)]
        return tuple(k for k in found if k is not None)

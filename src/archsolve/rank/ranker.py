"""The run: wire study, latency model, search and results writing together for one call of :func:`rank`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..design import Design
from ..space import SearchSpace
from .choices import Choices
from .measure import Measurer, MeasureSettings
from .model import LatencyModel, build_module
from .progress import Reporter
from .queue import Queue
from .results import ResultsWriter
from .search import Search
from .study import StudyStore, slug
from .values import RankProgress, RankResult, RankSettings, Tally

if TYPE_CHECKING:
    import torch


def rank(
    space: SearchSpace,
    settings: RankSettings | None = None,
    measure: MeasureSettings | None = None,
    progress: Callable[[RankProgress], None] | None = None,
    *,
    measurer: Measurer | None = None,
    build: Callable[[Design], torch.nn.Module] | None = None,
) -> RankResult:
    """Measure designs of ``space`` in an Optuna study and rank them by throughput (samples/s).

    ``measurer`` replaces the measuring harness (tests inject one with a fake
    timer); ``build`` replaces :func:`build_module`.  Writes
    ``results.json`` (and ``pareto.html``) to the results directory after every
    trial.  Raises InputError for bad settings or storage, MeasureError when no
    design at all could be measured.
    """
    settings = settings or RankSettings()
    measure = measure or MeasureSettings()
    ranker = Ranker(space, settings, measurer or Measurer(measure), progress, build or build_module)
    with quiet_optuna():
        return ranker.run()


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
    """One worker's run: open the study, build the model, search, write the final result."""

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
        report = Reporter(progress)
        self.store = StudyStore(self.choices, settings, measurer, results_dir)
        self.model = LatencyModel(self.choices, settings, measurer, build, self.tally, report)
        self.writer = ResultsWriter(self.choices, settings, self.store, self.model, measurer, self.tally, results_dir)
        self.queue = Queue(self.choices, settings, self.store, self.model, self.tally)
        self.search = Search(
            self.choices, settings, self.store, self.model, self.queue, self.writer, measurer, build, self.tally, report
        )

    def run(self) -> RankResult:
        study = self.store.open()
        self.store.fail_dead(study)
        pool = self.model.pool()
        ledger = self.store.ledger(study.get_trials(deepcopy=False))
        self.queue.drop_stale(ledger)
        if self.settings.model:
            self.model.time_steps(study, pool, measure_new=len(ledger.measured) < self.settings.trials)
        self.queue.order(pool)
        if self.model.predicted:
            wanted = self.settings.enqueue if self.settings.enqueue is not None else -(-self.settings.trials // 2)
            self.queue.fill(study, self.store.ledger(study.get_trials(deepcopy=False)), wanted)
        self.search.run(study)
        trials = study.get_trials(deepcopy=False)
        self.queue.drop_stale(self.store.ledger(trials))
        nothing_valid = self.model.pool_complete and not pool
        return self.writer.finish(trials, self.search.stop_reason, nothing_valid)

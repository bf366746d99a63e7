"""The search loop: enqueue the predicted-fastest designs, then ask Optuna for proposals until the budget is met.

What happens to a proposal:

* **invalid** (``space.design`` says a global constraint fails) → *pruned*
  with ``user_attrs["invalid"]``; nothing is built or measured;
* **already measured** in the study (any run, any worker) → *completed* with
  the finished trial's value and ``user_attrs["reused_from"]``;
* **known to fail** → *failed* again with ``user_attrs["error"]``;
* **being measured by another worker** → *failed* with
  ``user_attrs["deferred_to"]`` (samplers ignore failed trials);
* otherwise it is measured; an exception (out of memory, a runtime error from
  build or forward) makes it a *failed* trial whose ``user_attrs["error"]``
  holds the reason, and the run goes on.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..dashboard import label_trial
from ..design import Design
from ..errors import ArchsolveError
from .choices import Choices
from .measure import Measurer
from .model import LatencyModel, sample_shape
from .progress import Reporter
from .results import ResultsWriter, trial_record
from .study import Ledger, StudyStore
from .values import Keys, RankSettings, Tally

if TYPE_CHECKING:
    import optuna
    import torch
    from optuna.trial import FrozenTrial


class Search:
    """One worker's search over one study: proposals, claims, measurements, the stop decision."""

    def __init__(
        self,
        choices: Choices,
        settings: RankSettings,
        store: StudyStore,
        model: LatencyModel,
        writer: ResultsWriter,
        measurer: Measurer,
        build: Callable[[Design], torch.nn.Module],
        tally: Tally,
        report: Reporter,
    ) -> None:
        self.choices = choices
        self.settings = settings
        self.store = store
        self.model = model
        self.writer = writer
        self.measurer = measurer
        self.build = build
        self.tally = tally
        self.report = report
        self.pending: list[Keys] = []
        self.pool_keys: set[Keys] = set()
        self.stop_reason = ""
        self.started = time.perf_counter()
        self._fresh: list[FrozenTrial] | None = None

    # --- the queue -------------------------------------------------------------------------------
    def order(self, pool: list[Keys]) -> None:
        """The pool in the order designs are queued: predicted fastest first (random without a model)."""
        self.pool_keys = set(pool)
        position = {keys: i for i, keys in enumerate(pool)}
        pending = list(pool)
        if self.model.predicted:
            pending.sort(key=lambda k: (self.model.predicted.get(k, math.inf), position[k]))
        else:
            random.Random(self.settings.seed).shuffle(pending)
        self.pending = pending

    def _untouched(self, keys: Keys, ledger: Ledger) -> bool:
        return not (ledger.touched(keys) or keys in self.tally.enqueued)

    def _enqueue(self, study: optuna.Study, keys: Keys, source: str) -> None:
        self.store.enqueue(study, keys, source)
        self.tally.enqueued.add(keys)

    def enqueue_predicted(self, study: optuna.Study, ledger: Ledger) -> None:
        wanted = self.settings.enqueue if self.settings.enqueue is not None else -(-self.settings.trials // 2)
        room = self.settings.trials - len(ledger.measured) - len(ledger.waiting)
        if not self.model.predicted or room <= 0:
            return
        chosen = [k for k in self.pending if k in self.model.predicted and self._untouched(k, ledger)]
        for keys in chosen[: min(wanted, room)]:
            self._enqueue(study, keys, "model")

    def _enqueue_next(self, study: optuna.Study, ledger: Ledger) -> bool:
        """After ``patience`` fruitless proposals: queue the predicted-best design nobody has touched."""
        if ledger.waiting:
            return False  # queued designs come first anyway
        for keys in self.pending:
            if self._untouched(keys, ledger):
                self._enqueue(study, keys, "fallback")
                return True
        return False

    # --- the loop --------------------------------------------------------------------------------
    def _trials(self, study: optuna.Study) -> list[FrozenTrial]:
        """All trials, read once per proposal: the last read after a finished measurement is reused."""
        if self._fresh is not None:
            trials, self._fresh = self._fresh, None
            return trials
        return study.get_trials(deepcopy=False)

    def run(self, study: optuna.Study) -> None:
        self.started = time.perf_counter()
        dists = self.choices.distributions()
        max_asks = self.settings.max_asks if self.settings.max_asks is not None else 10 * self.settings.trials + 50
        fruitless = 0
        while True:
            ledger = self.store.ledger(self._trials(study))
            in_flight = sum(len(v) for v in ledger.claims.values())
            if len(ledger.measured) + in_flight >= self.settings.trials:
                self.stop_reason = "trials reached"
                return
            if self.model.pool_complete and all(k in ledger.measured or k in ledger.failed for k in self.pool_keys):
                self.stop_reason = "every valid design measured"
                return
            if self.tally.asks >= max_asks:
                self.stop_reason = f"no new valid design in {max_asks} proposals"
                return
            if fruitless >= self.settings.patience:
                self._enqueue_next(study, ledger)
                fruitless = 0
            self.tally.asks += 1
            measured_before = self.tally.measured + self.tally.failed
            self._trial(study, dists, ledger)
            fruitless = 0 if self.tally.measured + self.tally.failed > measured_before else fruitless + 1

    def _trial(self, study: optuna.Study, dists: dict[str, Any], ledger: Ledger) -> None:
        """One proposal: reuse, refuse, defer or measure it (``ledger``: the study just before asking)."""
        from optuna.trial import TrialState

        try:
            trial = study.ask(dists)
        except ValueError:
            # An enqueued trial from an earlier run names a choice this space no longer has.
            return
        number = trial.number
        finished = False
        try:
            keys = tuple(str(trial.params[name]) for name in self.choices.names)
            if keys in ledger.measured:
                self._reuse(study, trial, ledger.measured[keys])
                finished = True
                return
            if keys in ledger.failed:
                trial.set_user_attr("error", ledger.failed[keys].user_attrs["error"])
                trial.set_user_attr("same_as", ledger.failed[keys].number)
                study.tell(trial, state=TrialState.FAIL)
                finished = True
                return
            design = self.choices.design(keys)
            if design is None:
                trial.set_user_attr(
                    "invalid", "violates a global constraint (budget, receptive field, recipe or sizes)"
                )
                study.tell(trial, state=TrialState.PRUNED)
                self.tally.invalid += 1
                finished = True
                self._report(f"trial {number}: invalid, not measured")
                return
            trial.set_user_attr("claim", {"host": self.store.host, "pid": self.store.pid})
            ledger = self.store.ledger(study.get_trials(deepcopy=False), exclude=number)
            if keys in ledger.measured:
                self._reuse(study, trial, ledger.measured[keys])
                finished = True
                return
            if keys in ledger.claims:
                trial.set_user_attr("deferred_to", ledger.claims[keys][0].number)
                study.tell(trial, state=TrialState.FAIL)
                self.tally.deferred += 1
                finished = True
                return
            self._measure(study, trial, keys, design)
            finished = True
        finally:
            if not finished:  # interrupted (Ctrl-C) or a bug: never leave a claim behind
                with contextlib.suppress(Exception):
                    study.tell(number, state=TrialState.FAIL)

    def _reuse(self, study: optuna.Study, trial: optuna.Trial, done: FrozenTrial) -> None:
        trial.set_user_attr("reused_from", done.number)
        study.tell(trial, done.value)
        self.tally.reused += 1

    def _measure(self, study: optuna.Study, trial: optuna.Trial, keys: Keys, design: Design) -> None:
        from optuna.trial import TrialState

        predicted = self.model.predicted.get(keys) or self.model.predict(keys)
        try:
            result = self.measurer.measure(self.build(design), sample_shape(design, self.measurer.settings))
        except (ArchsolveError, RuntimeError, ValueError, TypeError, MemoryError) as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            study.tell(trial, state=TrialState.FAIL)
            self.tally.failed += 1
            self._written(study)
            self._report(f"trial {trial.number}: failed: {exc}")
            return
        self.tally.timed_s += result.timed_s
        record = trial_record(result) | {"params": design.params.total, "macs": design.macs}
        if predicted is not None:
            record["predicted_s"] = predicted
        trial.set_user_attr("measurement", record)
        label_trial(trial, design)
        study.tell(trial, result.throughput)
        self.tally.measured += 1
        self._written(study)
        self._report(f"trial {trial.number}: {result.throughput:,.0f} samples/s")

    def _written(self, study: optuna.Study) -> None:
        """Rewrite the results files after a finished trial; the next proposal reuses this read of the study."""
        self._fresh = study.get_trials(deepcopy=False)
        self.writer.write(self._fresh)

    def _report(self, message: str) -> None:
        if not self.report.active:
            return
        candidates: Sequence[Any] = self.writer.latest
        done = min(len(candidates), self.settings.trials)
        spent = time.perf_counter() - self.started
        work = self.tally.measured + self.tally.failed
        eta = spent / work * max(0, self.settings.trials - done) if work else None
        self.report("search", done, self.settings.trials, eta, candidates[0] if candidates else None, message)

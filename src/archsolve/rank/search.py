"""The search loop: enqueue the predicted-fastest designs, then ask Optuna for proposals until the budget is met.

What happens to a proposal:

* **invalid** (``space.design`` says a global constraint fails) → *pruned*
  with ``user_attrs["invalid"]``; nothing is built or measured;
* **already measured** in the study (any run, any worker) → *completed* with
  the finished trial's value and ``user_attrs["reused_from"]``; the same
  module measured under other keys or in another study of the storage (same
  measurement key, :mod:`.identity`) → *completed* with that measurement and
  ``user_attrs["adopted_from"]``;
* **known to fail** → *failed* again with ``user_attrs["error"]``;
* **being measured by another worker** → *failed* with
  ``user_attrs["deferred_to"]`` (samplers ignore failed trials);
* otherwise it is measured; an exception (out of memory, a runtime error from
  build or forward) makes it a *failed* trial whose ``user_attrs["error"]``
  holds the reason, and the run goes on.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..design.design import Design
from ..errors import ArchsolveError
from .dashboard import label_trial
from .model import LatencyModel, sample_shape
from .part import Part, Run
from .picks import Picks
from .queue import Queue
from .results import ResultsWriter, trial_record
from .study import IDENTITY_ATTR, Ledger, StudyStore, Twin
from .values import Keys

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


class Search(Part):
    """One worker's search over one study: proposals, claims, measurements, the stop decision."""

    def __init__(self, run: Run, store: StudyStore, model: LatencyModel, queue: Queue, writer: ResultsWriter) -> None:
        super().__init__(run)
        self.store = store
        self.model = model
        self.queue = queue
        self.writer = writer
        self.stop_reason = ""
        self.started = time.perf_counter()
        self._fresh: list[FrozenTrial] | None = None
        self.required: Keys | None = None
        self.picks = Picks(run, model, queue)

    # --- the loop --------------------------------------------------------------------------------
    def _trials(self, study: optuna.Study) -> list[FrozenTrial]:
        """All trials, read once per proposal: the last read after a finished measurement is reused."""
        if self._fresh is not None:
            trials, self._fresh = self._fresh, None
            return trials
        return study.get_trials(deepcopy=False)

    def run(self, study: optuna.Study, required: Keys | None = None) -> None:
        """Propose and measure until the study holds ``trials`` designs (and ``required``, the reference)."""
        self.started = time.perf_counter()
        self.required = required
        dists = self.choices.distributions()
        max_asks = self.settings.max_asks if self.settings.max_asks is not None else 10 * self.settings.trials + 50
        fruitless = 0
        while True:
            ledger = self.store.ledger(self._trials(study))
            in_flight = sum(len(v) for v in ledger.claims.values())
            if len(ledger.measured) + in_flight >= self.settings.trials:
                if required is None or any(required in d for d in (ledger.measured, ledger.failed, ledger.claims)):
                    self.stop_reason = "trials reached"
                    return
                if required not in ledger.waiting:
                    self.queue.enqueue(study, required, "reference")  # the reference is measured whatever the budget
            pool = self.queue.pool_keys
            if self.model.pool_complete and all(k in ledger.measured or k in ledger.failed for k in pool):
                self.stop_reason = "every valid design measured"
                return
            if self.tally.asks >= max_asks:
                self.stop_reason = f"no new valid design in {max_asks} proposals"
                return
            self.picks.calibrate(ledger)
            if not ledger.waiting and self.picks.model_turn():
                self.picks.enqueue_predicted(study, ledger)
            elif fruitless >= self.settings.patience:
                self.picks.fallback(study, ledger)
                fruitless = 0
            self.tally.asks += 1
            measured_before = self.tally.measured + self.tally.failed
            self._trial(study, dists, ledger)
            fruitless = 0 if self.tally.measured + self.tally.failed > measured_before else fruitless + 1

    def _trial(self, study: optuna.Study, dists: dict[str, Any], ledger: Ledger) -> None:
        """One proposal: reuse, refuse, defer or measure it (``ledger``: the study just before asking)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            trial = study.ask(dists)
        except ValueError:
            # An enqueued trial from an earlier run names a choice this space no longer has.
            return
        number = trial.number
        finished = False
        try:
            self._propose(study, trial, ledger)
            finished = True
        except UpdateFinishedTrialError:
            # Another worker took the same queued trial and finished it first (a storage without row locks);
            # its measurement of this design is in the study, so this one is dropped, not recorded twice.
            self.tally.contested += 1
            finished = True
        finally:
            if not finished:  # interrupted (Ctrl-C) or a bug: never leave a claim behind
                with contextlib.suppress(Exception):
                    study.tell(number, state=TrialState.FAIL)

    def _propose(self, study: optuna.Study, trial: optuna.Trial, ledger: Ledger) -> None:
        from optuna.trial import TrialState

        number = trial.number
        keys = tuple(str(trial.params[name]) for name in self.choices.names)
        if keys in ledger.measured:
            self._reuse(study, trial, ledger.measured[keys])
            return
        if keys in ledger.failed:
            trial.set_user_attr("error", ledger.failed[keys].user_attrs["error"])
            trial.set_user_attr("same_as", ledger.failed[keys].number)
            study.tell(trial, state=TrialState.FAIL)
            return
        design = self.choices.design(keys)
        if design is None:
            trial.set_user_attr("invalid", "violates a global constraint (budget, receptive field, recipe or sizes)")
            study.tell(trial, state=TrialState.PRUNED)
            self.tally.invalid += 1
            self._report(f"trial {number}: invalid, not measured")
            return
        twin = self.store.twin(keys, ledger)
        if twin is not None:
            self._adopt(study, trial, keys, design, twin)
            return
        claim = {"host": self.store.host, "pid": self.store.pid, "token": uuid.uuid4().hex}
        trial.set_user_attr("claim", claim)
        trials = study.get_trials(deepcopy=False)
        if any(t.number == number and t.user_attrs.get("claim") != claim for t in trials):
            # Another worker took this queued trial at the same moment and claimed it after us: it is theirs.
            self.tally.contested += 1
            return
        ledger = self.store.ledger(trials, exclude=number)
        if keys in ledger.measured:
            self._reuse(study, trial, ledger.measured[keys])
            return
        if keys in ledger.claims:
            trial.set_user_attr("deferred_to", ledger.claims[keys][0].number)
            study.tell(trial, state=TrialState.FAIL)
            self.tally.deferred += 1
            return
        self._measure(study, trial, keys, design)

    def _reuse(self, study: optuna.Study, trial: optuna.Trial, done: FrozenTrial) -> None:
        trial.set_user_attr("reused_from", done.number)
        study.tell(trial, done.value)
        self.tally.repeats += 1

    def _adopt(self, study: optuna.Study, trial: optuna.Trial, keys: Keys, design: Design, twin: Twin) -> None:
        """The same module was measured under other keys or in another study: take its figures, time nothing."""
        trial.set_user_attr("measurement", twin.record)
        trial.set_user_attr(IDENTITY_ATTR, self.store.identity(keys))
        trial.set_user_attr("adopted_from", {"study": twin.study, "trial": twin.trial})
        label_trial(trial, design, twin.value)
        study.tell(trial, twin.value)
        self._written(study)
        self._report(f"trial {trial.number}: same module as {twin.study} trial {twin.trial}, not measured")

    def _measure(self, study: optuna.Study, trial: optuna.Trial, keys: Keys, design: Design) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr(IDENTITY_ATTR, self.store.identity(keys))

        predicted = self.model.predict(keys)
        mset = self.measurer.settings
        try:
            # Screening: a few samples, taken once; whether a design could win is the race's to decide.
            result = self.measurer.measure(
                self.build(design),
                sample_shape(design, mset),
                repeats=min(self.settings.screen_repeats, mset.repeats),
                retries=0,
            )
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
        label_trial(trial, design, result.throughput, self._reference_throughput(study, keys, result.throughput))
        study.tell(trial, result.throughput)
        self.tally.measured += 1
        self.tally.mine.add(trial.number)
        self._written(study)
        self._report(f"trial {trial.number}: {result.throughput:,.0f} samples/s")

    def _reference_throughput(self, study: optuna.Study, keys: Keys, throughput: float) -> float | None:
        """The reference's samples/s, for the dashboard's "ratio to reference" (None until it is measured)."""
        if self.required is None:
            return None
        if keys == self.required:
            return throughput
        done = self.store.ledger(study.get_trials(deepcopy=False)).measured.get(self.required)
        return done.value if done is not None else None

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

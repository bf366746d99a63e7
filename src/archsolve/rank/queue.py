"""The queue of designs to measure first: Optuna's enqueued (WAITING) trials, kept small and without stale entries.

Every worker reads the queue before adding to it, but two workers starting
together can still queue the same design, and a run that stops early (budget
met, Ctrl-C) leaves entries behind.  Entries nobody needs any more (their
design measured or failed, queued twice, or no longer in the space) are
dropped at the start and end of every run, so the queue never grows across
restarts.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from .model import LatencyModel
from .part import Part, Run
from .study import Ledger, StudyStore
from .values import Keys

if TYPE_CHECKING:
    import optuna


class Queue(Part):
    """Which designs to enqueue (predicted fastest first) and when."""

    def __init__(self, run: Run, store: StudyStore, model: LatencyModel) -> None:
        super().__init__(run)
        self.store = store
        self.model = model
        self.pending: list[Keys] = []
        self.pool_keys: set[Keys] = set()

    def order(self, pool: list[Keys], first: list[Keys] | None = None) -> None:
        """The pool in the order designs are queued: ``first``, then predicted fastest (random without a model)."""
        self.pool_keys = set(pool) | set(first or ())
        position = {keys: i for i, keys in enumerate(pool)}
        rest = [k for k in pool if k not in set(first or ())]
        if self.model.predicted:
            rest.sort(key=lambda k: (self.model.predicted.get(k, math.inf), position[k]))
        else:
            random.Random(self.settings.seed).shuffle(rest)
        self.pending = [*(first or ()), *rest]

    def untouched(self, keys: Keys, ledger: Ledger) -> bool:
        return not (ledger.touched(keys) or keys in self.tally.enqueued)

    def enqueue(self, study: optuna.Study, keys: Keys, source: str) -> None:
        self.store.enqueue(study, keys, source)
        self.tally.enqueued.add(keys)

    def fill(self, study: optuna.Study, ledger: Ledger, first: list[Keys], reference: Keys | None) -> None:
        """Queue the reference (always, nobody has it yet) and then ``first`` within the trials still to measure."""
        room = self.settings.trials - len(ledger.measured) - ledger.queued
        if reference is not None and self.untouched(reference, ledger):
            self.enqueue(study, reference, "reference")
            room -= 1
        chosen = [k for k in first if k != reference and self.untouched(k, ledger)]
        for keys in chosen[: max(0, room)]:
            self.enqueue(study, keys, "model")

    def next(self, study: optuna.Study, ledger: Ledger) -> bool:
        """After ``patience`` fruitless proposals: queue the predicted-best design nobody has touched."""
        if ledger.waiting:
            return False  # queued designs come first anyway
        for keys in self.pending:
            if self.untouched(keys, ledger):
                self.enqueue(study, keys, "fallback")
                return True
        return False

    def drop_stale(self, ledger: Ledger) -> None:
        """Drop queue entries whose design is measured, failed, queued earlier, or not in this space."""
        seen: set[Keys] = set()
        for number, keys in ledger.queue:
            if keys in ledger.measured or keys in ledger.failed:
                reason = "design already measured" if keys in ledger.measured else "design known to fail"
            elif keys in seen:
                reason = "design queued twice"
            elif self.choices.picks(keys) is None:
                reason = "choice no longer in the space"
            else:
                seen.add(keys)
                continue
            if self.store.drop(number, reason):
                self.tally.dropped += 1

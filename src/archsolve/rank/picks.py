"""Which design the search measures next when the latency model has a say: its held-out figures decide.

After every measurement the model is recalibrated on the designs measured so
far; when its held-out Spearman says it ranks well it picks every next
design, when it ranks at all every other one, and when it does not the
sampler (TPE) proposes and fruitless proposals fall back to a random
untouched design: the measurements spread instead of trusting a model that
does not rank.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .calibrate import RANKS
from .model import LatencyModel
from .part import Part, Run
from .queue import Queue
from .study import Ledger
from .values import Keys

if TYPE_CHECKING:
    import optuna

#: Held-out Spearman from which the model picks every next design (between RANKS and this: every other).
RANKS_WELL = 0.9


def measured_times(ledger: Ledger) -> dict[Keys, float]:
    """Seconds per batch of every measured design in the study (its screening median)."""
    out = {}
    for keys, trial in ledger.measured.items():
        seconds = trial.user_attrs.get("measurement", {}).get("median_s")
        if isinstance(seconds, (int, float)) and seconds > 0:
            out[keys] = float(seconds)
    return out


class Picks(Part):
    """The model's part in the search: recalibrate, decide whose turn it is, queue the model's or a random pick."""

    def __init__(self, run: Run, model: LatencyModel, queue: Queue) -> None:
        super().__init__(run)
        self.model = model
        self.queue = queue
        self.turns = 0
        self.rng = random.Random(run.settings.seed)

    def calibrate(self, ledger: Ledger) -> None:
        """Refit the latency model on every design measured so far (its screening median)."""
        if self.settings.model:
            self.model.calibrate(measured_times(ledger))

    def model_turn(self) -> bool:
        """Whether the model picks the next design: always when it ranks well, every other time when it
        ranks at all (held-out Spearman >= 0.5), never when it does not: then the sampler spreads."""
        rho = self.model.held_out.spearman
        if not self.settings.model or rho is None or rho < RANKS:
            return False
        self.turns += 1
        return rho >= RANKS_WELL or self.turns % 2 == 1

    def enqueue_predicted(self, study: optuna.Study, ledger: Ledger) -> bool:
        """Queue the untouched design the calibrated model predicts fastest."""
        pool = [k for k in self.queue.pending if self.queue.untouched(k, ledger)]
        for keys in self.model.ranked(pool)[:1]:
            self.queue.enqueue(study, keys, "model")
            return True
        return False

    def fallback(self, study: optuna.Study, ledger: Ledger) -> None:
        """After fruitless proposals: the model's next pick if it ranks, else a random untouched design."""
        if ledger.waiting:
            return
        if (self.model.held_out.ranks or self.model.held_out.ranks is None) and self.settings.model:
            self.queue.next(study, ledger)
            return
        pool = [k for k in self.queue.pending if self.queue.untouched(k, ledger)]
        if pool:
            self.queue.enqueue(study, self.rng.choice(pool), "spread")

"""The final race: the finalists re-timed round-robin in this process, A B C A B C …, then a verdict.

Study measurements come from different moments, sometimes from different
runs or workers, so their differences mix design and drift.  The race times
the top measured designs and the reference together, one sample of each per
round, so every design sees the same machine; :func:`~.verdict.decide`
turns the samples into ratios to the reference with bootstrap intervals and
ties.  The samples are stored in the study (keyed by the finalists), so a
second run over the same finalists reuses them instead of racing again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .candidate import Candidate
from .identity import measure_key
from .model import sample_shape
from .part import Part, Run
from .verdict import RaceResult, decide

if TYPE_CHECKING:
    import optuna

RACE_ATTR = "race:"


class Race(Part):
    """Times finalists interleaved (or reuses the study's samples for the same finalists) and decides."""

    def __init__(self, run: Run) -> None:
        super().__init__(run)

    @staticmethod
    def finalists(ranked: Sequence[Candidate], reference: Candidate, count: int) -> list[Candidate]:
        """The ``count`` best measured designs and the reference (once, even when it is among them)."""
        chosen = [c for c in ranked if c.keys != reference.keys][:count]
        return [*chosen, reference]

    def run(self, study: optuna.Study, finalists: Sequence[Candidate], reference: Candidate) -> RaceResult | None:
        """The verdict over ``finalists`` (the reference among them); None when the reference cannot run."""
        key = RACE_ATTR + self._key(finalists)
        stored = study.user_attrs.get(key)
        reused = isinstance(stored, dict) and stored.get("rounds") == self.settings.race_rounds
        if reused:
            assert isinstance(stored, dict)
            samples: list[list[float] | None] = [list(map(float, s)) if s else None for s in stored["samples"]]
        else:
            samples = self._time(finalists)
            study.set_user_attr(key, {"rounds": self.settings.race_rounds, "samples": [s or [] for s in samples]})
        ref = finalists.index(reference)
        if samples[ref] is None:
            return None
        kept = [i for i, s in enumerate(samples) if s]
        return decide(
            [finalists[i] for i in kept],
            [samples[i] or [] for i in kept],
            kept.index(ref),
            confidence=self.settings.confidence,
            seed=self.settings.seed or 0,
            reused=reused,
        )

    def _time(self, finalists: Sequence[Candidate]) -> list[list[float] | None]:
        rounds = self.settings.race_rounds
        self.report("race", 0, rounds, None, None, f"final race: {len(finalists)} designs, {rounds} rounds")
        mset = self.measurer.settings
        items = [(self.build(c.design), sample_shape(c.design, mset)) for c in finalists]
        results = self.measurer.interleaved(items, rounds)
        samples: list[list[float] | None] = []
        for result in results:
            if isinstance(result, Exception):
                samples.append(None)
                continue
            self.tally.timed_s += result.timed_s
            samples.append(list(result.samples_s))
        self.report("race", rounds, rounds, 0.0, None, "final race done")
        return samples

    def _key(self, finalists: Sequence[Candidate]) -> str:
        # By what ran (measurement keys), not by option keys: a changed problem races its new modules.
        text = json.dumps(sorted(measure_key(c.design, self.measurer) for c in finalists))
        return hashlib.sha1(text.encode()).hexdigest()[:16]

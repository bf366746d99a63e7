"""The final race: the finalists re-timed round-robin in this process, A B C A B C …, then a verdict.

It is a race in the racing-algorithm sense: after ``min_rounds`` rounds, a
finalist whose paired-bootstrap interval says it is slower than the current
leader beyond doubt (at ``ELIMINATE`` confidence, stricter than the verdict's,
since the test is repeated every round) takes no more samples, and the race
ends once only the leader is left (the reference runs while anyone else
does: every ratio is to it).  Time goes to the designs that could still win.

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
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .candidate import Candidate
from .identity import measure_key
from .model import sample_shape
from .part import Part, Run
from .stats import slower_beyond_doubt
from .verdict import RaceResult, decide

if TYPE_CHECKING:
    import optuna

RACE_ATTR = "race:"
#: Confidence that a finalist is slower than the leader before it leaves the race.
ELIMINATE = 0.99
#: Bootstrap resamples behind each elimination test (a test per finalist per round: kept cheap).
RESAMPLES = 300


def min_rounds(rounds: int) -> int:
    """Rounds every finalist runs before any can leave the race: a third of them, at least five (a bootstrap
    over fewer rounds is too optimistic to end a design's chances)."""
    return min(rounds, max(5, rounds // 3))


def still_in(samples: Sequence[Sequence[float]], active: Sequence[bool], reference: int, seed: int) -> list[bool]:
    """Which finalists stay in the race after a round (``samples``: seconds per round, all so far).

    The leader is the active finalist with the lowest median; any other
    active one stays unless :func:`slower_beyond_doubt`.  The reference
    stays while another finalist besides the leader does; when only the
    leader is left, everyone is out and the race ends.
    """
    live = [i for i, a in enumerate(active) if a and samples[i]]
    if not live:
        return [False] * len(samples)
    lead = min(live, key=lambda i: (statistics.median(samples[i]), i))
    keep = [False] * len(samples)
    keep[lead] = True
    for i in live:
        if i not in (lead, reference):
            keep[i] = not slower_beyond_doubt(samples[lead], samples[i], ELIMINATE, RESAMPLES, seed + i)
    contenders = [i for i in live if keep[i] and i not in (lead, reference)]
    if reference in live and reference != lead:
        keep[reference] = bool(contenders) or not slower_beyond_doubt(
            samples[lead], samples[reference], ELIMINATE, RESAMPLES, seed + reference
        )
    if sum(keep) <= 1:
        return [False] * len(samples)
    return keep


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
            samples = self._time(finalists, finalists.index(reference))
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

    def _time(self, finalists: Sequence[Candidate], reference: int) -> list[list[float] | None]:
        rounds = self.settings.race_rounds
        self.report("race", 0, rounds, None, None, f"final race: {len(finalists)} designs, up to {rounds} rounds")
        mset = self.measurer.settings
        items = [(self.build(c.design), sample_shape(c.design, mset)) for c in finalists]
        active = [True] * len(items)
        first = min_rounds(rounds)
        seed = self.settings.seed or 0

        def keep(samples: Sequence[Sequence[float]]) -> list[bool]:
            done = max(len(s) for s in samples)
            verdict = [True] * len(samples) if done < first else still_in(samples, active, reference, seed)
            active[:] = [a and v for a, v in zip(active, verdict, strict=True)]
            left = sum(active)
            self.report("race", done, rounds, None, None, f"round {done}: {left} of {len(samples)} still racing")
            return verdict

        results = self.measurer.interleaved(items, rounds, keep=keep)
        samples: list[list[float] | None] = []
        for result in results:
            if isinstance(result, Exception):
                samples.append(None)
                continue
            self.tally.timed_s += result.timed_s
            samples.append(list(result.samples_s))
        done = max((len(s) for s in samples if s), default=0)
        self.report("race", rounds, rounds, 0.0, None, f"final race done: {done} rounds")
        return samples

    def _key(self, finalists: Sequence[Candidate]) -> str:
        # By what ran (measurement keys), not by option keys: a changed problem races its new modules.
        text = json.dumps(sorted(measure_key(c.design, self.measurer) for c in finalists))
        return hashlib.sha1(text.encode()).hexdigest()[:16]

"""Results writing: the study's trials as a ranking, ``results.json`` and ``pareto.html`` rewritten atomically."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MeasureError
from .measure import Measurement
from .model import LatencyModel
from .pareto_page import pareto_html
from .part import Part, Run
from .stats import pareto_front
from .study import StudyStore, redact
from .values import Candidate, FailedCandidate, Keys, RankResult
from .verdict import RaceResult, model_quality

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


def trial_record(result: Measurement) -> dict[str, Any]:
    """What a measured trial keeps in ``user_attrs["measurement"]``."""
    return {
        "throughput": result.throughput,
        "median_s": result.median_s,
        "iqr_s": result.iqr_s,
        "spread": result.spread,
        "samples": len(result.samples_s),
        "inner": result.inner,
        "attempts": result.attempts,
        "flagged": result.flagged,
        "peak_memory_bytes": result.peak_memory_bytes,
        "timed_s": result.timed_s,
        "env": result.env.to_dict(),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def front(candidates: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """Pareto front: throughput up, parameters down, and peak memory down where every candidate has it."""
    with_memory = all(c.peak_memory_bytes is not None for c in candidates)
    points = [
        (-c.throughput, float(c.design.params.total), *((float(c.peak_memory_bytes or 0),) if with_memory else ()))
        for c in candidates
    ]
    chosen = pareto_front(points)
    return tuple(sorted((candidates[i] for i in chosen), key=lambda c: c.design.params.total))


def atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a kill never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class ResultsWriter(Part):
    """Turns the study's trials into a :class:`RankResult` and keeps the results files current."""

    def __init__(self, run: Run, store: StudyStore, model: LatencyModel, results_dir: Path) -> None:
        super().__init__(run)
        self.store = store
        self.model = model
        self.results_dir = results_dir
        self.started = time.perf_counter()
        self.latest: tuple[Candidate, ...] = ()

    def collect(self, trials: Sequence[FrozenTrial]) -> tuple[tuple[Candidate, ...], tuple[FailedCandidate, ...]]:
        """Measured designs best first (ties: fewer params, then earlier trial) and the designs that failed."""
        from optuna.trial import TrialState

        rows = []
        failed = []
        seen: set[Keys] = set()
        for trial in trials:
            keys = self.choices.of_trial(trial)
            if keys is None:
                continue
            failure = trial.state == TrialState.FAIL and "error" in trial.user_attrs
            if failure and "same_as" not in trial.user_attrs and self.store.current(trial, keys):
                failed.append(FailedCandidate(trial.number, keys, str(trial.user_attrs["error"])))
            if trial.state != TrialState.COMPLETE or "measurement" not in trial.user_attrs or keys in seen:
                continue
            if not self.store.current(trial, keys):
                continue  # measured another module under these keys (the problem changed) or an older study
            design = self.choices.design(keys)
            if design is None or trial.value is None:
                continue
            seen.add(keys)
            rows.append((trial, keys, design))
        rows.sort(key=lambda r: (-float(r[0].value or 0.0), r[2].params.total, r[0].number))
        if self.settings.model:  # calibrated on every measured design before predicting them
            self.model.calibrate({k: float(t.user_attrs["measurement"].get("median_s", 0.0)) for t, k, _ in rows})
        candidates = []
        for place, (trial, keys, design) in enumerate(rows, 1):
            record = trial.user_attrs.get("measurement", {})
            candidates.append(
                Candidate(
                    rank=place,
                    trial=trial.number,
                    keys=keys,
                    design=design,
                    throughput=float(trial.value or 0.0),
                    median_s=float(record.get("median_s", math.nan)),
                    iqr_s=float(record.get("iqr_s", math.nan)),
                    flagged=bool(record.get("flagged", False)),
                    peak_memory_bytes=record.get("peak_memory_bytes"),
                    predicted_s=self.model.predict(keys),
                )
            )
        self.latest = tuple(candidates)
        return tuple(candidates), tuple(failed)

    def result(
        self,
        trials: Sequence[FrozenTrial],
        stop_reason: str,
        reference: Keys | None = None,
        race: RaceResult | None = None,
    ) -> RankResult:
        candidates, failed = self.collect(trials)
        held = self.model.held_out
        quality = replace(
            model_quality(candidates),
            held_out_designs=held.designs,
            held_out_within_10pct=held.within_10pct,
            held_out_spearman=held.spearman,
            form=held.form,
            ranks=held.ranks,
        )
        if race is not None:  # the race is the headline: its order, its figures on the finalists
            candidates, race = race.rerank(candidates, self.measurer.settings.batch_size)
        plot = self.results_dir / "pareto.html" if self.settings.pareto and candidates else None
        return RankResult(
            problem=self.choices.space.name,
            study_name=self.store.name,
            storage=redact(self.store.url),
            results_path=self.results_dir / "results.json",
            plot_path=plot,
            candidates=candidates,
            pareto=front(candidates) if self.settings.pareto else (),
            failed=failed,
            run=self.tally.counts(reused=sum(c.trial not in self.tally.mine for c in candidates)),
            spearman=quality.held_out_spearman if quality.held_out_spearman is not None else quality.spearman,
            environment=self.measurer.env,
            settings=self.settings,
            measure=self.measurer.settings,
            timed_s=self.tally.timed_s,
            wall_s=time.perf_counter() - self.started,
            stop_reason=stop_reason,
            reference=next((c for c in candidates if c.keys == reference), None),
            race=race,
            quality=quality,
        )

    def write(
        self,
        trials: Sequence[FrozenTrial],
        stop_reason: str = "",
        reference: Keys | None = None,
        race: RaceResult | None = None,
    ) -> RankResult:
        result = self.result(trials, stop_reason, reference, race)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(result.results_path, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        if result.plot_path is not None:
            atomic_write(result.plot_path, pareto_html(result))
        return result

    def finish(
        self, trials: Sequence[FrozenTrial], stop_reason: str, nothing_valid: bool, reference: Keys | None = None
    ) -> RankResult:
        """The final result; MeasureError when the study holds no measured design at all.

        ``nothing_valid``: the whole space was enumerated and no combination
        meets the global constraints (a clearer message than "nothing measured").
        """
        result = self.write(trials, stop_reason, reference)
        if result.winner is None:
            name = self.choices.space.name
            if nothing_valid:
                raise MeasureError(f"{name}: no combination of the step options meets the global constraints")
            reasons = "; ".join(f"trial {f.trial}: {f.reason}" for f in result.failed[:3])
            raise MeasureError(
                f"{name}: no design could be measured ({len(result.failed)} failed, "
                f"{self.tally.invalid} invalid proposals){': ' + reasons if reasons else ''}"
            )
        return result

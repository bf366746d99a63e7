"""Shared by the ranking tests: a tiny space, a fake clock whose durations follow the module timed, and a
measurer that counts what it times, so results are deterministic and expected winners are computed
independently (by building every valid design with torch and applying the same cost)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import product
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn

from archsolve.build.modules import build
from archsolve.core.recipe import AxisRecipe as R
from archsolve.design.design import Design
from archsolve.design.search_space import StepChoice, TableSpace
from archsolve.errors import MeasureError
from archsolve.rank import RankSettings, open_storage
from archsolve.rank.candidate import Candidate
from archsolve.rank.measure import Measurement, Measurer
from archsolve.rank.settings import MeasureSettings

MODEL_ROUNDS = 3
RACE_ROUNDS = 5


# --- a tiny space and a fake clock ---------------------------------------------------------------------


def tiny_space(name: str = "tiny") -> TableSpace:
    """3 steps x 4 choices from 2x4x4 to 2x16x16: valid when exactly two steps double the size (27 of 64)."""

    def choices(c: int) -> tuple[StepChoice, ...]:
        return (
            StepChoice.of("ct k2s2", ["conv_transpose"], [R(2, 2)], c),
            StepChoice.of("ct k4s2p1", ["conv_transpose"], [R(4, 2, 1)], c),
            StepChoice.of("conv k3p1", ["conv"], [R(3, 1, 1)], c),
            StepChoice.of("up2+conv1", ["upsample", "conv"], [R(stride=2), R(1)], c),
        )

    return TableSpace(name, (2, 4, 4), (choices(4), choices(3), choices(2)), out_shape=(2, 16, 16))


def fake_cost(module: nn.Module) -> float:
    """Seconds per call from what torch reports about the module: additive over leaf modules."""
    total = 0.0
    for leaf in module.modules():
        if next(leaf.children(), None) is not None:
            continue
        weights = sum(p.numel() for p in leaf.parameters(recurse=False))
        total += 1e-6 * (1 + weights) if weights else 2e-7
    return total


class FakeTimer:
    """Runs the module once (so a broken forward still fails) and answers ``fake_cost`` per iteration."""

    def __init__(self, sleep_s: float = 0.0, interrupt_on: int | None = None) -> None:
        self.sleep_s = sleep_s
        self.interrupt_on = interrupt_on
        self.timed = 0

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
        run()
        self.timed += 1
        if self.interrupt_on is not None and self.timed == self.interrupt_on:
            raise KeyboardInterrupt
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return fake_cost(module) * iterations


class CountingMeasurer(Measurer):
    """Counts design measurements, step timings (the model's interleaved pass) and race entries separately.

    The test settings give the model ``MODEL_ROUNDS`` and the race ``RACE_ROUNDS``, which tells the two apart.
    """

    def __init__(self, timer: FakeTimer | None = None, **settings: Any) -> None:
        fields = {"device": "cpu", "batch_size": 2, "warmup": 1, "repeats": 3, "min_sample_s": 0.0, "threads": 1}
        fields |= settings
        super().__init__(MeasureSettings(**fields), timer=timer or FakeTimer())
        self.designs = 0
        self.steps = 0
        self.raced: list[int] = []

    def measure(self, module: torch.nn.Module, sample_shape: Sequence[int], **options: Any) -> Measurement:
        result = super().measure(module, sample_shape, **options)
        self.designs += 1
        return result

    def interleaved(
        self, items: Sequence[tuple[torch.nn.Module, Sequence[int]]], rounds: int, **options: Any
    ) -> list[Measurement | MeasureError]:
        results = super().interleaved(items, rounds, **options)
        if rounds == RACE_ROUNDS:
            self.raced.append(len(items))
        else:
            self.steps += len(items)
        return results


def valid_designs(space: TableSpace) -> dict[tuple[str, ...], Design]:
    options = space.step_options()
    found = {}
    for picks in product(*(range(len(o)) for o in options)):
        design = space.design(picks)
        if design is not None:
            found[tuple(options[i][p] for i, p in enumerate(picks))] = design
    return found


def truth_designs(space: TableSpace) -> list[Design]:
    return list(valid_designs(space).values())


def true_throughputs(space: TableSpace, batch: int = 2) -> dict[tuple[str, ...], float]:
    """What the fake clock makes of each valid design, from the real torch modules."""
    return {keys: batch / fake_cost(build(design)) for keys, design in valid_designs(space).items()}


def settings(tmp_path: Path, **changes: Any) -> RankSettings:
    """Rank settings in ``tmp_path``; the study is a journal file (fast) unless ``storage=None`` asks for SQLite."""
    defaults = {
        "results_dir": tmp_path / "results",
        "seed": 0,
        "trials": 6,
        "storage": f"journal://{tmp_path}/study.log",
        "model_repeats": MODEL_ROUNDS,
        "race_rounds": RACE_ROUNDS,
    }
    return RankSettings(**(defaults | changes))


def load(tmp_path: Path, storage: str | None = None) -> optuna.Study:
    """The one study in ``storage`` (default: the default SQLite file under ``tmp_path``)."""
    storage = storage or f"sqlite:///{tmp_path / 'results' / 'study.db'}"
    (name,) = optuna.get_all_study_names(open_storage(storage))
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def journal(tmp_path: Path) -> optuna.Study:
    return load(tmp_path, f"journal://{tmp_path}/study.log")


def measured_keys(study: optuna.Study) -> list[tuple[str, ...]]:
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE" and "measurement" in t.user_attrs]
    return [tuple(t.params[f"step{i}"] for i in range(len(t.params))) for t in done]


def candidates(space: TableSpace, count: int) -> list[Candidate]:
    """``count`` valid designs of the tiny space as candidates, params ascending (rank = position)."""
    designs: list[tuple[tuple[str, ...], Design]] = []
    options = space.step_options()
    for a in range(4):
        for b in range(4):
            for c in range(4):
                design = space.design([a, b, c])
                if design is not None:
                    designs.append(((options[0][a], options[1][b], options[2][c]), design))
    designs.sort(key=lambda kd: kd[1].params.total)
    distinct = list({d.params.total: (k, d) for k, d in designs}.values())[:count]
    return [Candidate(i + 1, i, k, d, 1.0, 1.0, 0.0, False, None, None) for i, (k, d) in enumerate(distinct)]

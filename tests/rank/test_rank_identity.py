"""Measurement identity: a study reuses a trial only for the very module, input, settings and machine it measured.

Each test ranks a small problem, edits one field of the problem or of its
``[build]``/``[rank]`` tables and ranks again in the same storage.  What must
be reused is decided independently of the key, by torch: a design of the
second run is "the same module" as one of the first when the first's weights
load into it (``load_state_dict(strict=True)``), both give the same output
on the same input, and the input shape and measure settings are equal.
Everything else must be measured again.  Timings come from the fake clock of
test_rank (derived from the module), so no number depends on the machine.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import archsolve
from archsolve.build.modules import build
from archsolve.design.design import Design
from archsolve.rank import RankResult, open_storage, rank
from archsolve.solve import SolutionSpace
from helpers.rank_fakes import CountingMeasurer, fake_cost

ROOT = Path(__file__).parent.resolve().parents[1]
ARCHSOLVE = Path(__file__).parent.resolve().parents[1] / ".venv" / "bin" / "archsolve"

BASE: dict[str, Any] = {
    "name": "tiny-decoder",
    "sizes": [4, 8, 16],
    "channels": [8, 4, 2],
    "ops": "conv_transpose",
    "search": {"kernel": [2, 4], "stride": 2, "padding": [0, 1]},
    "rank": {"batch_size": 2, "warmup": 1, "repeats": 3, "trials": 3},
    "build": {"norm": "batch", "activation": "relu", "output_activation": "none"},
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def ranked(
    tmp_path: Path, changes: dict[str, Any], threads: int = 1, study: str | None = None
) -> tuple[RankResult, CountingMeasurer]:
    """Rank the edited problem in the shared journal storage under ``tmp_path`` on the fake clock."""
    problem = archsolve.Problem.create(**merged(BASE, changes))
    solution = archsolve.solve(problem)
    search, measure = problem.rank, problem.measure
    search = replace(
        search,
        results_dir=tmp_path / "results" / problem.name,
        storage=f"journal://{tmp_path}/study.log",
        seed=0,
        study_name=study,
        model=False,
        race=False,
    )
    fields = {f: getattr(measure, f) for f in ("dtype", "batch_size", "mode", "warmup", "repeats", "channels_last")}
    measurer = CountingMeasurer(**fields, threads=threads, time_steps=measure.time_steps)
    return rank(SolutionSpace(solution), search, measurer=measurer), measurer


def same_module(a: Design, b: Design) -> bool:
    """Torch's answer: b takes a's weights strictly and computes the same function on the same input."""
    if a.in_shape != b.in_shape:
        return False
    torch.manual_seed(0)
    first, second = build(a).eval(), build(b).eval()
    try:
        second.load_state_dict(first.state_dict(), strict=True)
    except RuntimeError:
        return False
    x = torch.randn(2, *a.in_shape)
    with torch.no_grad():
        return first(x).shape == second(x).shape and torch.equal(first(x), second(x))


# (edit, whether the measure settings change too: then nothing may be reused)
EDITS: list[tuple[dict[str, Any], bool]] = [
    ({}, False),
    ({"description": "edited"}, False),
    ({"name": "another-decoder"}, False),  # another study in the same storage: same modules, adopted
    ({"channels": [8, 6, 2]}, False),
    ({"channels": [16, 4, 2]}, False),
    ({"sizes": [4, 8, 16], "search": {"kernel": [2, 4], "stride": 2, "padding": [0, 2]}}, False),
    ({"objective": {"minimize": "macs"}}, False),
    ({"constraints": {"max_params": 450}}, False),
    ({"build": {"norm": "none"}}, False),
    ({"build": {"norm": "instance"}}, False),
    ({"build": {"activation": "gelu"}}, False),
    ({"build": {"activation": "leaky_relu"}}, False),
    ({"build": {"output_activation": "tanh"}}, False),
    ({"build": {"bias": False}}, False),
    ({"build": {"bias": True}}, False),
    ({"build": {"norm_first": False}}, False),
    ({"build": {"norm_last": True}}, False),
    ({"build": {"negative_slope": 0.1}}, False),  # unused under relu: the same module runs
    ({"build": {"upsample_mode": "bilinear"}}, False),  # no upsample layer: the same module runs
    ({"rank": {"batch_size": 4}}, True),
    ({"rank": {"dtype": "bfloat16"}}, True),
    ({"rank": {"mode": "train"}}, True),
    ({"rank": {"channels_last": True}}, True),
    ({"rank": {"repeats": 4}}, True),
    ({"rank": {"warmup": 2}}, True),
    ({"rank": {"seed": 3, "sampler": "random"}}, False),
]


def reused(result: RankResult, first: RankResult, trial: int) -> bool:
    """Whether ``result`` took candidate ``trial``'s figures from the study instead of timing it."""
    import optuna

    study = optuna.load_study(study_name=result.study_name, storage=open_storage(result.storage))
    attrs = study.get_trials(deepcopy=False)[trial].user_attrs
    earlier = result.study_name == first.study_name and trial in {c.trial for c in first.candidates}
    return earlier or "adopted_from" in attrs


@pytest.mark.parametrize(("edit", "settings_change"), EDITS, ids=[str(e) for e, _ in EDITS])
def test_an_edited_problem_reuses_exactly_the_modules_that_did_not_change(
    tmp_path: Path, edit: dict[str, Any], settings_change: bool
) -> None:
    first, _ = ranked(tmp_path, {})
    before = [c.design for c in first.candidates]
    second, measurer = ranked(tmp_path, edit)
    assert len(second.candidates) == 3
    expected = [not settings_change and any(same_module(old, c.design) for old in before) for c in second.candidates]
    assert [reused(second, first, c.trial) for c in second.candidates] == expected
    assert measurer.designs == expected.count(False)
    assert second.run.measured == expected.count(False) and second.run.reused == expected.count(True)
    # Every figure is the fake clock's for the module ranked now, never the one measured before under the same keys.
    batch = measurer.settings.batch_size
    for c in second.candidates:
        assert c.throughput == pytest.approx(batch / fake_cost(build(c.design)))


def test_threads_are_part_of_what_was_measured(tmp_path: Path) -> None:
    ranked(tmp_path, {})
    again, measurer = ranked(tmp_path, {}, threads=2)
    assert measurer.designs == 3 and again.run.reused == 0
    back, measurer = ranked(tmp_path, {}, threads=1)
    assert measurer.designs == 0 and back.run.reused == 3


def test_a_study_without_measurement_keys_is_measured_again_not_crashed_on(tmp_path: Path) -> None:
    import optuna

    first, _ = ranked(tmp_path, {})
    storage = open_storage(first.storage)
    done = optuna.load_study(study_name=first.study_name, storage=storage).get_trials(deepcopy=False)
    old = optuna.create_study(study_name="old", storage=storage, direction="maximize")
    for trial in done:  # what a study written before the key looked like: the same trials, no key
        attrs = {k: v for k, v in trial.user_attrs.items() if k != "identity"}
        old.add_trial(
            optuna.trial.create_trial(
                params=trial.params, distributions=trial.distributions, value=trial.value, user_attrs=attrs
            )
        )
    optuna.delete_study(study_name=first.study_name, storage=storage)
    again, measurer = ranked(tmp_path, {}, study="old")
    assert measurer.designs == 3 and again.run.reused == 0 and len(again.candidates) == 3
    # Nor are keyless trials adopted by another study of the storage: only the ones just measured are.
    other, measurer = ranked(tmp_path, {"name": "another-decoder"})
    keyed = {c.trial: c.design for c in again.candidates}
    for c in other.candidates:
        source = study_attrs(other, c.trial).get("adopted_from")
        twins = [t for t, design in keyed.items() if same_module(design, c.design)]
        assert (source["trial"] if source else None) == (twins[0] if twins else None)
    assert measurer.designs == sum("adopted_from" not in study_attrs(other, c.trial) for c in other.candidates)


def test_a_named_study_whose_options_changed_is_a_clear_error(tmp_path: Path) -> None:
    ranked(tmp_path, {}, study="mine")
    with pytest.raises(archsolve.InputError, match="other options for step0"):
        ranked(tmp_path, {"channels": [8, 6, 2]}, study="mine")


def study_attrs(result: RankResult, trial: int) -> dict[str, Any]:
    import optuna

    study = optuna.load_study(study_name=result.study_name, storage=open_storage(result.storage))
    return dict(study.get_trials(deepcopy=False)[trial].user_attrs)


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_the_issue_reproduction_re_measures_a_changed_mnist_decoder(tmp_path: Path) -> None:
    """Issue 17: ``--set 'channels=[1024,32,1]'`` printed the 18,848-param model's speed for a 295,328-param one."""
    base = [str(ARCHSOLVE), "solve", str(ROOT / "problems" / "mnist_decoder.toml"), "--trials", "2", "--quiet"]
    base += ["--results-dir", str(tmp_path), "--set", "rank.batch_size=2", "--set", "rank.repeats=3"]

    def run(*extra: str) -> tuple[int, int]:
        done = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        line = next(line for line in done.stdout.splitlines() if line.startswith("this run: "))
        measured, reused = (int(part.split()[0]) for part in line.removeprefix("this run: ").split(", ")[:2])
        return measured, reused

    assert run() == (2, 0)
    assert run("--set", "channels=[1024,32,1]") == (2, 0)  # the same option keys, other modules
    assert run("--set", 'build.norm="none"') == (2, 0)
    assert run() == (0, 2)  # the first problem's measurements are still there

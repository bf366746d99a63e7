"""The ranker: Optuna study over a space, reuse, resume, kill -9, failures, several workers, model, Pareto.

Ranking logic runs on a fake timer whose duration is derived from the module
being timed (its torch parameter count, summed over leaf modules), so results
are deterministic and the expected winner is computed independently: by
building every valid design with torch and applying the same cost.  One smoke
test measures for real.  Subprocess tests import this module as their worker
(``worker_main``) so parent and children share one space and one timer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from archsolve.build.modules import build
from archsolve.core.recipe import AxisRecipe as R
from archsolve.design.design import Design
from archsolve.design.search_space import StepChoice, TableSpace
from archsolve.errors import InputError, MeasureError
from archsolve.rank import (
    RankProgress,
    RankSettings,
    open_storage,
    pareto_front,
    rank,
    redact,
    spearman,
)
from archsolve.rank.measure import Measurement
from archsolve.rank.ranker import RETIME
from archsolve.rank.settings import MeasureSettings
from helpers.rank_fakes import (
    CountingMeasurer,
    FakeTimer,
    fake_cost,
    journal,
    load,
    measured_keys,
    settings,
    tiny_space,
    true_throughputs,
    truth_designs,
    valid_designs,
)

TESTS = Path(__file__).parent.parent
pytestmark = pytest.mark.filterwarnings(
    "error::optuna.exceptions.ExperimentalWarning", "error::FutureWarning", "error::DeprecationWarning"
)


@pytest.fixture(autouse=True)
def keep_threads() -> Any:
    """The measurers here run torch on one thread (steadier on a shared machine); give the rest back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# --- pure helpers ------------------------------------------------------------------------------------


def test_spearman_matches_known_values() -> None:
    # The example of scipy.stats.spearmanr's documentation.
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1.0], [2.0]) is None


def test_pareto_front_keeps_exactly_the_non_dominated_points() -> None:
    points = [(1, 5), (2, 2), (3, 1), (3, 3), (1, 6), (4, 4)]
    assert pareto_front(points) == [0, 1, 2]


def test_storage_urls() -> None:
    assert redact("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"
    with pytest.raises(InputError, match="storage"):
        open_storage("nosuchdb://x")


# --- ranking logic on the fake clock -------------------------------------------------------------------------------


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_exhaustive_run_ranks_every_valid_design_and_never_measures_an_invalid_one(tmp_path: Path) -> None:
    space = tiny_space()
    truth = true_throughputs(space)
    measurer = CountingMeasurer()
    built: list[Design] = []

    def tracking_build(design: Design) -> nn.Module:
        built.append(design)
        return build(design)

    result = rank(space, settings(tmp_path, trials=100), progress=None, measurer=measurer, build=tracking_build)
    assert result.stop_reason == "every valid design measured"
    assert {c.keys for c in result.candidates} == set(truth)
    assert measurer.designs == len(truth) == 27  # each valid design exactly once, no invalid one
    whole = [d for d in built if len(d.steps) == 3]
    assert measurer.raced == [5]  # the race: the four best and the reference
    # screening, the last fit's interleaved re-time (at most RETIME designs), the race: only valid designs built
    assert len(whole) == 27 + min(27, RETIME) + 5 and all(d in truth_designs(space) for d in whole)
    assert [c.throughput for c in result.candidates] == sorted(truth.values(), reverse=True)
    assert result.winner is not None and result.winner.throughput == pytest.approx(max(truth.values()))
    # The fake clock is additive over modules, so the per-step model predicts the order exactly.
    assert result.spearman == pytest.approx(1.0)


def test_model_enqueues_the_reference_the_predicted_best_and_a_spread_then_follows_a_model_that_ranks(
    tmp_path: Path,
) -> None:
    space = tiny_space()
    truth = true_throughputs(space)
    designs = valid_designs(space)
    measurer = CountingMeasurer()
    result = rank(space, settings(tmp_path, trials=8), measurer=measurer)
    assert measurer.designs == 8
    assert result.winner is not None
    assert result.winner.throughput == pytest.approx(max(truth.values()))
    study = journal(tmp_path)
    done = [t for t in study.get_trials() if "measurement" in t.user_attrs]
    # A quarter of the budget from the step-sum model, as many spread over its order (to calibrate it on),
    # then, since the held-out figures say the model ranks, its calibrated picks for the rest.
    assert [t.user_attrs.get("source") for t in done] == ["reference", *["model"] * 2, *["spread"] * 2, *["model"] * 3]
    # Without a reference, the design with the fewest params serves (a TableSpace has no objective).
    fewest = min(designs, key=lambda k: designs[k].params.total)
    assert result.reference is not None and result.reference.keys == fewest
    # The model's five are the five fastest of every valid design (the fake clock is additive over modules).
    fastest = sorted((k for k in truth if k != fewest), key=lambda k: -truth[k])[:5]
    chosen = [tuple(t.params[f"step{i}"] for i in range(3)) for t in done if t.user_attrs["source"] == "model"]
    assert set(chosen) == set(fastest)
    spread = [tuple(t.params[f"step{i}"] for i in range(3)) for t in done if t.user_attrs["source"] == "spread"]
    assert all(truth[k] < truth[fastest[-1]] for k in spread)  # from further down the order
    assert result.quality is not None and result.quality.ranks is True
    assert result.quality.held_out_designs == 8 and result.quality.held_out_spearman == pytest.approx(1.0)


def test_invalid_proposals_are_pruned_with_a_reason_and_not_measured(tmp_path: Path) -> None:
    space = tiny_space()
    measurer = CountingMeasurer()
    result = rank(space, settings(tmp_path, trials=8, model=False, sampler="random"), measurer=measurer)
    study = journal(tmp_path)
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    valid = valid_designs(space)
    assert pruned, "random proposals over 64 combinations with 27 valid should hit invalid ones"
    for t in pruned:
        assert "global constraint" in t.user_attrs["invalid"]
        assert tuple(t.params[f"step{i}"] for i in range(3)) not in valid
    assert measurer.designs == len(result.candidates) == 8
    assert result.run.invalid == len(pruned)


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_a_second_run_reuses_every_finished_measurement(tmp_path: Path) -> None:
    space = tiny_space()
    first = CountingMeasurer()
    one = rank(space, settings(tmp_path, trials=5, storage=None), measurer=first)
    assert first.designs == 5 and first.steps > 0
    second = CountingMeasurer()
    two = rank(space, settings(tmp_path, trials=5, storage=None), measurer=second)
    assert (second.designs, second.steps) == (0, 0)
    # the first run's interleaved timings: its steps, and its 5 measured designs re-timed for the last fit
    assert two.run.step_timings_reused == first.steps - 5
    assert [(c.keys, c.throughput) for c in two.candidates] == [(c.keys, c.throughput) for c in one.candidates]
    third = CountingMeasurer()
    three = rank(space, settings(tmp_path, trials=7, storage=None), measurer=third)
    assert third.designs == 2
    assert len(three.candidates) == 7
    assert len(set(measured_keys(load(tmp_path)))) == 7  # no design measured twice


def test_sampler_duplicates_reuse_the_measured_value(tmp_path: Path) -> None:
    space = tiny_space()
    result = rank(space, settings(tmp_path, trials=12, model=False), measurer=CountingMeasurer())
    study = journal(tmp_path)
    by_number = {t.number: t for t in study.get_trials()}
    reused = [t for t in study.get_trials() if "reused_from" in t.user_attrs]
    assert reused and len(reused) == result.run.repeats
    for t in reused:
        source = by_number[t.user_attrs["reused_from"]]
        assert t.value == source.value and t.params == source.params
    assert len(set(measured_keys(study))) == len(measured_keys(study)) == 12


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_interrupt_mid_measurement_keeps_finished_trials(tmp_path: Path) -> None:
    space = tiny_space()
    # Timer calls per design: 1 warm-up + 3 samples; the 10th call is inside the third design.
    timer = FakeTimer(interrupt_on=10)
    with pytest.raises(KeyboardInterrupt):
        rank(space, settings(tmp_path, trials=6, model=False, storage=None), measurer=CountingMeasurer(timer))
    study = load(tmp_path)
    kept = measured_keys(study)
    assert len(kept) == 2
    assert all(t.state.name != "RUNNING" for t in study.get_trials())  # the interrupted trial was closed
    saved = json.loads((tmp_path / "results" / "results.json").read_text())
    assert {tuple(c["choices"]) for c in saved["candidates"]} == set(kept)
    again = CountingMeasurer()
    result = rank(space, settings(tmp_path, trials=6, model=False, storage=None), measurer=again)
    assert again.designs == 4
    assert set(kept) <= {c.keys for c in result.candidates}


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_a_design_that_fails_becomes_a_failed_trial_and_the_run_goes_on(tmp_path: Path) -> None:
    space = tiny_space()
    truth = true_throughputs(space)
    bad_build = ("ct k4s2p1", "ct k4s2p1", "conv k3p1")
    bad_forward = ("ct k2s2", "ct k2s2", "conv k3p1")
    options = space.step_options()

    class Explodes(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("CUDA out of memory (simulated)")

    def keys_of(design: Design) -> tuple[str, ...] | None:
        for keys, d in valid_designs(space).items():
            if d == design:
                return keys
        return None

    def flaky_build(design: Design) -> nn.Module:
        keys = keys_of(design)
        if keys == bad_build:
            raise RuntimeError("build failed (simulated)")
        if keys == bad_forward:
            return Explodes()
        return build(design)

    measurer = CountingMeasurer()
    result = rank(space, settings(tmp_path, trials=100), measurer=measurer, build=flaky_build)
    failed = {f.keys: f.reason for f in result.failed}
    assert set(failed) == {bad_build, bad_forward}
    assert "build failed" in failed[bad_build]
    assert "RuntimeError" in failed[bad_forward] and "out of memory" in failed[bad_forward]
    assert len(result.candidates) == 25
    best_ok = max(v for k, v in truth.items() if k not in failed)
    assert result.winner is not None and result.winner.throughput == pytest.approx(best_ok)
    # A re-run does not try the failing designs again.
    again = CountingMeasurer()
    rank(space, settings(tmp_path, trials=100), measurer=again, build=flaky_build)
    assert again.designs == 0
    assert options  # the space is unchanged


def test_results_json_and_pareto_plot_are_written(tmp_path: Path) -> None:
    space = tiny_space()
    result = rank(space, settings(tmp_path, trials=6), measurer=CountingMeasurer())
    saved = json.loads(result.results_path.read_text())
    assert saved["problem"] == "tiny"
    assert saved["winner"]["throughput"] == pytest.approx(result.candidates[0].throughput)
    assert [c["throughput"] for c in saved["candidates"]] == sorted(
        (c["throughput"] for c in saved["candidates"]), reverse=True
    )
    first = saved["candidates"][0]
    assert first["layers"][0]["op"] in {"conv_transpose", "conv", "upsample"}
    assert first["params"] == sum(p.numel() for p in build(result.candidates[0].design).parameters()) + sum(
        b.numel() for name, b in build(result.candidates[0].design).named_buffers() if "running" in name
    )
    assert saved["environment"]["torch"] == torch.__version__
    assert saved["measure_settings"]["device"] == "cpu"
    # Pareto: no saved front member is beaten on both throughput and params by any candidate.
    for member in saved["pareto"]:
        assert not any(
            c["throughput"] > member["throughput"] and c["params"] < member["params"] for c in saved["candidates"]
        )
    assert result.plot_path is not None
    page = result.plot_path.read_text()
    assert "Plotly.newPlot" in page and "Pareto front" in page


def test_progress_reports_eta_and_best_and_the_library_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events: list[RankProgress] = []
    rank(tiny_space(), settings(tmp_path, trials=4), progress=events.append, measurer=CountingMeasurer())
    phases = {e.phase for e in events}
    assert phases == {"model", "search", "race"}
    search = [e for e in events if e.phase == "search"]
    assert search[-1].done == search[-1].total == 4
    assert search[-1].best_throughput is not None and search[-1].eta_s == 0
    assert capsys.readouterr() == ("", "")


def test_a_study_measured_under_other_settings_measures_again_and_keeps_both(tmp_path: Path) -> None:
    space = tiny_space()
    shared = settings(tmp_path, trials=2, study_name="shared", storage=None, model=False, race=False)
    rank(space, shared, measurer=CountingMeasurer())
    other = CountingMeasurer(batch_size=4)
    again = rank(space, shared, measurer=other)
    # Figures taken at batch 2 say nothing about batch 4: nothing is reused, both designs are measured anew.
    assert other.designs == 2 and again.run.reused == 0
    assert all(c.throughput == pytest.approx(4 / fake_cost(build(c.design))) for c in again.candidates)
    back = CountingMeasurer()
    third = rank(space, shared, measurer=back)
    assert back.designs == 0 and third.run.reused == 2  # the batch-2 measurements are still there


def test_no_valid_design_is_a_clear_error(tmp_path: Path) -> None:
    space = TableSpace(
        "none",
        (2, 4, 4),
        ((StepChoice.of("conv k3p1", ["conv"], [R(3, 1, 1)], 2),),),
        out_shape=(2, 8, 8),
    )
    with pytest.raises(MeasureError, match="no combination"):
        rank(space, settings(tmp_path, trials=2), measurer=CountingMeasurer())


def test_real_measurement_smoke(tmp_path: Path) -> None:
    measure = MeasureSettings(device="cpu", batch_size=2, warmup=1, repeats=3, min_sample_s=0.0)
    result = rank(tiny_space(), settings(tmp_path, trials=2, model_repeats=3, storage=None), measure)
    assert result.winner is not None and result.winner.throughput > 0
    assert result.winner.median_s > 0 and result.timed_s > 0
    assert len(result.candidates) == 2


# --- processes: kill -9 and several workers -------------------------------------------------------------


def worker_main(results_dir: str, storage: str, trials: int, seed: int, sleep_s: float, model: bool) -> None:
    """Child process: rank the tiny space, print progress lines and finally the design measurement count."""
    measurer = CountingMeasurer(FakeTimer(sleep_s=sleep_s))

    def show(event: RankProgress) -> None:
        if event.phase == "search":
            print(f"measured {event.done}", flush=True)

    rank(
        tiny_space(),
        RankSettings(
            trials=trials,
            results_dir=Path(results_dir),
            storage=storage or None,
            seed=seed,
            model=model,
            study_name="shared",
        ),
        progress=show,
        measurer=measurer,
    )
    print(f"designs {measurer.designs}", flush=True)


def spawn(
    results_dir: Path, storage: str, trials: int, seed: int, sleep_s: float, model: bool
) -> subprocess.Popen[str]:
    code = (
        f"import sys; sys.path[:0] = [{str(TESTS / 'rank')!r}, {str(TESTS)!r}]; import test_rank; "
        f"test_rank.worker_main({str(results_dir)!r}, {storage!r}, {trials}, {seed}, {sleep_s}, {model})"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_kill_9_mid_study_then_rerun_keeps_every_finished_trial(tmp_path: Path) -> None:
    results = tmp_path / "results"
    child = spawn(results, "", trials=10, seed=0, sleep_s=0.03, model=True)
    assert child.stdout is not None
    deadline = time.monotonic() + 120
    for line in child.stdout:
        if line.startswith("measured") and int(line.split()[1]) >= 3:
            break
        assert time.monotonic() < deadline
    time.sleep(0.06)  # into the next measurement (each timed call sleeps 30 ms)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    storage = f"sqlite:///{results / 'study.db'}"
    killed = load(tmp_path, storage).get_trials()
    before = {t.number: (t.params, t.value) for t in killed if "measurement" in t.user_attrs}
    cut = [t.number for t in killed if t.state.name == "RUNNING" and "claim" in t.user_attrs]
    assert len(before) >= 3

    rerun = CountingMeasurer()
    result = rank(tiny_space(), settings(tmp_path, trials=10, study_name="shared", storage=None), measurer=rerun)
    after = load(tmp_path, storage)
    kept = {t.number: (t.params, t.value) for t in after.get_trials() if "measurement" in t.user_attrs}
    assert all(kept[n] == v for n, v in before.items())  # every finished trial survived, unchanged
    assert rerun.designs == 10 - len(before)  # only the missing ones were measured
    # step timings came from the study; the killed run never re-timed its designs for the last fit, so all 10 are
    assert rerun.steps == 10
    assert len(result.candidates) == 10
    states = {t.number: t.state.name for t in after.get_trials()}
    assert all(states[n] == "FAIL" for n in cut)  # the killed worker's claim was released...
    assert not [t for t in after.get_trials() if t.state.name == "RUNNING" and "claim" in t.user_attrs]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_processes_share_one_study_without_crashing_or_measuring_a_design_twice(tmp_path: Path, kind: str) -> None:
    # With the model on, every worker queues the predicted-best designs at start: on SQLite (no row locks)
    # two workers used to take the same queued trial and the second crashed with UpdateFinishedTrialError.
    results = tmp_path / "results"
    storage = f"journal://{tmp_path / 'study.log'}" if kind == "journal" else f"sqlite:///{results / 'study.db'}"
    workers = [spawn(results, storage, trials=12, seed=seed, sleep_s=0.01, model=True) for seed in range(2)]
    outputs = []
    for child in workers:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert "Error" not in err
        outputs.append(out)
    counts = [int(line.split()[1]) for out in outputs for line in out.splitlines() if line.startswith("designs")]
    study = load(tmp_path, storage)
    keys = measured_keys(study)
    # Workers check the budget before claiming, so each may overshoot it by the one design it is measuring.
    assert 12 <= len(keys) <= 13
    assert max(Counter(keys).values()) == 1  # no design measured twice
    assert sum(counts) == len(keys)  # every measurement a worker made is in the study
    assert all(t.state.name not in ("RUNNING", "WAITING") for t in study.get_trials())


def test_a_queued_trial_finished_by_another_worker_is_dropped_without_a_crash(tmp_path: Path) -> None:
    """The race itself, made deterministic: while this worker measures a queued trial, another finishes it."""
    space = tiny_space()
    storage = f"sqlite:///{tmp_path / 'results' / 'study.db'}"
    stolen: list[int] = []

    def racing_build(design: Design) -> nn.Module:
        if len(design.steps) == 3 and not stolen:
            other = load(tmp_path, storage)
            (running,) = [t for t in other.get_trials() if t.state.name == "RUNNING"]
            other.tell(running.number, 123.0)  # the other worker's tell, without a measurement record
            stolen.append(running.number)
        return build(design)

    measurer = CountingMeasurer()
    result = rank(space, settings(tmp_path, trials=4, storage=storage), measurer=measurer, build=racing_build)
    assert stolen and result.run.contested == 1
    assert result.run.measured == len(result.candidates) >= 4
    assert stolen[0] not in {c.trial for c in result.candidates}  # the stolen trial was not recorded as ours
    assert len(set(measured_keys(load(tmp_path, storage)))) == len(measured_keys(load(tmp_path, storage)))


def test_the_queue_does_not_grow_across_restarts(tmp_path: Path) -> None:
    space = tiny_space()
    rank(space, settings(tmp_path, trials=4), measurer=CountingMeasurer())
    study = journal(tmp_path)
    done = measured_keys(study)
    fresh = next(k for k in valid_designs(space) if k not in done)
    # What racing workers and early stops leave behind: a measured design queued, a design queued
    # twice, a key the space no longer offers.
    for keys in (done[0], fresh, fresh, ("ct k2s2", "gone", "conv k3p1")):
        study.enqueue_trial(
            {f"step{i}": k for i, k in enumerate(keys)}, user_attrs={"source": "model", "choices": list(keys)}
        )
    waiting = []
    for _ in range(3):
        result = rank(space, settings(tmp_path, trials=4), measurer=CountingMeasurer())
        queue = [t for t in journal(tmp_path).get_trials() if t.state.name == "WAITING"]
        waiting.append(len(queue))
        assert all(tuple(t.user_attrs["choices"]) not in measured_keys(journal(tmp_path)) for t in queue)
        assert len({tuple(t.user_attrs["choices"]) for t in queue}) == len(queue)
    assert waiting == [1, 1, 1]  # only the fresh design stays queued, once, for a run with a larger budget
    assert result.run.dropped == 0
    dropped = [t for t in journal(tmp_path).get_trials() if "dropped" in t.user_attrs]
    assert sorted(t.user_attrs["dropped"] for t in dropped) == [
        "choice no longer in the space",
        "design already measured",
        "design queued twice",
    ]
    more = rank(space, settings(tmp_path, trials=5), measurer=CountingMeasurer())
    assert fresh in {c.keys for c in more.candidates}
    assert not [t for t in journal(tmp_path).get_trials() if t.state.name == "WAITING"]


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_the_run_summary_counts_measured_and_reused_designs(tmp_path: Path) -> None:
    space = tiny_space()
    first = rank(space, settings(tmp_path, trials=12, model=False), measurer=CountingMeasurer())
    assert (first.run.measured, first.run.reused) == (12, 0)  # sampler repeats are not "reused from the study"
    assert first.run.repeats == len([t for t in journal(tmp_path).get_trials() if "reused_from" in t.user_attrs])
    second = rank(space, settings(tmp_path, trials=12, model=False), measurer=CountingMeasurer())
    assert (second.run.measured, second.run.reused) == (0, 12)
    third = rank(space, settings(tmp_path, trials=14, model=False), measurer=CountingMeasurer())
    assert (third.run.measured, third.run.reused) == (2, 12)


def test_a_missing_database_driver_names_the_package_to_install() -> None:
    # psycopg2 is not a dependency: SQLAlchemy's postgresql:// dialect fails to import it, and the message
    # must say what to install rather than Optuna's bare "Failed to import DB access module".
    pytest.importorskip("sqlalchemy")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    with pytest.raises(InputError, match=r"pip install psycopg2-binary"):
        open_storage("postgresql://me:secret@127.0.0.1:1/x")


@pytest.mark.parametrize("name", ["..", ".", "../..", "-.."])
def test_a_problem_named_like_a_parent_directory_stays_inside_the_results_directory(name: str) -> None:
    from archsolve.rank.study import slug

    found = slug(name)
    assert found not in {"", ".", ".."} and "/" not in found
    assert (Path("results") / found).resolve().parent == Path("results").resolve()


# --- screening, a model that does not rank, progress in a notebook --------------------------------------


class UnrelatedTimer(FakeTimer):
    """Every module (a step alone or a whole design) costs a pseudo-random time from its structure:
    the step timings say nothing about the designs' times, so no calibration can rank them."""

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
        run()
        digest = sum(ord(ch) * (i + 1) for i, ch in enumerate(repr(module)))
        return (1e-3 + 1e-5 * (digest * 7919 % 1000)) * iterations


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_a_model_that_does_not_rank_says_so_and_the_measurements_spread(tmp_path: Path) -> None:
    from archsolve.rank.values import ranked_text

    result = rank(tiny_space(), settings(tmp_path, trials=12), measurer=CountingMeasurer(UnrelatedTimer()))
    quality = result.quality
    assert quality is not None and quality.held_out_spearman is not None
    assert quality.held_out_spearman < 0.5 and quality.ranks is False
    done = [t for t in journal(tmp_path).get_trials() if "measurement" in t.user_attrs]
    sources = [t.user_attrs.get("source") for t in done]
    # The first picks (reference, 3 from the step sum, 3 spread), then nothing more taken from the model.
    assert sources[:7] == ["reference", *["model"] * 3, *["spread"] * 3]
    assert "model" not in sources[7:] and len(done) == 12
    text = ranked_text(result)
    assert "does not rank these designs" in text and "held out" in text
    saved = result.to_dict()["model_quality"]
    assert saved["ranks"] is False and saved["held_out_spearman"] == pytest.approx(quality.held_out_spearman)


def test_screening_takes_a_few_samples_once_however_wide_their_spread(tmp_path: Path) -> None:
    class Wide(FakeTimer):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
            run()
            self.calls += 1
            return fake_cost(module) * iterations * (1.0 if self.calls % 2 else 3.0)

    measurer = CountingMeasurer(Wide(), repeats=20, max_spread=0.01, retries=3)
    rank(tiny_space(), settings(tmp_path, trials=3, screen_repeats=4, race=False), measurer=measurer)
    records = [t.user_attrs["measurement"] for t in journal(tmp_path).get_trials() if "measurement" in t.user_attrs]
    assert len(records) == 3
    assert all(r["samples"] == 4 and r["attempts"] == 1 for r in records)  # no re-timing: the race decides
    assert all(r["flagged"] for r in records)  # the wide spread is still said


def test_a_notebook_without_a_callback_gets_a_progress_display(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import types

    from archsolve.rank import progress

    assert progress.notebook_progress() is None  # not a notebook: the library stays silent
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert progress.in_notebook()
    shown: list[Any] = []

    class Display(progress.NotebookProgress):
        def __init__(self) -> None:
            super().__init__()
            shown.append(self)

    monkeypatch.setattr(progress, "NotebookProgress", Display)
    import archsolve
    from archsolve.solve import solve

    solution = solve(archsolve.Problem.create(sizes=[2, 4], channels=[4, 2], ops="conv_transpose"))
    archsolve.rank(solution, trials=2, batch_size=1, repeats=3, warmup=1, results_dir=str(tmp_path))
    (display,) = shown
    assert set(display.tasks) >= {"search", "race"}
    assert not display.bars.live.is_started  # closed when the call returns


class DriftingScreening(CountingMeasurer):
    """Screening (a design timed alone) lands at its own moment: each call 0.6× to 1.4× the true cost, in turn;
    the interleaved passes (step timings, the re-time, the race) are exact, drift hitting them alike."""

    def measure(self, module: torch.nn.Module, sample_shape: Sequence[int], **options: Any) -> Measurement:
        result = super().measure(module, sample_shape, **options)
        factor = (0.6, 1.4, 0.8, 1.2, 1.0)[self.designs % 5]
        return replace(result, median_s=result.median_s * factor, samples_s=tuple(s * factor for s in result.samples_s))


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_the_last_calibration_is_fitted_and_judged_on_interleaved_re_timings_not_drifting_screening(
    tmp_path: Path,
) -> None:
    # fake_cost adds over leaf modules, so a design's true time is its step sum: with the interleaved re-time the
    # held-out predictions are exact; fitted on the screening figures, 0.6x-1.4x off, most would miss ±10 %
    measurer = DriftingScreening()
    result = rank(tiny_space(), settings(tmp_path, trials=10), progress=None, measurer=measurer)
    assert result.quality is not None and result.quality.held_out_designs == 10
    assert result.quality.held_out_within_10pct == 1.0
    screened = [c.median_s for c in result.candidates]
    truth = [fake_cost(build(c.design)) for c in result.candidates]  # the fake timer: seconds per call
    assert sum(abs(s - t) <= 0.1 * t for s, t in zip(screened, truth, strict=True)) < 5

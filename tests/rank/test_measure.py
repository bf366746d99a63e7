"""The measuring harness: settings validation, statistics, re-measuring, device/dtype/mode handling.

Timing logic runs on a scripted fake timer (exact, deterministic); one smoke test
times a real module on the CPU.  Reference statistics come from numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from archsolve.errors import InputError, MeasureError
from archsolve.rank.measure import Measurer, median_iqr
from archsolve.rank.settings import MeasureSettings

FAST = {"device": "cpu", "batch_size": 2, "warmup": 1, "repeats": 5, "min_sample_s": 0.0}


class ScriptedTimer:
    """Returns per-iteration durations from a script; records every call and runs the module once."""

    def __init__(self, per_iteration: Sequence[float]) -> None:
        self.script = list(per_iteration)
        self.calls: list[int] = []

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
        run()
        self.calls.append(iterations)
        value = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return value * iterations


def tiny_conv() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())


# --- settings --------------------------------------------------------------------------------------


def test_settings_report_every_bad_field_at_once() -> None:
    with pytest.raises(InputError) as info:
        MeasureSettings(device="gpu", dtype="float64", mode="training", batch_size=0, repeats=1)
    where = {issue.where for issue in info.value.issues}
    assert where == {"device", "dtype", "mode", "batch_size", "repeats"}
    assert "did you mean 'train'" in str(info.value)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1"])
def test_settings_accept_device_words(device: str) -> None:
    assert MeasureSettings(device=device).device == device


def test_float16_is_refused_on_cpu() -> None:
    with pytest.raises(InputError, match="float16 is not supported for measuring on CPU"):
        Measurer(MeasureSettings(device="cpu", dtype="float16"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_missing_cuda_device_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no CUDA device"):
        Measurer(MeasureSettings(device="cuda:0"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto means CUDA where there is one")
def test_auto_resolves_to_cpu_without_cuda() -> None:
    m = Measurer(MeasureSettings(device="auto"))
    assert m.settings.device == "cpu"
    assert m.env.device == "cpu"


# --- statistics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [[1.0, 2.0, 3.0, 4.0], [5.0, 1.0, 9.0, 2.0, 7.0], [3.0, 3.0, 3.0], [0.5, 8.0]])
def test_median_and_iqr_match_numpy(samples: list[float]) -> None:
    median, iqr = median_iqr(samples)
    q1, q2, q3 = np.percentile(samples, [25, 50, 75])
    assert median == pytest.approx(q2)
    assert iqr == pytest.approx(q3 - q1)


def test_fake_timer_gives_exact_statistics_and_throughput() -> None:
    durations = [0.010, 0.012, 0.011, 0.013, 0.010]
    timer = ScriptedTimer([0.011, *durations])  # one warm-up, then the timed samples
    m = Measurer(MeasureSettings(**FAST | {"batch_size": 8, "max_spread": 1.0}), timer=timer)
    result = m.measure(tiny_conv(), (3, 8, 8))
    q1, q2, q3 = np.percentile(durations, [25, 50, 75])
    assert result.samples_s == pytest.approx(durations)
    assert result.median_s == pytest.approx(q2)
    assert result.iqr_s == pytest.approx(q3 - q1)
    assert result.throughput == pytest.approx(8 / q2)
    assert result.attempts == 1 and not result.flagged


def test_inner_loop_is_calibrated_from_the_warm_up() -> None:
    timer = ScriptedTimer([0.0005])
    m = Measurer(MeasureSettings(**FAST | {"min_sample_s": 0.002}), timer=timer)
    result = m.measure(tiny_conv(), (3, 8, 8))
    assert result.inner == 4  # 2 ms per sample / 0.5 ms per call
    assert timer.calls == [1] + [4] * 5
    assert result.median_s == pytest.approx(0.0005)


def test_warm_up_continues_while_runs_get_much_faster() -> None:
    timer = ScriptedTimer([0.080, 0.020, 0.005, 0.001, 0.001])
    m = Measurer(MeasureSettings(**FAST | {"warmup": 2}), timer=timer)
    m.measure(tiny_conv(), (3, 8, 8))
    # 80 → 20 → 5 → 1 ms kept getting faster; the fifth run (1 ms again) was not, so warm-up stopped there.
    assert len(timer.calls) - 5 == 5


def test_wide_spread_is_measured_again_and_the_tight_attempt_kept() -> None:
    wide = [0.010, 0.030, 0.010, 0.030, 0.020]
    tight = [0.010, 0.0101, 0.0099, 0.0100, 0.0100]
    timer = ScriptedTimer([0.01, *wide, *tight])
    m = Measurer(MeasureSettings(**FAST | {"max_spread": 0.1, "retries": 2}), timer=timer)
    result = m.measure(tiny_conv(), (3, 8, 8))
    assert result.attempts == 2
    assert not result.flagged
    assert result.samples_s == pytest.approx(tight)


def test_spread_that_stays_wide_is_flagged_after_bounded_retries() -> None:
    wide = [0.010, 0.030, 0.010, 0.030, 0.020]
    timer = ScriptedTimer([0.01, *(wide * 3), 0.02])
    m = Measurer(MeasureSettings(**FAST | {"max_spread": 0.1, "retries": 2}), timer=timer)
    result = m.measure(tiny_conv(), (3, 8, 8))
    assert result.attempts == 3
    assert result.flagged
    assert result.spread > 0.1
    assert len(timer.calls) == 1 + 3 * 5


# --- what runs, and how ------------------------------------------------------------------------------


class Probe(nn.Module):
    """Records how it was called: grad mode, inference mode, training flag, conv output dtype, input layout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.seen: list[dict[str, Any]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        self.seen.append(
            {
                "inference": torch.is_inference_mode_enabled(),
                "grad": torch.is_grad_enabled(),
                "training": self.training,
                "dtype": y.dtype,
                "channels_last": x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(),
                "shape": tuple(x.shape),
            }
        )
        return y


def test_inference_mode_runs_in_eval_under_inference_mode() -> None:
    probe = Probe().train()
    Measurer(MeasureSettings(**FAST | {"batch_size": 3})).measure(probe, (3, 8, 8))
    assert probe.seen
    assert all(s["inference"] and not s["training"] for s in probe.seen)
    assert probe.seen[0]["shape"] == (3, 3, 8, 8)


def test_train_mode_runs_forward_and_backward() -> None:
    probe = Probe()
    Measurer(MeasureSettings(**FAST | {"mode": "train"})).measure(probe, (3, 8, 8))
    assert all(s["training"] and s["grad"] and not s["inference"] for s in probe.seen)
    assert probe.conv.weight.grad is not None  # backward ran


def test_bfloat16_on_cpu_runs_under_autocast() -> None:
    probe = Probe()
    Measurer(MeasureSettings(**FAST | {"dtype": "bfloat16"})).measure(probe, (3, 8, 8))
    assert {s["dtype"] for s in probe.seen} == {torch.bfloat16}


def test_channels_last_converts_input_and_module() -> None:
    probe = Probe()
    Measurer(MeasureSettings(**FAST | {"channels_last": True})).measure(probe, (3, 8, 8))
    assert all(s["channels_last"] for s in probe.seen)
    assert probe.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_a_failing_forward_becomes_a_measure_error() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.conv2d(x, torch.zeros(4, 5, 3, 3))  # wrong in-channel count

    with pytest.raises(MeasureError, match="RuntimeError"):
        Measurer(MeasureSettings(**FAST)).measure(Broken(), (3, 8, 8))


@pytest.fixture
def keep_threads() -> Any:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_real_measurement_smoke(keep_threads: None) -> None:
    settings = MeasureSettings(device="cpu", batch_size=4, warmup=2, repeats=5, min_sample_s=0.0005, threads=1)
    m = Measurer(settings)
    result = m.measure(tiny_conv(), (3, 16, 16))
    assert result.median_s > 0 and result.iqr_s >= 0
    assert len(result.samples_s) == 5
    assert result.throughput == pytest.approx(4 / result.median_s)
    assert result.timed_s >= 5 * result.inner * min(result.samples_s) * 0.99
    assert result.env.torch == torch.__version__
    assert result.env.threads == torch.get_num_threads() == 1
    assert result.settings.device == "cpu" and result.settings.batch_size == 4
    assert result.peak_memory_bytes is None and "CPU" in result.memory_note
    record = result.to_dict()
    assert record["env"]["device"] == "cpu" and record["settings"]["repeats"] == 5


def test_the_device_is_checked_once_by_the_measure_settings_the_same_for_a_file_and_a_keyword() -> None:
    """``mps`` is a device a setting may name anywhere (like ``cuda`` without CUDA); ``gpu`` is none."""
    from archsolve.design.checks import Checker
    from archsolve.problem.problem import read_rank

    for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert MeasureSettings(device=device).device == device
        check = Checker("f.toml")
        assert read_rank(check, {"device": device})[1].device == device and not check.issues
    for device in ("gpu", "cuda:", "cuda:x", "MPS"):
        with pytest.raises(InputError) as info:
            MeasureSettings(device=device)
        check = Checker("f.toml")
        read_rank(check, {"device": device})
        (issue,) = check.issues
        assert issue.where == "f.toml: rank.device" and issue.message == info.value.issues[0].message

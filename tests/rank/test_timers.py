"""Device timers and the per-device lock: the lock across two processes, the timer protocol with fakes.

The CUDA timer's own tests need a GPU and are skipped without one; everything
the CPU can check (the lock, which timer a device gets, the settings that
refuse CUDA-only options, the flush size) runs everywhere.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from archsolve.errors import InputError
from archsolve.rank.measure import Measurer
from archsolve.rank.settings import MeasureSettings
from archsolve.rank.timers import CpuTimer, CudaTimer, DeviceLock, flush_bytes, lock_path, make_timer

FAST: dict[str, Any] = {"device": "cpu", "batch_size": 2, "warmup": 1, "repeats": 3, "min_sample_s": 0.0}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from archsolve.rank.timers import DeviceLock

    lock = DeviceLock(Path(sys.argv[1]))
    spans = []
    for _ in range(3):
        with lock():
            start = time.time()
            time.sleep(0.15)
            spans.append((start, time.time()))
    print(json.dumps(spans))
    """
)


def test_two_processes_take_turns_on_one_device(tmp_path: Path) -> None:
    path = lock_path("cpu", tmp_path)
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path)], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    spans = sorted(span for w in workers for span in json.loads(w.communicate(timeout=60)[0]))
    assert all(w.returncode == 0 for w in workers)
    assert len(spans) == 6
    # No two critical sections overlap: each starts after the previous one ended.
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))


def held_elsewhere(path: Path) -> bool:
    """Whether another open file description cannot take the lock (flock conflicts across descriptions)."""
    with open(path, "ab") as other:
        try:
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
        return False


class LockProbe:
    """A fake timer that records, at every timing, whether the device's lock file is held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[bool] = []

    def time(self, run: Callable[[], object], iterations: int, module: Any) -> float:
        run()
        self.seen.append(held_elsewhere(self.path))
        return 0.001 * iterations


def test_the_lock_is_held_exactly_while_a_module_is_timed(tmp_path: Path) -> None:
    path = lock_path("cpu", tmp_path)
    probe = LockProbe(path)
    measurer = Measurer(MeasureSettings(**FAST), timer=probe, lock=DeviceLock(path))
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    measurer.measure(module, (3, 8, 8))
    measurer.interleaved([(module, (3, 8, 8)), (module, (3, 8, 8))], rounds=3)
    assert probe.seen and all(probe.seen)
    assert not measurer.lock.held and not held_elsewhere(path)


def test_the_lock_is_reentrant_and_released_on_an_exception(tmp_path: Path) -> None:
    lock = DeviceLock(lock_path("cuda:1", tmp_path))
    assert lock.path.name == "archsolve-measure-cuda-1.lock"
    with pytest.raises(KeyboardInterrupt), lock():
        with lock():
            assert lock.held and held_elsewhere(lock.path)
        assert lock.held
        raise KeyboardInterrupt
    assert not lock.held and not held_elsewhere(lock.path)


def test_each_device_gets_its_timer_behind_one_protocol() -> None:
    timer = make_timer(torch.device("cpu"), cpu_clock=True, graphs=False)
    assert isinstance(timer, CpuTimer)
    calls: list[int] = []
    spent = timer.time(lambda: calls.append(1), 4, None)
    assert calls == [1, 1, 1, 1] and spent >= 0
    assert flush_bytes(50 * 2**20) == 100 * 2**20  # twice the L2 (an H100's 50 MiB)
    assert flush_bytes(None) == flush_bytes(0) > 0  # a device that does not say: the fallback


def test_cuda_only_settings_are_refused_where_they_cannot_apply() -> None:
    with pytest.raises(InputError, match="cuda_graphs"):
        MeasureSettings(cuda_graphs=True, mode="train")
    with pytest.raises(InputError, match="CUDA device"):
        Measurer(MeasureSettings(**FAST | {"cuda_graphs": True}))


@cuda
def test_cuda_timer_flushes_l2_and_times_with_events() -> None:
    device = torch.device("cuda", 0)
    timer = CudaTimer(device)
    l2 = torch.cuda.get_device_properties(device).L2_cache_size
    assert timer.flush.numel() * 4 >= 2 * l2
    a = torch.randn(1024, 1024, device=device)
    seconds = timer.time(lambda: a @ a, 10, None)
    assert 0 < seconds < 10


@cuda
def test_cuda_graph_replay_runs_the_captured_work() -> None:
    device = torch.device("cuda", 0)
    timer = CudaTimer(device, graphs=True)
    x = torch.zeros(4, device=device)

    def step() -> object:
        return x.add_(1)

    timer.time(step, 5, None)
    torch.cuda.synchronize()
    # Three warm-up calls and the capture's own on the side stream leave 3, then five replays add 5.
    assert x[0].item() == 8


@cuda
def test_measuring_on_cuda_with_graphs(tmp_path: Path) -> None:
    settings = MeasureSettings(device="cuda", batch_size=4, warmup=2, repeats=5, cuda_graphs=True)
    measurer = Measurer(settings, lock=DeviceLock(lock_path("cuda:0", tmp_path)))
    result = measurer.measure(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()), (3, 32, 32))
    assert result.median_s > 0 and result.peak_memory_bytes is not None

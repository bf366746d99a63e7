"""The ranking's settings values, ``[rank]`` and ``[rank.measure]`` of a problem file: a leaf, so reading
a problem imports nothing of the search, the study or the measuring harness.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Issue, unknown

SAMPLERS = ("tpe", "random")


@dataclass(frozen=True)
class RankSettings:
    """How to search and where to keep the study (``[rank]`` in a problem file, ``--storage``, ``--study``).

    ``trials``: designs measured in the study in total (all runs, all workers).
    ``enqueue``: designs predicted fastest by the latency model to measure
    first (default: half of ``trials``; from 8 trials a quarter, with as many
    spread over the predicted order to calibrate the model on, whose
    held-out figures then decide whether it picks the rest).  ``max_asks``: proposals before giving
    up on finding new valid designs (default ``10 * trials + 50``).
    ``patience``: consecutive proposals that measure nothing before the next
    predicted-best unmeasured design is enqueued.  ``screen_repeats``:
    samples per design when it is first measured (a brief screening, no
    re-timing; the race decides).  ``race``: re-time the ``finalists`` best
    measured designs and the reference round-robin, at most ``race_rounds``
    rounds (a finalist that cannot catch the leader leaves early), and decide
    with ``confidence`` intervals.
    """

    trials: int = 20
    results_dir: Path | None = None
    storage: str | None = None
    study_name: str | None = None
    sampler: str = "tpe"
    seed: int | None = None
    model: bool = True
    enqueue: int | None = None
    model_repeats: int = 5
    pool_limit: int = 5000
    model_limit: int = 512
    startup_trials: int = 5
    patience: int = 1
    max_asks: int | None = None
    pareto: bool = True
    stale_after_s: float = 3600.0
    race: bool = True
    finalists: int = 4
    race_rounds: int = 15
    screen_repeats: int = 5
    confidence: float = 0.95

    def __post_init__(self) -> None:
        issues = []
        for name, low in (
            ("trials", 1),
            ("model_repeats", 3),
            ("pool_limit", 1),
            ("model_limit", 0),
            ("finalists", 1),
            ("race_rounds", 3),
            ("screen_repeats", 3),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                issues.append(Issue(name, f"{value!r}: expected an integer >= {low}"))
        for name in ("enqueue", "max_asks"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                issues.append(Issue(name, f"{value!r}: expected an integer >= 0"))
        if not 0.5 <= self.confidence < 1:
            issues.append(Issue("confidence", f"{self.confidence!r}: expected a level in [0.5, 1)"))
        if self.sampler not in SAMPLERS:
            issues.append(Issue("sampler", f"{self.sampler!r}: expected one of {', '.join(SAMPLERS)}"))
        if self.startup_trials < 0 or self.patience < 1:
            issues.append(Issue("startup_trials/patience", "expected startup_trials >= 0 and patience >= 1"))
        if issues:
            raise InputError(issues)


DTYPES = ("float32", "bfloat16", "float16")


MODES = ("inference", "train")


CLOCKS = ("wall", "cpu")


#: The devices a setting may name; whether this machine has one is asked when measuring (``_resolve_device``).
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class MeasureSettings:
    """How to time a candidate; every field is recorded with each result.

    ``time_steps`` is the sequence length fed to designs whose input carries a
    time axis (ConvLSTM), which the design itself does not fix.
    """

    device: str = "auto"
    dtype: str = "float32"
    batch_size: int = 16
    mode: str = "inference"
    warmup: int = 3
    repeats: int = 20
    min_sample_s: float = 0.002
    channels_last: bool = False
    max_spread: float = 0.15
    retries: int = 2
    threads: int | None = None
    cudnn_benchmark: bool = True
    time_steps: int = 4
    clock: str = "wall"
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        issues = []
        if not _DEVICE.match(self.device):
            issues.append(Issue("device", f"expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}"))
        if self.dtype not in DTYPES:
            issues.append(Issue("dtype", unknown("dtype", self.dtype, DTYPES)))
        if self.mode not in MODES:
            issues.append(Issue("mode", unknown("mode", self.mode, MODES)))
        for name, low in (("batch_size", 1), ("warmup", 1), ("repeats", 3), ("retries", 0), ("time_steps", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                issues.append(Issue(name, f"{value!r}: expected an integer >= {low}"))
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            issues.append(Issue("threads", f"{self.threads!r}: expected an integer >= 1"))
        if not self.min_sample_s >= 0:
            issues.append(Issue("min_sample_s", f"{self.min_sample_s!r}: expected seconds >= 0"))
        if self.clock not in CLOCKS:
            issues.append(Issue("clock", unknown("clock", self.clock, CLOCKS)))
        if self.cuda_graphs and self.mode != "inference":
            issues.append(Issue("cuda_graphs", 'CUDA-graph replay times inference only; use mode = "inference"'))
        if not self.max_spread > 0:
            issues.append(Issue("max_spread", f"{self.max_spread!r}: expected a ratio > 0"))
        if issues:
            raise InputError(issues)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

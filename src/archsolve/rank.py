"""Rank a space of valid designs by measured throughput with an Optuna study.

Public API::

    result = rank(space, RankSettings(trials=20), MeasureSettings(batch_size=16), progress=callback)
    result.winner.design, result.winner.throughput, result.results_path

``space`` is a :class:`archsolve.space.SearchSpace` (the solver implements it).
One Optuna trial picks one key per step (``step0``, ``step1``, … as
categorical parameters); its value is the measured throughput in samples/s
(maximised).  What happens to a proposal:

* **invalid** (``space.design`` says a global constraint fails) → the trial is
  *pruned* with ``user_attrs["invalid"]``; nothing is built or measured;
* **already measured** in the study (any run, any worker) → *completed* with
  the finished trial's value and ``user_attrs["reused_from"]``; not measured;
* **known to fail** (an earlier trial of the same design raised) → *failed*
  again with ``user_attrs["error"]``; not measured;
* **being measured by another worker** → *failed* with
  ``user_attrs["deferred_to"]`` (samplers ignore failed trials);
* otherwise it is measured; an exception (CUDA out of memory, a runtime error
  from build or forward) makes it a *failed* trial whose ``user_attrs["error"]``
  holds the reason, and the run goes on.

``RankSettings.trials`` is the number of designs measured **in the study**,
counted over every run and worker: re-running the same command after it
finished measures nothing and reproduces the ranking; re-running after an
interruption (Ctrl-C, ``kill -9``) measures only what is missing.  Optuna
commits each trial as it finishes, and the results JSON is rewritten
atomically after every trial, so no finished measurement is lost.

**Latency model.**  Before searching, each distinct step of the candidate pool
(every valid combination when the product of the options is at most
``pool_limit``; else :class:`~archsolve.space.CandidateSource` or random
samples) is timed once alone on its own input shape; a design's predicted time
is the sum of its steps'.  The ``enqueue`` designs predicted fastest are
enqueued first (``study.enqueue_trial``); TPE (seeded by ``seed``) proposes
the rest.  Step timings are stored in the study's user attributes, so a
resumed run does not repeat them.  The result reports Spearman's rank
correlation between predicted and measured time.

**Storage.**  Default: ``sqlite:///<results_dir>/study.db``, fine for one
process.  ``storage`` takes any Optuna RDB URL
(``postgresql://user:pass@host/db``, ``mysql+pymysql://…``) so several
machines share one study: run the same command with the same ``storage`` and
``study_name`` on each.  For several processes on **one** machine Optuna
recommends its journal storage over SQLite (SQLite serialises writers and can
raise "database is locked"): ``storage="journal:///abs/path/study.log"`` (or
``journal://relative/path.log``) uses ``JournalStorage(JournalFileBackend(path))``.
Concurrency: a worker claims a design (``user_attrs["claim"]``) and re-reads
the study before measuring; if another running trial has claimed the same
design it backs off.  With storages whose reads see every finished write (RDB,
journal) this means a design is measured at most once per study; the
exception is a worker that died mid-measurement, whose design is measured
again.  Stale claims: a running trial whose process is gone (same host, dead
pid) is marked failed at start-up; one from another host after
``stale_after_s``.

**Dashboard.**  ``optuna-dashboard sqlite:///results/<problem>/study.db``
(or ``optuna-dashboard results/<problem>/study.log`` for a journal file)
shows the trials, their user attributes and the measured throughput.

**Pareto.**  The front of throughput (max) against parameters (min) and, where
measured (CUDA), peak memory (min) is computed from the measured trials and
written as a table in the results JSON and as a self-contained SVG plot in
``pareto.html`` (no plotting dependency).

The library never prints: pass ``progress`` to receive a :class:`RankProgress`
after every step timing and every trial (with ETA and best so far).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import math
import os
import random
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from itertools import islice, product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .design import Design, Step
from .errors import ArchsolveError, InputError, Issue, MeasureError
from .measure import Environment, Measurement, Measurer, MeasureSettings
from .space import CandidateSource, SearchSpace

if TYPE_CHECKING:
    import optuna
    import torch
    from optuna.trial import FrozenTrial

Keys = tuple[str, ...]
SAMPLERS = ("tpe", "random")
_STEP_ATTR = "step_time:"
_FINGERPRINT_ATTR = "archsolve_measure"


# ------------------------------------------------------------------------------------------------
# Values
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankSettings:
    """How to search and where to keep the study (``[rank]`` in a problem file, ``--storage``, ``--study``).

    ``trials``: designs measured in the study in total (all runs, all workers).
    ``enqueue``: designs predicted fastest by the latency model to measure
    first (default: half of ``trials``).  ``max_asks``: proposals before giving
    up on finding new valid designs (default ``10 * trials + 50``).
    ``patience``: consecutive proposals that measure nothing before the next
    predicted-best unmeasured design is enqueued.
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

    def __post_init__(self) -> None:
        issues = []
        for name, low in (("trials", 1), ("model_repeats", 3), ("pool_limit", 1), ("model_limit", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                issues.append(Issue(name, f"{value!r}: expected an integer >= {low}"))
        for name in ("enqueue", "max_asks"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                issues.append(Issue(name, f"{value!r}: expected an integer >= 0"))
        if self.sampler not in SAMPLERS:
            issues.append(Issue("sampler", f"{self.sampler!r}: expected one of {', '.join(SAMPLERS)}"))
        if self.startup_trials < 0 or self.patience < 1:
            issues.append(Issue("startup_trials/patience", "expected startup_trials >= 0 and patience >= 1"))
        if issues:
            raise InputError(issues)


@dataclass(frozen=True)
class RankProgress:
    """What a progress bar needs: phase, done/total, ETA and the best design so far."""

    phase: Literal["model", "search"]
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    best_throughput: float | None
    best_keys: Keys | None
    message: str


@dataclass(frozen=True)
class Candidate:
    """A measured design, with its place in the ranking."""

    rank: int
    trial: int
    keys: Keys
    design: Design
    throughput: float
    median_s: float
    iqr_s: float
    flagged: bool
    peak_memory_bytes: int | None
    predicted_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """The ``solve --json`` candidate (design.md) plus the measurement's details."""
        return {
            **self.design.to_dict(self.throughput),
            "rank": self.rank,
            "trial": self.trial,
            "choices": list(self.keys),
            "median_s": self.median_s,
            "iqr_s": self.iqr_s,
            "flagged": self.flagged,
            "peak_memory_bytes": self.peak_memory_bytes,
            "predicted_s": self.predicted_s,
        }


@dataclass(frozen=True)
class FailedCandidate:
    """A design whose build or measurement raised, with the reason."""

    trial: int
    keys: Keys
    reason: str


@dataclass(frozen=True)
class RunCounts:
    """What this run did (the study may hold more from earlier runs and other workers)."""

    measured: int = 0
    reused: int = 0
    invalid: int = 0
    failed: int = 0
    deferred: int = 0
    step_timings: int = 0
    step_timings_reused: int = 0
    asks: int = 0


@dataclass(frozen=True)
class RankResult:
    """The ranking of every design measured in the study, best first, and how this run got there.

    ``timed_s`` is the wall time this run spent inside timed windows (design
    and step measurements); ``wall_s`` all of this run.
    """

    problem: str
    study_name: str
    storage: str
    results_path: Path
    plot_path: Path | None
    candidates: tuple[Candidate, ...]
    pareto: tuple[Candidate, ...]
    failed: tuple[FailedCandidate, ...]
    run: RunCounts
    spearman: float | None
    environment: Environment
    settings: RankSettings
    measure: MeasureSettings
    timed_s: float
    wall_s: float
    stop_reason: str

    @property
    def winner(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        settings["results_dir"] = str(self.results_path.parent)
        settings["storage"] = self.storage
        return {
            "problem": self.problem,
            "study": self.study_name,
            "storage": self.storage,
            "count": len(self.candidates),
            "candidates": [c.to_dict() for c in self.candidates],
            "winner": self.winner.to_dict() if self.winner else None,
            "pareto": [c.to_dict() for c in self.pareto],
            "failed": [{"trial": f.trial, "choices": list(f.keys), "reason": f.reason} for f in self.failed],
            "spearman": self.spearman,
            "run": asdict(self.run),
            "stop_reason": self.stop_reason,
            "timed_s": self.timed_s,
            "wall_s": self.wall_s,
            "environment": self.environment.to_dict(),
            "rank_settings": settings,
            "measure_settings": self.measure.to_dict(),
            "plot": str(self.plot_path) if self.plot_path else None,
        }


# ------------------------------------------------------------------------------------------------
# Small pure helpers (tested directly)
# ------------------------------------------------------------------------------------------------


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get their average rank); None when undefined."""
    if len(xs) != len(ys):
        raise ValueError("spearman: sequences of different lengths")
    if len(xs) < 2:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx > 0 and vy > 0 else None


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates, every objective minimised."""
    front = []
    for i, p in enumerate(points):
        dominated = any(
            all(a <= b for a, b in zip(q, p, strict=True)) and any(a < b for a, b in zip(q, p, strict=True))
            for j, q in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``: ``journal://PATH`` → journal file, anything else → RDB URL.

    Raises InputError for a URL Optuna cannot open (bad scheme, missing driver).
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        if url.startswith("journal:"):
            path = Path(url.removeprefix("journal:").removeprefix("//"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(url)
        if url.startswith("sqlite:"):
            _tune_sqlite(storage)
        return storage
    except (ValueError, ImportError, OSError) as exc:
        raise InputError(Issue("storage", f"{redact(url)}: {exc}")) from exc
    except Exception as exc:  # sqlalchemy's ArgumentError / OperationalError have no common base with ours
        raise InputError(Issue("storage", f"{redact(url)}: {type(exc).__name__}: {exc}")) from exc


def _tune_sqlite(storage: Any) -> None:
    """WAL journal with ``synchronous=NORMAL``: several times fewer fsyncs per trial than SQLite's default.

    A committed trial still survives the process being killed (``kill -9``);
    only an operating-system crash or power loss could drop the last commits.
    WAL also lets readers proceed while one process writes.
    """
    from sqlalchemy import event

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened while creating the tables reconnect with the pragmas


def redact(url: str) -> str:
    """The storage URL with any password hidden (it goes into results files)."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "problem"


def build_module(design: Design) -> torch.nn.Module:
    """The torch module measured for ``design``: exactly what ``archsolve.build`` hands the user."""
    from .build import build

    return build(design)


def sample_shape(design: Design, settings: MeasureSettings) -> tuple[int, ...]:
    """One sample's input shape: ``in_shape``, with ``time_steps`` in front for sequence designs."""
    return (settings.time_steps, *design.in_shape) if design.sequence else design.in_shape


def alone(step: Step, design: Design) -> Design:
    """One step as a design of its own, for the latency model.

    A skip connection needs the earlier output it joins, so the merge is
    dropped: the model times the step's layers and activation, not the concat.
    """
    return Design(f"{design.name}/step", (replace(step, merge=None),), design.options, design.sequence)


def step_id(step: Step, design: Design) -> str:
    """A stable identity for a step's timing (its layers, activation and the sequence flag)."""
    text = f"{replace(step, merge=None)!r}|{design.sequence}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


def rank(
    space: SearchSpace,
    settings: RankSettings | None = None,
    measure: MeasureSettings | None = None,
    progress: Callable[[RankProgress], None] | None = None,
    *,
    measurer: Measurer | None = None,
    build: Callable[[Design], torch.nn.Module] | None = None,
) -> RankResult:
    """Measure designs of ``space`` in an Optuna study and rank them by throughput (samples/s).

    ``measurer`` replaces the measuring harness (tests inject one with a fake
    timer); ``build`` replaces :func:`build_module`.  Writes
    ``results.json`` (and ``pareto.html``) to the results directory after every
    trial.  Raises InputError for bad settings or storage, MeasureError when no
    design at all could be measured.
    """
    settings = settings or RankSettings()
    measure = measure or MeasureSettings()
    ranker = _Ranker(space, settings, measurer or Measurer(measure), progress, build or build_module)
    with _quiet_optuna():
        return ranker.run()


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; the library must not print, so keep it to warnings during a run."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


@dataclass
class _Tally:
    measured: int = 0
    reused: int = 0
    invalid: int = 0
    failed: int = 0
    deferred: int = 0
    step_timings: int = 0
    step_timings_reused: int = 0
    asks: int = 0
    timed_s: float = 0.0
    enqueued: set[Keys] = field(default_factory=set)

    def counts(self) -> RunCounts:
        """The frozen result, field by field by name (the tally is RunCounts' running side)."""
        return RunCounts(**{f.name: getattr(self, f.name) for f in fields(RunCounts)})


@dataclass
class _Ledger:
    """The study as this worker needs it: finished measurements, known failures, live claims."""

    measured: dict[Keys, FrozenTrial]
    failed: dict[Keys, FrozenTrial]
    claims: dict[Keys, list[FrozenTrial]]
    waiting: set[Keys]


class _Ranker:
    def __init__(
        self,
        space: SearchSpace,
        settings: RankSettings,
        measurer: Measurer,
        progress: Callable[[RankProgress], None] | None,
        build: Callable[[Design], torch.nn.Module],
    ) -> None:
        self.space = space
        self.settings = settings
        self.measurer = measurer
        self.mset = measurer.settings
        self.progress = progress
        self.build = build
        self.options: list[tuple[str, ...]] = [tuple(o) for o in space.step_options()]
        if not self.options or any(not o for o in self.options):
            raise InputError(f"{space.name}: every step needs at least one option to rank")
        self.names = [f"step{i}" for i in range(len(self.options))]
        self.index = [{key: j for j, key in enumerate(o)} for o in self.options]
        self.results_dir = settings.results_dir or Path("results") / slug(space.name)
        self.storage_url = settings.storage or f"sqlite:///{(self.results_dir / 'study.db').resolve()}"
        self.study_name = settings.study_name or self._default_study_name()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.designs: dict[Keys, Design | None] = {}
        self.step_times: dict[str, float] = {}
        self.predicted: dict[Keys, float] = {}
        self.pending: list[Keys] = []
        self.pool_keys: set[Keys] = set()
        self.pool_complete = False
        self.tally = _Tally()
        self.started = time.perf_counter()
        self.search_started = self.started
        self.stop_reason = ""
        self._fresh: list[FrozenTrial] | None = None
        self._last_candidates: tuple[Candidate, ...] = ()

    # --- set-up ----------------------------------------------------------------------------------
    def _default_study_name(self) -> str:
        s = self.mset
        device = s.device.split(":")[0]
        layout = "-cl" if s.channels_last else ""
        return f"{slug(self.space.name)}-{device}-{s.dtype}-b{s.batch_size}-{s.mode}{layout}"

    def _fingerprint(self) -> dict[str, Any]:
        """Settings that make measurements comparable; a study refuses a worker whose fingerprint differs."""
        s, env = self.mset, self.measurer.env
        found: dict[str, Any] = {
            "device": env.device.split(":")[0],
            "device_name": env.device_name,
            "dtype": s.dtype,
            "batch_size": s.batch_size,
            "mode": s.mode,
            "channels_last": s.channels_last,
            "time_steps": s.time_steps,
        }
        if env.device == "cpu":
            found["threads"] = env.threads
        return found

    def _open_study(self) -> optuna.Study:
        import optuna

        storage = open_storage(self.storage_url)
        if self.settings.sampler == "random":
            sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=self.settings.seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=self.settings.seed, n_startup_trials=self.settings.startup_trials)
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=self.study_name,
                sampler=sampler,
                direction="maximize",
                load_if_exists=True,
            )
        except ValueError as exc:  # e.g. an existing study with other directions
            raise InputError(Issue("study", f"{self.study_name}: {exc}")) from exc
        mine = self._fingerprint()
        theirs = study.user_attrs.get(_FINGERPRINT_ATTR)
        if theirs is None:
            study.set_user_attr(_FINGERPRINT_ATTR, mine)
            study.set_user_attr("problem", self.space.name)
        elif theirs != mine:
            diff = ", ".join(
                f"{k}: study {theirs.get(k)!r}, here {mine.get(k)!r}" for k in mine if theirs.get(k) != mine[k]
            )
            raise InputError(
                Issue("study", f"{self.study_name} was measured under other settings ({diff}); name another study")
            )
        return study

    # --- study bookkeeping -----------------------------------------------------------------------
    def _keys(self, trial: FrozenTrial) -> Keys | None:
        if not all(name in trial.params for name in self.names):
            return None
        return tuple(str(trial.params[name]) for name in self.names)

    def _design(self, keys: Keys) -> Design | None:
        if keys not in self.designs:
            try:
                picks = [self.index[i][key] for i, key in enumerate(keys)]
            except KeyError:
                self.designs[keys] = None  # the study holds a choice this space no longer offers
            else:
                self.designs[keys] = self.space.design(picks)
        return self.designs[keys]

    def _alive(self, trial: FrozenTrial) -> bool:
        """Whether a running trial's worker may still finish it."""
        worker = trial.user_attrs.get("claim")
        if isinstance(worker, dict) and worker.get("host") == self.host:
            pid = int(worker.get("pid", -1))
            if pid == self.pid:
                return True
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        started = trial.datetime_start
        if started is None:
            return True
        age = (datetime.now() - started).total_seconds()
        limit = self.settings.stale_after_s if isinstance(worker, dict) else min(60.0, self.settings.stale_after_s)
        return age < limit

    def _fail_dead(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not self._alive(trial):
                with contextlib.suppress(RuntimeError, ValueError):
                    study.tell(trial.number, state=TrialState.FAIL)

    def _trials(self, study: optuna.Study) -> list[FrozenTrial]:
        """All trials, read once per proposal: the last read after a finished measurement is reused."""
        if self._fresh is not None:
            trials, self._fresh = self._fresh, None
            return trials
        return study.get_trials(deepcopy=False)

    def _ledger(self, trials: Sequence[FrozenTrial], exclude: int | None = None) -> _Ledger:
        from optuna.trial import TrialState

        ledger = _Ledger({}, {}, {}, set())
        for trial in trials:
            if trial.number == exclude:
                continue
            if trial.state == TrialState.WAITING:
                queued = trial.user_attrs.get("choices")
                if isinstance(queued, list) and len(queued) == len(self.names):
                    ledger.waiting.add(tuple(str(k) for k in queued))
                continue
            keys = self._keys(trial)
            if keys is None:
                continue
            attrs = trial.user_attrs
            if trial.state == TrialState.COMPLETE and "measurement" in attrs:
                ledger.measured.setdefault(keys, trial)
            elif trial.state == TrialState.FAIL and "error" in attrs:
                ledger.failed.setdefault(keys, trial)
            elif trial.state == TrialState.RUNNING and attrs.get("claim") and self._alive(trial):
                ledger.claims.setdefault(keys, []).append(trial)
        return ledger

    # --- latency model ---------------------------------------------------------------------------
    def _pool(self) -> list[Keys]:
        """Valid designs for the model and for exhaustion checks (every one when the space is small)."""
        sizes = [len(o) for o in self.options]
        limit = self.settings.pool_limit
        picks: Iterator[Sequence[int]]
        if math.prod(sizes) <= limit:
            picks = iter(product(*(range(n) for n in sizes)))
            self.pool_complete = True
        elif isinstance(self.space, CandidateSource):
            picks = islice(iter(self.space.candidates(limit)), limit)
        else:
            rng = random.Random(self.settings.seed)
            picks = iter([tuple(rng.randrange(n) for n in sizes) for _ in range(limit)])
        pool: list[Keys] = []
        for pick in picks:
            keys = tuple(self.options[i][j] for i, j in enumerate(pick))
            if keys in self.designs:
                continue
            self.designs[keys] = self.space.design(pick)
            if self.designs[keys] is not None:
                pool.append(keys)
        return pool

    def _time_steps(self, study: optuna.Study, pool: list[Keys], measure_new: bool) -> None:
        """Time each distinct step of the pool once (or reuse the study's timing) and predict every design.

        With ``measure_new`` false (the study already has its trials) only the
        study's stored timings are used, for the predictions in the report.
        """
        known = {k.removeprefix(_STEP_ATTR): v for k, v in study.user_attrs.items() if k.startswith(_STEP_ATTR)}
        steps: dict[str, tuple[Step, Design]] = {}
        for keys in pool:
            design = self.designs[keys]
            assert design is not None
            for step in design.steps:
                steps.setdefault(step_id(step, design), (step, design))
        if len(steps) > self.settings.model_limit:
            return  # too many distinct steps: timing them would cost more than the search saves
        todo = [(sid, pair) for sid, pair in steps.items() if sid not in known and measure_new]
        self.tally.step_timings_reused = sum(sid in known for sid in steps)
        self.step_times.update({sid: float(v) for sid, v in known.items() if sid in steps})
        started = time.perf_counter()
        for n, (sid, (step, design)) in enumerate(todo, 1):
            single = alone(step, design)
            try:
                result = self.measurer.measure(
                    self.build(single), sample_shape(single, self.mset), repeats=self.settings.model_repeats
                )
            except (ArchsolveError, RuntimeError, ValueError, TypeError) as exc:
                message = f"step timing failed: {exc}"
            else:
                self.step_times[sid] = result.median_s
                self.tally.timed_s += result.timed_s
                self.tally.step_timings += 1
                study.set_user_attr(_STEP_ATTR + sid, result.median_s)
                message = f"step {sid}: {result.median_s * 1e3:.3f} ms"
            spent = time.perf_counter() - started
            self._report("model", n, len(todo), spent / n * (len(todo) - n), None, message)
        for keys in pool:
            predicted = self._predict(keys)
            if predicted is not None:
                self.predicted[keys] = predicted

    def _predict(self, keys: Keys) -> float | None:
        design = self._design(keys)
        if design is None or not self.step_times:
            return None
        times = [self.step_times.get(step_id(step, design)) for step in design.steps]
        return sum(t for t in times if t is not None) if all(t is not None for t in times) else None

    # --- the search ------------------------------------------------------------------------------
    def run(self) -> RankResult:
        study = self._open_study()
        self._fail_dead(study)
        pool = self._pool()
        self.pool_keys = set(pool)
        ledger = self._ledger(study.get_trials(deepcopy=False))
        if self.settings.model:
            self._time_steps(study, pool, measure_new=len(ledger.measured) < self.settings.trials)
        order = {keys: i for i, keys in enumerate(pool)}
        if self.predicted:
            pool.sort(key=lambda k: (self.predicted.get(k, math.inf), order[k]))
        else:
            random.Random(self.settings.seed).shuffle(pool)
        self.pending = pool
        self._enqueue_predicted(study, ledger)
        self.search_started = time.perf_counter()
        self._search(study)
        return self._finish(study)

    def _untouched(self, keys: Keys, ledger: _Ledger) -> bool:
        """Nobody has measured, failed on, claimed or queued this design."""
        return not (
            keys in ledger.measured
            or keys in ledger.failed
            or keys in ledger.claims
            or keys in ledger.waiting
            or keys in self.tally.enqueued
        )

    def _enqueue(self, study: optuna.Study, keys: Keys, source: str) -> None:
        # The choices ride along in user_attrs so any worker can see what is queued.
        params = dict(zip(self.names, keys, strict=True))
        study.enqueue_trial(params, user_attrs={"source": source, "choices": list(keys)})
        self.tally.enqueued.add(keys)

    def _enqueue_predicted(self, study: optuna.Study, ledger: _Ledger) -> None:
        wanted = self.settings.enqueue if self.settings.enqueue is not None else -(-self.settings.trials // 2)
        room = self.settings.trials - len(ledger.measured) - len(ledger.waiting)
        if not self.predicted or room <= 0:
            return
        chosen = [k for k in self.pending if k in self.predicted and self._untouched(k, ledger)]
        for keys in chosen[: min(wanted, room)]:
            self._enqueue(study, keys, "model")

    def _enqueue_next(self, study: optuna.Study, ledger: _Ledger) -> bool:
        """After ``patience`` fruitless proposals: queue the predicted-best design nobody has touched."""
        if ledger.waiting:
            return False  # queued designs come first anyway
        for keys in self.pending:
            if self._untouched(keys, ledger):
                self._enqueue(study, keys, "fallback")
                return True
        return False

    def _search(self, study: optuna.Study) -> None:
        from optuna.distributions import CategoricalDistribution

        dists = {name: CategoricalDistribution(opts) for name, opts in zip(self.names, self.options, strict=True)}
        max_asks = self.settings.max_asks if self.settings.max_asks is not None else 10 * self.settings.trials + 50
        fruitless = 0
        while True:
            ledger = self._ledger(self._trials(study))
            in_flight = sum(len(v) for v in ledger.claims.values())
            if len(ledger.measured) + in_flight >= self.settings.trials:
                self.stop_reason = "trials reached"
                return
            if self.pool_complete and all(k in ledger.measured or k in ledger.failed for k in self.pool_keys):
                self.stop_reason = "every valid design measured"
                return
            if self.tally.asks >= max_asks:
                self.stop_reason = f"no new valid design in {max_asks} proposals"
                return
            if fruitless >= self.settings.patience:
                self._enqueue_next(study, ledger)
                fruitless = 0
            self.tally.asks += 1
            measured_before = self.tally.measured + self.tally.failed
            self._trial(study, dists, ledger)
            fruitless = 0 if self.tally.measured + self.tally.failed > measured_before else fruitless + 1

    def _trial(self, study: optuna.Study, dists: dict[str, Any], ledger: _Ledger) -> None:
        """One proposal: reuse, refuse, defer or measure it (``ledger``: the study just before asking)."""
        from optuna.trial import TrialState

        try:
            trial = study.ask(dists)
        except ValueError:
            # An enqueued trial from an earlier run names a choice this space no longer has.
            return
        number = trial.number
        finished = False
        try:
            keys = tuple(str(trial.params[name]) for name in self.names)
            if keys in ledger.measured:
                self._reuse(study, trial, ledger.measured[keys])
                finished = True
                return
            if keys in ledger.failed:
                trial.set_user_attr("error", ledger.failed[keys].user_attrs["error"])
                trial.set_user_attr("same_as", ledger.failed[keys].number)
                study.tell(trial, state=TrialState.FAIL)
                finished = True
                return
            design = self._design(keys)
            if design is None:
                trial.set_user_attr(
                    "invalid", "violates a global constraint (budget, receptive field, recipe or sizes)"
                )
                study.tell(trial, state=TrialState.PRUNED)
                self.tally.invalid += 1
                finished = True
                self._report_search(f"trial {number}: invalid, not measured")
                return
            trial.set_user_attr("claim", {"host": self.host, "pid": self.pid})
            ledger = self._ledger(study.get_trials(deepcopy=False), exclude=number)
            if keys in ledger.measured:
                self._reuse(study, trial, ledger.measured[keys])
                finished = True
                return
            if keys in ledger.claims:
                trial.set_user_attr("deferred_to", ledger.claims[keys][0].number)
                study.tell(trial, state=TrialState.FAIL)
                self.tally.deferred += 1
                finished = True
                return
            self._measure(study, trial, keys, design)
            finished = True
        finally:
            if not finished:  # interrupted (Ctrl-C) or a bug: never leave a claim behind
                with contextlib.suppress(Exception):
                    study.tell(number, state=TrialState.FAIL)

    def _reuse(self, study: optuna.Study, trial: optuna.Trial, done: FrozenTrial) -> None:
        trial.set_user_attr("reused_from", done.number)
        study.tell(trial, done.value)
        self.tally.reused += 1

    def _measure(self, study: optuna.Study, trial: optuna.Trial, keys: Keys, design: Design) -> None:
        from optuna.trial import TrialState

        predicted = self.predicted.get(keys) or self._predict(keys)
        try:
            result = self.measurer.measure(self.build(design), sample_shape(design, self.mset))
        except (ArchsolveError, RuntimeError, ValueError, TypeError, MemoryError) as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            study.tell(trial, state=TrialState.FAIL)
            self.tally.failed += 1
            self._write(study)
            self._report_search(f"trial {trial.number}: failed: {exc}")
            return
        self.tally.timed_s += result.timed_s
        record = _trial_record(result) | {"params": design.params.total, "macs": design.macs}
        if predicted is not None:
            record["predicted_s"] = predicted
        trial.set_user_attr("measurement", record)
        study.tell(trial, result.throughput)
        self.tally.measured += 1
        self._write(study)
        self._report_search(f"trial {trial.number}: {result.throughput:,.0f} samples/s")

    # --- reporting -------------------------------------------------------------------------------
    def _report(
        self,
        phase: Literal["model", "search"],
        done: int,
        total: int,
        eta: float | None,
        best: Candidate | None,
        message: str,
    ) -> None:
        if self.progress is None:
            return
        self.progress(
            RankProgress(
                phase=phase,
                done=done,
                total=total,
                elapsed_s=time.perf_counter() - self.started,
                eta_s=eta,
                best_throughput=best.throughput if best else None,
                best_keys=best.keys if best else None,
                message=message,
            )
        )

    def _report_search(self, message: str) -> None:
        if self.progress is None:
            return
        candidates = self._last_candidates
        done = min(len(candidates), self.settings.trials)
        spent = time.perf_counter() - self.search_started
        work = self.tally.measured + self.tally.failed
        eta = spent / work * max(0, self.settings.trials - done) if work else None
        self._report("search", done, self.settings.trials, eta, candidates[0] if candidates else None, message)

    def _collect(self, study: optuna.Study) -> tuple[tuple[Candidate, ...], tuple[FailedCandidate, ...]]:
        from optuna.trial import TrialState

        rows = []
        failed = []
        seen: set[Keys] = set()
        self._fresh = study.get_trials(deepcopy=False)
        for trial in self._fresh:
            keys = self._keys(trial)
            if keys is None:
                continue
            if trial.state == TrialState.FAIL and "error" in trial.user_attrs and "same_as" not in trial.user_attrs:
                failed.append(FailedCandidate(trial.number, keys, str(trial.user_attrs["error"])))
            if trial.state != TrialState.COMPLETE or "measurement" not in trial.user_attrs or keys in seen:
                continue
            design = self._design(keys)
            if design is None or trial.value is None:
                continue
            seen.add(keys)
            rows.append((trial, keys, design))
        rows.sort(key=lambda r: (-float(r[0].value or 0.0), r[2].params.total, r[0].number))
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
                    predicted_s=self._predict(keys),
                )
            )
        self._last_candidates = tuple(candidates)
        return tuple(candidates), tuple(failed)

    def _result(self, study: optuna.Study) -> RankResult:
        candidates, failed = self._collect(study)
        predicted = [c for c in candidates if c.predicted_s is not None]
        rho = spearman([c.predicted_s or 0.0 for c in predicted], [c.median_s for c in predicted])
        front = _front(candidates)
        plot = self.results_dir / "pareto.html" if self.settings.pareto and candidates else None
        return RankResult(
            problem=self.space.name,
            study_name=self.study_name,
            storage=redact(self.storage_url),
            results_path=self.results_dir / "results.json",
            plot_path=plot,
            candidates=candidates,
            pareto=front if self.settings.pareto else (),
            failed=failed,
            run=self.tally.counts(),
            spearman=rho,
            environment=self.measurer.env,
            settings=self.settings,
            measure=self.mset,
            timed_s=self.tally.timed_s,
            wall_s=time.perf_counter() - self.started,
            stop_reason=self.stop_reason,
        )

    def _write(self, study: optuna.Study) -> RankResult:
        result = self._result(study)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(result.results_path, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        if result.plot_path is not None:
            _atomic_write(result.plot_path, pareto_html(result))
        return result

    def _finish(self, study: optuna.Study) -> RankResult:
        result = self._write(study)
        if result.winner is None:
            if self.pool_complete and not self.pool_keys:
                raise MeasureError(
                    f"{self.space.name}: no combination of the step options meets the global constraints"
                )
            reasons = "; ".join(f"trial {f.trial}: {f.reason}" for f in result.failed[:3])
            raise MeasureError(
                f"{self.space.name}: no design could be measured ({len(result.failed)} failed, "
                f"{self.tally.invalid} invalid proposals){': ' + reasons if reasons else ''}"
            )
        return result


def _trial_record(result: Measurement) -> dict[str, Any]:
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


def _front(candidates: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """Pareto front: throughput up, parameters down, and peak memory down where every candidate has it."""
    with_memory = all(c.peak_memory_bytes is not None for c in candidates)
    points = [
        (-c.throughput, float(c.design.params.total), *((float(c.peak_memory_bytes or 0),) if with_memory else ()))
        for c in candidates
    ]
    chosen = pareto_front(points)
    return tuple(sorted((candidates[i] for i in chosen), key=lambda c: c.design.params.total))


def _atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a kill never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def pareto_html(result: RankResult) -> str:
    """A self-contained HTML page: an SVG scatter of throughput against parameters, front highlighted, and a table."""
    width, height, pad = 720, 420, 60
    cands = result.candidates
    front = {c.trial for c in result.pareto}
    xs = [max(c.design.params.total, 1) for c in cands]
    ys = [c.throughput for c in cands]
    log = max(xs) / min(xs) > 20
    fx = (lambda v: math.log10(v)) if log else float
    x0, x1 = fx(min(xs)), fx(max(xs))
    y0, y1 = 0.0, max(ys) * 1.05
    x1 = x1 if x1 > x0 else x0 + 1

    def px(v: float) -> float:
        return pad + (fx(v) - x0) / (x1 - x0) * (width - 2 * pad)

    def py(v: float) -> float:
        return height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad)

    dots = []
    for c, x, y in zip(cands, xs, ys, strict=True):
        on = c.trial in front
        tip = html.escape(f"#{c.rank} trial {c.trial}: {' | '.join(c.keys)} — {y:,.0f} samples/s, {x:,} params")
        dots.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{6 if on else 4}" '
            f'fill="{"#d62728" if on else "#7f7f7f"}" fill-opacity="0.8"><title>{tip}</title></circle>'
        )
    line = " ".join(f"{px(max(c.design.params.total, 1)):.1f},{py(c.throughput):.1f}" for c in result.pareto)
    rows = "".join(
        f"<tr><td>{c.rank}</td><td>{c.trial}</td><td>{html.escape(' | '.join(c.keys))}</td>"
        f"<td>{c.throughput:,.1f}</td><td>{c.design.params.total:,}</td>"
        f"<td>{'' if c.peak_memory_bytes is None else f'{c.peak_memory_bytes:,}'}</td></tr>"
        for c in result.pareto
    )
    axis = "parameters (log scale)" if log else "parameters"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(result.problem)}: Pareto front</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head><body>
<h1>{html.escape(result.problem)}: throughput vs parameters</h1>
<p>{len(cands)} measured designs; red: Pareto front. Device {html.escape(result.environment.device_name)},
{html.escape(result.measure.dtype)}, batch {result.measure.batch_size}, {html.escape(result.measure.mode)}.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">
<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#999"/>
<polyline points="{line}" fill="none" stroke="#d62728" stroke-width="1.5"/>
{"".join(dots)}
<text x="{width / 2}" y="{height - 15}" text-anchor="middle">{axis}: {min(xs):,} – {max(xs):,}</text>
<text x="15" y="{height / 2}" text-anchor="middle"
 transform="rotate(-90 15 {height / 2})">samples/s (0 – {y1:,.0f})</text>
</svg>
<h2>Pareto front</h2>
<table><tr><th>rank</th><th>trial</th><th>choices</th><th>samples/s</th><th>params</th><th>peak memory (B)</th></tr>
{rows}</table></body></html>
"""


__all__ = [
    "Candidate",
    "FailedCandidate",
    "RankProgress",
    "RankResult",
    "RankSettings",
    "RunCounts",
    "build_module",
    "open_storage",
    "pareto_front",
    "rank",
    "spearman",
]

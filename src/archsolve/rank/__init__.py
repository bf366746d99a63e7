"""Rank a space of valid designs by measured throughput with an Optuna study.

Public API::

    result = rank(space, RankSettings(trials=20), MeasureSettings(batch_size=16), progress=callback)
    result.winner.design, result.winner.throughput, result.results_path

``space`` is a :class:`archsolve.design.search_space.SearchSpace` (the solver implements it).
One Optuna trial picks one key per step (``step0``, ``step1``, … as
categorical parameters); its value is the measured throughput in samples/s
(maximised).  What happens to a proposal:

* **invalid** (``space.design`` says a global constraint fails) → the trial is
  *pruned* with ``user_attrs["invalid"]``; nothing is built or measured;
* **already measured** in the study (any run, any worker) → *completed* with
  the finished trial's value and ``user_attrs["reused_from"]``; not measured.
  "The same" means the same measurement key (:mod:`.identity`: the module's
  structure, its input, the measure settings, the environment), so a changed
  problem re-measures what changed; the same module measured in another study
  of the storage is adopted (``user_attrs["adopted_from"]``);
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
``pool_limit``; else :class:`~archsolve.design.search_space.CandidateSource` or random
samples) is timed once alone on its own input shape; a design's raw predicted
time is the sum of its steps'.  The ``enqueue`` designs predicted fastest are
enqueued first (``study.enqueue_trial``), from 8 trials with as many spread
over the predicted order.  The model is recalibrated on every measured design
(:mod:`.calibrate`) and judged on held-out designs: when it ranks it picks
further designs, when it does not TPE (seeded by ``seed``) proposes them.
Step timings are stored in the study's user attributes, so a resumed run does
not repeat them.  The result reports the held-out Spearman and ±10 % share.

**Screening and race.**  A design is first measured briefly
(``screen_repeats`` samples, once); the best measured and the reference are
then raced round-robin, and a finalist that cannot catch the leader stops
being timed (:mod:`.race`).  One measurement at a time per device on a
machine (:class:`~.timers.DeviceLock`).

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
written as a table in the results JSON and as a self-contained plotly page,
``pareto.html`` (:mod:`archsolve.rank.pareto_page`).

**Headline.**  The final race (:mod:`.race`, :mod:`.verdict`) decides: the
ranking's places, the winner and its ratio to the reference with an interval
come from it; per-trial figures are the screening.  When no finalist beats
the reference beyond its interval, the winner is the reference ("keep it").

The library never prints: pass ``progress`` to receive a :class:`RankProgress`
after every step timing, every trial and every race round (with ETA and best
so far); ``archsolve.rank`` in a notebook without one shows a progress bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..packages import lazy_names

if TYPE_CHECKING:
    from .measure import Environment, Measurement, Measurer
    from .ranker import rank
    from .settings import MeasureSettings, RankSettings
    from .stats import pareto_front, spearman
    from .study import open_storage, redact
    from .values import Candidate, FailedCandidate, RankProgress, RankResult, RunCounts

# Where each public name lives.  Loaded on first use: reading a problem file needs only the settings
# values (``values``, ``measure``), not the search loop, the study or the statistics.
_HOMES = {
    "Environment": ".measure",
    "Measurement": ".measure",
    "Measurer": ".measure",
    "MeasureSettings": ".settings",
    "rank": ".ranker",
    "pareto_front": ".stats",
    "spearman": ".stats",
    "open_storage": ".study",
    "redact": ".study",
    "Candidate": ".values",
    "FailedCandidate": ".values",
    "RankProgress": ".values",
    "RankResult": ".values",
    "RankSettings": ".settings",
    "RunCounts": ".values",
}


__getattr__ = lazy_names(__name__, _HOMES)

__all__ = [
    "Candidate",
    "Environment",
    "FailedCandidate",
    "MeasureSettings",
    "Measurement",
    "Measurer",
    "RankProgress",
    "RankResult",
    "RankSettings",
    "RunCounts",
    "open_storage",
    "pareto_front",
    "rank",
    "redact",
    "spearman",
]

"""Study and storage handling: which Optuna storage, which study, and what the study holds right now.

Default storage: ``sqlite:///<results_dir>/study.db``, fine for one process.
``storage`` takes any Optuna RDB URL (``postgresql://user:pass@host/db``,
``mysql+pymysql://…``) so several machines share one study.  For several
processes on **one** machine Optuna recommends its journal storage over
SQLite: ``journal:///abs/path/study.log`` (or ``journal://relative/path.log``)
uses ``JournalStorage(JournalFileBackend(path))``.

Every measured (or failed) trial carries its measurement key
(:func:`~.identity.measure_key`: the design's structure, its input, the
measure settings and the environment).  A trial is reused only where the key
of the design its keys name *now* matches: a changed problem (channels,
norm, bias, batch, threads …) re-measures what changed, and trials from
before the key existed are ignored.  A design measured under another study in
the same storage (another problem that builds the same module) is adopted
from there.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, Issue
from .choices import Choices
from .dashboard import label_study
from .identity import digest, measure_key
from .measure import Measurer
from .settings import RankSettings
from .values import Keys

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

#: The trial attribute holding the measurement key of what the trial measured (or failed to).
IDENTITY_ATTR = "identity"


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
        if not url.startswith("sqlite:///"):
            return optuna.storages.RDBStorage(url)
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Workers starting together would race to create the tables (alembic's version row, "table already
        # exists"): one creates them while the others wait.
        with _file_lock(path.with_name(path.name + ".lock")):
            storage = optuna.storages.RDBStorage(url)
        tune_sqlite(storage)
        return storage
    except ImportError as exc:
        raise InputError(Issue("storage", f"{redact(url)}: {exc}{driver_hint(url)}")) from exc
    except (ValueError, OSError) as exc:
        raise InputError(Issue("storage", f"{redact(url)}: {exc}")) from exc
    except Exception as exc:  # sqlalchemy's ArgumentError / OperationalError have no common base with ours
        raise InputError(Issue("storage", f"{redact(url)}: {type(exc).__name__}: {exc}")) from exc


# The database drivers SQLAlchemy picks for a bare scheme, and the pip package that provides each.
DRIVERS = {
    "postgresql": "psycopg2-binary (or write postgresql+psycopg:// and install 'psycopg[binary]')",
    "postgresql+psycopg": "'psycopg[binary]'",
    "postgresql+psycopg2": "psycopg2-binary",
    "mysql": "mysqlclient (or write mysql+pymysql:// and install pymysql)",
    "mysql+pymysql": "pymysql",
}


def driver_hint(url: str) -> str:
    """'; install the driver: pip install …' for a storage URL whose database driver is missing."""
    package = DRIVERS.get(url.split("://", 1)[0].lower())
    return f"; install the database driver: pip install {package}" if package else ""


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` between processes (no lock where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: no fcntl; concurrent first starts there may still race
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tune_sqlite(storage: Any) -> None:
    """Transactions that take SQLite's write lock when they begin, in a WAL journal with ``synchronous=NORMAL``.

    Optuna hands a queued trial to a worker by reading it WAITING and writing
    RUNNING, relying on ``SELECT … FOR UPDATE``, which SQLite ignores: two
    workers could both take the same queued trial, and the second to finish
    crashed with ``UpdateFinishedTrialError``.  ``BEGIN IMMEDIATE`` makes that
    read and write one step across processes (SQLAlchemy's documented recipe
    for pysqlite transactions; other processes wait up to ``busy_timeout``).

    WAL with ``synchronous=NORMAL`` means several times fewer fsyncs per
    trial than SQLite's default; a committed trial still survives the process
    being killed (``kill -9``); only an operating-system crash or power loss
    could drop the last commits.
    """
    from sqlalchemy import event

    def pragmas(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # pysqlite opens no transactions of its own; "begin" below does
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(storage.engine, "connect", pragmas)
    event.listen(storage.engine, "begin", begin)
    storage.engine.dispose()  # connections opened while creating the tables reconnect with the pragmas


def redact(url: str) -> str:
    """The storage URL with any password hidden (it goes into results files)."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def slug(name: str) -> str:
    # Dots and dashes are stripped from the ends so that a name like ".." never becomes a path out of
    # the results directory.
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "problem"


@dataclass(frozen=True)
class Twin:
    """A finished measurement of the same module found under other keys or in another study."""

    study: str
    trial: int
    value: float
    record: dict[str, Any]


@dataclass
class Ledger:
    """The study as a worker needs it: finished measurements, known failures, live claims, queued designs."""

    measured: dict[Keys, FrozenTrial] = field(default_factory=dict)
    #: Measured trials by measurement key, whatever keys they picked (a design another option also builds).
    by_identity: dict[str, FrozenTrial] = field(default_factory=dict)
    failed: dict[Keys, FrozenTrial] = field(default_factory=dict)
    claims: dict[Keys, list[FrozenTrial]] = field(default_factory=dict)
    waiting: set[Keys] = field(default_factory=set)
    queue: list[tuple[int, Keys]] = field(default_factory=list)

    @property
    def queued(self) -> int:
        """Queue entries (a design queued twice by racing workers counts twice)."""
        return len(self.queue)

    def touched(self, keys: Keys) -> bool:
        """Somebody has measured, failed on, claimed or queued this design."""
        return keys in self.measured or keys in self.failed or keys in self.claims or keys in self.waiting


class StudyStore:
    """One study in one storage, opened for one worker (``host``/``pid`` identify its claims)."""

    def __init__(self, choices: Choices, settings: RankSettings, measurer: Measurer, results_dir: Path) -> None:
        self.choices = choices
        self.settings = settings
        self.measurer = measurer
        self.url = settings.storage or f"sqlite:///{(results_dir / 'study.db').resolve()}"
        self.name = settings.study_name or self.default_name()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.storage: Any = None
        self.identities: dict[Keys, str | None] = {}
        self.elsewhere: dict[str, Twin] = {}

    def identity(self, keys: Keys) -> str | None:
        """The measurement key of the design ``keys`` name in this space now; None where it names no design."""
        if keys not in self.identities:
            design = self.choices.design(keys)
            self.identities[keys] = None if design is None else measure_key(design, self.measurer)
        return self.identities[keys]

    def current(self, trial: FrozenTrial, keys: Keys) -> bool:
        """Whether ``trial`` measured the very module ``keys`` build now (same key), so its figures hold."""
        found = trial.user_attrs.get(IDENTITY_ATTR)
        return found is not None and found == self.identity(keys)

    def twin(self, keys: Keys, ledger: Ledger) -> Twin | None:
        """A measurement of the same module under other keys of this study, or in another study of the storage."""
        identity = self.identity(keys)
        if identity is None:
            return None
        done = ledger.by_identity.get(identity)
        if done is not None and done.value is not None:
            return Twin(self.name, done.number, float(done.value), dict(done.user_attrs["measurement"]))
        return self.elsewhere.get(identity)

    def default_name(self) -> str:
        """Problem, device, dtype, batch, mode, layout, and a hash of the step options.

        Optuna refuses a categorical parameter whose choices change within a
        study, so a problem whose options changed (other channels, ranges or
        kinds) gets a study of its own; modules it shares with the old one are
        adopted from there by measurement key, not measured again.
        """
        s = self.measurer.settings
        device = s.device.split(":")[0]
        layout = "-cl" if s.channels_last else ""
        options = digest(self.choices.options)[:8]
        return f"{slug(self.choices.space.name)}-{device}-{s.dtype}-b{s.batch_size}-{s.mode}{layout}-{options}"

    def open(self) -> optuna.Study:
        import optuna

        storage = self.storage = open_storage(self.url)
        if self.settings.sampler == "random":
            sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=self.settings.seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=self.settings.seed, n_startup_trials=self.settings.startup_trials)
        try:
            study = optuna.create_study(
                storage=storage, study_name=self.name, sampler=sampler, direction="maximize", load_if_exists=True
            )
        except ValueError as exc:  # e.g. an existing study with other directions
            raise InputError(Issue("study", f"{self.name}: {exc}")) from exc
        label_study(study)
        self.check_options(study)
        if "problem" not in study.user_attrs:
            study.set_user_attr("problem", self.choices.space.name)
        self.elsewhere = self.other_studies()
        return study

    def check_options(self, study: optuna.Study) -> None:
        """InputError when the study's trials chose among other step options (a named study, a changed problem)."""
        from optuna.distributions import CategoricalDistribution

        wanted = dict(zip(self.choices.names, self.choices.options, strict=True))
        for trial in study.get_trials(deepcopy=False):
            for name, dist in trial.distributions.items():
                if isinstance(dist, CategoricalDistribution) and name in wanted and tuple(dist.choices) != wanted[name]:
                    raise InputError(
                        Issue(
                            "study",
                            f"{self.name} holds designs with other options for {name} (the problem changed since); "
                            "name another study, or leave the name to archsolve",
                        )
                    )

    def other_studies(self) -> dict[str, Twin]:
        """Measurements in the storage's other studies, by measurement key (read once, when the study opens)."""
        from optuna.trial import TrialState

        found: dict[str, Twin] = {}
        storage = self.storage
        for summary in storage.get_all_studies():
            if summary.study_name == self.name:
                continue
            study_id = storage.get_study_id_from_name(summary.study_name)
            for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.COMPLETE,)):
                identity, record = trial.user_attrs.get(IDENTITY_ATTR), trial.user_attrs.get("measurement")
                if isinstance(identity, str) and isinstance(record, dict) and trial.value is not None:
                    found.setdefault(identity, Twin(summary.study_name, trial.number, float(trial.value), record))
        return found

    def alive(self, trial: FrozenTrial) -> bool:
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

    def fail_dead(self, study: optuna.Study) -> None:
        """Close the running trials whose worker is gone, so their designs can be measured again."""
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not self.alive(trial):
                with contextlib.suppress(RuntimeError, ValueError):
                    study.tell(trial.number, state=TrialState.FAIL)

    def ledger(self, trials: Sequence[FrozenTrial], exclude: int | None = None) -> Ledger:
        from optuna.trial import TrialState

        ledger = Ledger()
        for trial in trials:
            if trial.number == exclude:
                continue
            if trial.state == TrialState.WAITING:
                queued = trial.user_attrs.get("choices")
                if isinstance(queued, list) and len(queued) == len(self.choices.names):
                    entry = tuple(str(k) for k in queued)
                    ledger.waiting.add(entry)
                    ledger.queue.append((trial.number, entry))
                continue
            keys = self.choices.of_trial(trial)
            if keys is None:
                continue
            attrs = trial.user_attrs
            if trial.state == TrialState.COMPLETE and "measurement" in attrs:
                identity = attrs.get(IDENTITY_ATTR)
                if isinstance(identity, str):
                    ledger.by_identity.setdefault(identity, trial)
                if self.current(trial, keys):  # else: an older study's, or another module under these keys
                    ledger.measured.setdefault(keys, trial)
            elif trial.state == TrialState.FAIL and "error" in attrs:
                if self.current(trial, keys):
                    ledger.failed.setdefault(keys, trial)
            elif trial.state == TrialState.RUNNING and attrs.get("claim") and self.alive(trial):
                ledger.claims.setdefault(keys, []).append(trial)
        return ledger

    def drop(self, number: int, reason: str) -> bool:
        """Take a queued (WAITING) trial out of the queue: failed with ``user_attrs["dropped"]``.

        False when it is no longer waiting (a worker has just taken it).
        Optuna's study API can only finish running trials, hence the storage API.
        """
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        storage = self.storage
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self.name), number)
        if storage.get_trial(trial_id).state != TrialState.WAITING:
            return False
        try:
            storage.set_trial_user_attr(trial_id, "dropped", reason)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False
        return True

    def enqueue(self, study: optuna.Study, keys: Keys, source: str) -> None:
        # The choices ride along in user_attrs so any worker can see what is queued.
        study.enqueue_trial(self.choices.params(keys), user_attrs={"source": source, "choices": list(keys)})

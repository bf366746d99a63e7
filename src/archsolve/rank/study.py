"""Study and storage handling: which Optuna storage, which study, and what the study holds right now.

Default storage: ``sqlite:///<results_dir>/study.db``, fine for one process.
``storage`` takes any Optuna RDB URL (``postgresql://user:pass@host/db``,
``mysql+pymysql://…``) so several machines share one study.  For several
processes on **one** machine Optuna recommends its journal storage over
SQLite: ``journal:///abs/path/study.log`` (or ``journal://relative/path.log``)
uses ``JournalStorage(JournalFileBackend(path))``.

A study records the settings its measurements were taken under (device,
dtype, batch, mode, layout, threads) and refuses a worker whose settings
differ: their numbers would not be comparable.
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

from ..dashboard import label_study
from ..errors import InputError, Issue
from .choices import Choices
from .measure import Measurer
from .values import Keys, RankSettings

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

FINGERPRINT_ATTR = "archsolve_measure"


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


@dataclass
class Ledger:
    """The study as a worker needs it: finished measurements, known failures, live claims, queued designs."""

    measured: dict[Keys, FrozenTrial] = field(default_factory=dict)
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

    def default_name(self) -> str:
        s = self.measurer.settings
        device = s.device.split(":")[0]
        layout = "-cl" if s.channels_last else ""
        return f"{slug(self.choices.space.name)}-{device}-{s.dtype}-b{s.batch_size}-{s.mode}{layout}"

    def fingerprint(self) -> dict[str, Any]:
        """Settings that make measurements comparable; a study refuses a worker whose fingerprint differs."""
        s, env = self.measurer.settings, self.measurer.env
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
        mine = self.fingerprint()
        theirs = study.user_attrs.get(FINGERPRINT_ATTR)
        if theirs is None:
            study.set_user_attr(FINGERPRINT_ATTR, mine)
            study.set_user_attr("problem", self.choices.space.name)
        elif theirs != mine:
            diff = ", ".join(
                f"{k}: study {theirs.get(k)!r}, here {mine.get(k)!r}" for k in mine if theirs.get(k) != mine[k]
            )
            raise InputError(
                Issue("study", f"{self.name} was measured under other settings ({diff}); name another study")
            )
        return study

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
                ledger.measured.setdefault(keys, trial)
            elif trial.state == TrialState.FAIL and "error" in attrs:
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

"""Helpers shared by the whole suite.

The helper modules (oracles, brute-force references, seed designs, models) are the package
``helpers`` (``tests/helpers/``), importable because ``pythonpath`` in
``[tool.pytest.ini_options]`` names ``tests``.  Fixtures used by several test files live here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest
from click.testing import CliRunner

TESTS = Path(__file__).parent
ROOT = TESTS.parent
PROBLEMS = ROOT / "problems"


class CliRun(NamedTuple):
    """One ``archsolve`` invocation through click's runner."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli() -> Callable[..., CliRun]:
    """``cli("summary", path, "--json")`` runs the command in-process: exit code, stdout, stderr."""
    from archsolve.cli.commands import main

    def run(*args: str) -> CliRun:
        result = CliRunner().invoke(main, list(args))
        return CliRun(result.exit_code, result.stdout, result.stderr)

    return run


def import_file(path: Path) -> ModuleType:
    """A generated source file imported as a module (emitted models)."""
    spec = importlib.util.spec_from_file_location(f"emitted_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_source() -> Callable[[Path], ModuleType]:
    """Import a generated ``.py`` file as a module."""
    return import_file


@pytest.fixture
def fresh_python() -> Callable[[str], subprocess.CompletedProcess[str]]:
    """Run Python code in a new interpreter (nothing imported yet), the test helpers importable."""

    def run(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=cwd or ROOT, env=env
        )

    return run


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, torch's threads share the cores between the workers.

    Every worker starting as many threads as there are cores oversubscribes them: a DCGAN forward took
    0.45 s with two threads per worker on two busy cores, 0.03 s with one.  The same computations, so
    nothing a test proves changes; a plain run keeps torch's default.  (The ranking's own ``threads``
    setting still sets torch's threads while it measures.)
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 0:
        import torch

        # Only this process: an interpreter a test starts keeps torch's default, as a user's would (a
        # study records the thread count, so a test running the CLI twice must see the same one).
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(autouse=True)
def _no_inherited_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the terminal width a plain ``pytest`` run gives: pytest-xdist's workers set
    ``COLUMNS=80``, and piped tables are drawn ``$COLUMNS`` wide (120 without it)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)

"""archsolve: layers proven to produce the sizes you want, ranked by measured speed.

A problem (the tensor sizes a CNN must pass through) is solved exactly, ranked by
measured speed and built as a PyTorch module::

    >>> import archsolve
    >>> problem = archsolve.Problem.create(name="tiny", sizes=[1, 4], channels=[16, 8], ops="conv_transpose")
    >>> solution = archsolve.solve(problem, top=3)
    >>> solution.count
    8
    >>> archsolve.summary(solution).params.total  # print() it for the table
    2056

Every name is imported on first use, so ``import archsolve`` loads neither torch,
z3 nor optuna; each stage loads its own when it runs (``archsolve.build``, the
torch stage, on first use).  ``archsolve.explore``, ``solve``, ``rank``, ``build`` and ``summary``
are each both the stage's module and, called, the function of that name in
:mod:`archsolve.api`.  Where
each stage lives, and which heavy dependency it brings: docs/architecture.md.

Exceptions
----------
Every error archsolve raises on purpose is an :class:`ArchsolveError`; its
``exit_code`` is the command line's exit status::

    ArchsolveError          (exit_code 2)
    ├── InputError          bad input: a file, key, value or flag; lists every issue (2)
    ├── InfeasibleError     well formed, but no design exists; ``explanation`` says why (1)
    ├── SolverTimeout       the time limit ran out before the solver answered (3)
    ├── BuildError          torch refused to build or run a design (1)
    └── MeasureError        a measurement could not be taken (1)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import api as api  # light: registers the functions the callable stage modules answer with
from .formats import VERSION as __version__

__all__ = [
    "ArchsolveError",
    "BuildError",
    "Design",
    "InfeasibleError",
    "InputError",
    "MeasureError",
    "Problem",
    "SolverTimeout",
    "__version__",
    "build",
    "check",
    "emit_source",
    "explore",
    "load_design",
    "load_problem",
    "rank",
    "save_design",
    "solve",
    "summary",
]

#: Where each public name is defined; it is imported from there on first use (PEP 562).
_HOMES = {
    "ArchsolveError": "archsolve.errors",
    "BuildError": "archsolve.errors",
    "InfeasibleError": "archsolve.errors",
    "InputError": "archsolve.errors",
    "MeasureError": "archsolve.errors",
    "SolverTimeout": "archsolve.errors",
    "Design": "archsolve.design",
    "Problem": "archsolve.problem",
    "emit_source": "archsolve.api",
    "load_design": "archsolve.api",
    "load_problem": "archsolve.api",
    "save_design": "archsolve.api",
}
#: API functions named like their stage's module: the module, callable as the function (archsolve.packages).
_CALLABLE_MODULES = ("build", "check", "explore", "rank", "solve", "summary")

if TYPE_CHECKING:
    from .api import build, check, emit_source, explore, load_design, load_problem, rank, save_design, solve, summary
    from .design import Design
    from .errors import ArchsolveError, BuildError, InfeasibleError, InputError, MeasureError, SolverTimeout
    from .problem import Problem


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f"archsolve.{name}")
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'archsolve' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

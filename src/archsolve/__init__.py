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

``import archsolve`` loads neither torch, z3 nor optuna: every function imports its
stage when called, and the other names are imported on first use.  ``archsolve.solve``,
``rank``, ``build``, ``summary``, ``explore`` and ``check`` are the plain functions of
:mod:`archsolve.api`, whichever stage module of the same name was imported
(``from archsolve.solve import Solution`` reaches the module).  Where each stage lives,
and which heavy dependency it brings: docs/architecture.md.

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

import sys
from typing import TYPE_CHECKING

from .api import build, check, emit_source, explore, load_design, load_problem, rank, save_design, solve, summary
from .core.formats import VERSION as __version__
from .packages import ApiPackage, lazy_names

__all__ = [
    "ArchsolveError",
    "BuildError",
    "CheckResult",
    "Design",
    "Exploration",
    "InfeasibleError",
    "InputError",
    "MeasureError",
    "Problem",
    "RankResult",
    "Solution",
    "SolverTimeout",
    "Summary",
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

#: Where each public type is defined; it is imported from there on first use (PEP 562).
_HOMES = {
    "ArchsolveError": ".errors",
    "BuildError": ".errors",
    "InfeasibleError": ".errors",
    "InputError": ".errors",
    "MeasureError": ".errors",
    "SolverTimeout": ".errors",
    "CheckResult": ".check.report",
    "Design": ".design.design",
    "Exploration": ".design.explore",
    "Problem": ".problem.problem",
    "RankResult": ".rank",
    "Solution": ".solve",
    "Summary": ".build.summary",
}

if TYPE_CHECKING:
    from .build.summary import Summary
    from .check.report import CheckResult
    from .design.design import Design
    from .design.explore import Exploration
    from .errors import ArchsolveError, BuildError, InfeasibleError, InputError, MeasureError, SolverTimeout
    from .problem.problem import Problem
    from .rank import RankResult
    from .solve import Solution

sys.modules[__name__].__class__ = ApiPackage  # archsolve.solve stays the function when the package loads


__getattr__ = lazy_names(__name__, _HOMES)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

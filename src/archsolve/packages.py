"""Stage modules that are also API functions: ``archsolve.explore``, ``solve``, ``rank``, ``build``, ``summary``.

``archsolve.solve`` is the solver's package (``from archsolve.solve import Solution``)
and, called, :func:`archsolve.api.solve`; likewise for the other four.  Python binds
a submodule to its parent's attribute of the same name when it is first imported,
so a plain function ``archsolve.solve`` would be replaced by the package at that
moment; a callable module is one object under the name whichever comes first.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class CallableModule(ModuleType):
    """A module whose call is the :mod:`archsolve.api` function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from . import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


def make_callable(name: str) -> None:
    """Make the module ``name`` (being imported) callable as its API function."""
    sys.modules[name].__class__ = CallableModule

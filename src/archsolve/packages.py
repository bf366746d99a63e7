"""Stage modules that are also API functions: ``archsolve.explore``, ``solve``, ``rank``, ``build``, ``summary``…

``archsolve.solve`` is the solver's package (``from archsolve.solve import Solution``)
and, called, :func:`archsolve.api.solve`; likewise for the others.  Python binds a
submodule to its parent's attribute of the same name when it is first imported, so
a plain function ``archsolve.solve`` would be replaced by the package at that
moment; a callable module is one object under the name whichever comes first.

:mod:`archsolve.api` registers its functions here (:func:`api_function`) when
``archsolve`` is imported, so a stage module never imports the API that calls it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: API functions by name, registered by archsolve.api.
_FUNCTIONS: dict[str, Callable[..., Any]] = {}


def api_function(function: F) -> F:
    """Register ``function`` as what calling the stage module of the same name does."""
    _FUNCTIONS[function.__name__] = function
    return function


class CallableModule(ModuleType):
    """A module whose call is the API function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _FUNCTIONS[self.__name__.rpartition(".")[2]](*args, **kwargs)


def make_callable(name: str) -> None:
    """Make the module ``name`` (being imported) callable as its API function."""
    sys.modules[name].__class__ = CallableModule

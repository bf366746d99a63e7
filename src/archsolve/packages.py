"""How archsolve's packages load: names imported on first use, API functions that keep their names.

:func:`lazy_names` is the ``__getattr__`` of a package whose names are imported on first
use (``archsolve``, ``archsolve.rank``), so importing the package loads nothing heavy.

:class:`ApiPackage` is the ``archsolve`` package's module type.  ``archsolve.solve`` is the
function :func:`archsolve.api.solve`, and the solver's package is ``archsolve.solve`` in
``sys.modules`` (``from archsolve.solve import Solution``).  Python binds a submodule to its
parent's attribute of the same name when the submodule is first imported, which would replace
the function by the package at that moment; :class:`ApiPackage` keeps the function, so
``help()`` and :func:`inspect.signature` show the function whichever is imported first.
A stage's modules are reached with ``from archsolve.solve import tables`` (``import
archsolve.solve.tables as tables`` reads the attribute ``archsolve.solve``: the function).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from types import FunctionType, ModuleType
from typing import Any


class ApiPackage(ModuleType):
    """A package whose plain functions are not replaced by the submodules named like them."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, ModuleType) and isinstance(self.__dict__.get(name), FunctionType):
            return  # the import system binding a stage: the module stays reachable through sys.modules
        super().__setattr__(name, value)


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) importing each name from its home module on first use.

    ``homes`` maps a name to its module, relative to ``package`` when it starts with a dot.
    The value is then kept in the package, so later lookups skip the function.
    """

    def load(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name], package), name)
        vars(sys.modules[package])[name] = value
        return value

    return load

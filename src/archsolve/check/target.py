"""Stage 1: what to check: a model from ``path/file.py:Name``, ``package.module:Name`` or an archsolve
design, and the input shape with its ``?`` axes.

Every way this can go wrong is an :class:`~archsolve.errors.InputError` naming the target and
what was expected, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, unknown

if TYPE_CHECKING:
    from torch import nn

    from ..design.design import Design

#: The most sizes one axis is analysed over (bounded work whatever the flag says).
MAX_SIZE = 1 << 16


@dataclass(frozen=True)
class InputShape:
    """``1x3x?x?``: fixed sizes, None where an axis is analysed."""

    dims: tuple[int | None, ...]

    @classmethod
    def parse(cls, text: str | tuple[int | None, ...] | list[int | None]) -> InputShape:
        if not isinstance(text, str):
            dims = tuple(text)
            if not dims or any(d is not None and (not isinstance(d, int) or d < 1) for d in dims):
                raise InputError(f"input shape {dims!r}: expected positive ints or None (analysed axes)")
            return cls(dims)
        parts = text.strip().lower().replace("×", "x").split("x")
        dims_list: list[int | None] = []
        for part in parts:
            part = part.strip()
            if part == "?":
                dims_list.append(None)
            elif part.isdigit() and int(part) >= 1:
                dims_list.append(int(part))
            else:
                raise InputError(
                    f"--input {text!r}: {part!r} is not a size; expected sizes like 1x3x?x? "
                    "(positive integers, ? for each axis to analyse)"
                )
        return cls(tuple(dims_list))

    @property
    def free(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.dims) if d is None)

    def at(self, sizes: Mapping[int, int]) -> tuple[int, ...]:
        return tuple(sizes[i] if d is None else d for i, d in enumerate(self.dims))

    def __str__(self) -> str:
        return "x".join("?" if d is None else str(d) for d in self.dims)


def parse_range(text: str | tuple[int, int]) -> tuple[int, int]:
    """``1:1024`` → (1, 1024): inclusive, 1 ≤ low ≤ high ≤ 65536."""
    if isinstance(text, tuple):
        low, high = text
    else:
        try:
            low_text, high_text = text.split(":")
            low, high = int(low_text), int(high_text)
        except ValueError:
            raise InputError(f"--range {text!r}: expected LOW:HIGH, e.g. 1:1024") from None
    if not 1 <= low <= high <= MAX_SIZE:
        raise InputError(f"--range {low}:{high}: expected 1 <= LOW <= HIGH <= {MAX_SIZE}")
    return int(low), int(high)


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--kwargs: not JSON ({exc.msg} at column {exc.colno}); expected an object like '{{\"in_channels\": 3}}'"
        ) from None
    if not isinstance(value, dict):
        raise InputError(f"--kwargs: expected a JSON object of keyword arguments, got {type(value).__name__}")
    return value


def _import_file(path: Path) -> Any:
    name = f"archsolve_check_target_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: cannot import: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error in it is bad input
        sys.modules.pop(name, None)
        raise InputError(f"{path}: fails to import: {_where(exc, str(path))}{type(exc).__name__}: {exc}") from None
    return module


def _where(exc: BaseException, filename: str) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"line {exc.lineno}: "
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).name == Path(filename).name]
    return f"line {frames[-1].lineno}: " if frames else ""


def load_object(target: str) -> tuple[Callable[..., Any], str]:
    """The class or factory named by ``path/file.py:Name`` or ``package.module:Name``."""
    if ":" not in target:
        raise InputError(f"{target!r}: expected path/file.py:Name or package.module:Name (a class or factory)")
    where, _, name = target.rpartition(":")
    if where.endswith(".py") or "/" in where or Path(where).exists():
        path = Path(where)
        if not path.is_file():
            raise InputError(f"{where}: no such file")
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise InputError(f"{where}: no module named {exc.name!r}") from None
        except Exception as exc:
            raise InputError(f"{where}: fails to import: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise InputError(f"{target}: {unknown('name', part, names)}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"{target}: {type(obj).__name__} is not a class or factory")
    return obj, name


def instantiate(factory: Callable[..., Any], name: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """Call the class or factory on the meta device (no weights computed); bad arguments are InputErrors."""
    import torch
    from torch import nn

    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise InputError(f"{name} needs arguments: {exc}; pass them with --kwargs '{{\"name\": value}}'") from None
    except ValueError:
        pass  # no signature to check (a builtin): let the call say
    try:
        with torch.device("meta"):
            model = factory(**kwargs)
    except Exception as exc:  # the user's constructor: any failure is about its arguments or its code
        raise InputError(f"{name}({_kwargs_text(kwargs)}) failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"{name} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def load_design(path: str) -> Design:
    """A saved design, or a problem file's best design (the solver runs)."""
    import tomllib

    from ..problem.saved import load_design as load_saved
    from ..problem.saved import looks_like_problem

    file = Path(path)
    if file.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}  # load_saved reports it
        if looks_like_problem(data) or "encoder" in data:
            from ..problem.problem import load as load_problem
            from ..solve import solve

            return solve(load_problem(path), top=1).candidates[0].design
    return load_saved(path)


def is_design_path(target: str) -> bool:
    return target.lower().endswith((".toml", ".json")) and ":" not in Path(target).name


def design_model(design: Design) -> nn.Module:
    """The design's emitted source, executed: the model a user of ``archsolve build`` gets."""
    import torch

    from ..build.emit import class_name, emit_source

    namespace: dict[str, Any] = {"__name__": "archsolve_check_design"}
    exec(compile(emit_source(design), f"<{design.name}>", "exec"), namespace)
    with torch.device("meta"):
        model: nn.Module = namespace[class_name(design)]()
    return model


def load_model(target: str, kwargs: Mapping[str, Any] | None = None) -> tuple[nn.Module, str, Design | None]:
    """The model named by ``target`` (and the design behind it, for an archsolve design file)."""
    if is_design_path(target):
        if kwargs:
            raise InputError("--kwargs applies to Python targets, not archsolve designs")
        design = load_design(target)
        return design_model(design), design.name, design
    factory, name = load_object(target)
    return instantiate(factory, name, kwargs or {}), name, None

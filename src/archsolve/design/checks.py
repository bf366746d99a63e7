"""Reading user files: one checker that gathers every issue, each naming the file, key and value.

Problem files and saved designs both read through it, so their messages agree and a file's
errors are all reported at once.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..catalog import KINDS
from ..errors import InputError, Issue, nearest

#: The largest integer a file may hold: torch, z3 and numpy all stop at int64.
INT64_MAX = 2**63 - 1


#: The largest file read (problem files and saved designs are a few KiB; /dev/zero is endless).
MAX_FILE_BYTES = 16 * 2**20


def read_text(path: Path) -> str:
    """A user file's text; InputError naming the file when it is missing, unreadable or too large."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise InputError(Issue(str(path), f"larger than {MAX_FILE_BYTES // 2**20} MiB: not a problem file"))
        return data.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except FileNotFoundError:
        raise InputError(Issue(str(path), "no such file")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Issue(str(path), f"cannot read: {exc}")) from exc
    except MemoryError:
        raise InputError(Issue(str(path), "too large to read (is it a device or a stream?)")) from None


def write_text(path: str | Path, text: str) -> Path:
    """Write a file the user named; InputError naming it when it cannot be written (a missing folder, no rights)."""
    path = Path(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(Issue(str(path), f"cannot write: {exc.strerror or exc}")) from exc
    return path


def not_one_of(value: Any, options: Sequence[str]) -> str:
    """The message for a value that is not one of the words ``options``, with the nearest one."""
    hint = nearest(value, options) if isinstance(value, str) else None
    tail = f"; did you mean {hint!r}?" if hint else ""
    return f"expected one of {', '.join(map(repr, options))}, got {show(value)}{tail}"


class Checker:
    """Collects every issue in one file; readers return a usable default after recording a problem."""

    def __init__(self, source: str, reference: str = "") -> None:
        self.source = source
        #: Where the file's keys are documented, named in unknown-key messages (docs/problems.md).
        self.reference = reference
        self.issues: list[Issue] = []

    def add(self, key: str, message: str) -> None:
        self.issues.append(Issue(f"{self.source}: {key}" if key else self.source, message))

    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.add(key, f"expected a table [{key}], got {show(value)}")
            return {}
        return value

    def keys(self, data: Mapping[str, Any], allowed: Sequence[str], prefix: str = "") -> None:
        """Unknown keys, each with the nearest valid one."""
        for key in data:
            if key not in allowed:
                hint = nearest(key, allowed)
                tail = f"did you mean {hint!r}?" if hint else f"expected one of {', '.join(allowed)}"
                where = f" (keys: {self.reference})" if self.reference else ""
                self.add(f"{prefix}{key}", f"unknown key; {tail}{where}")

    def integer(self, value: Any, key: str, low: int | None = None, high: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(key, f"expected an integer, got {show(value)}")
            return None
        if high is None and abs(value) > INT64_MAX:
            self.add(key, f"expected an integer of at most {INT64_MAX:,} (int64), got {show(value)}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None or (high > 10**6 and low is not None and value < low):
                bound = f">= {low}"  # a technical ceiling is not what the user missed
            elif low is None or (high > 10**6 and value > high):
                bound = f"<= {high:,}"
            else:
                bound = f"in [{low}, {high}]"
            self.add(key, f"expected an integer {bound}, got {value}")
            return None
        return value

    def boolean(self, value: Any, key: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(key, f"expected true or false, got {show(value)}")
            return None
        return value

    def choice(self, value: Any, key: str, options: Sequence[str]) -> str | None:
        if not isinstance(value, str) or value not in options:
            self.add(key, not_one_of(value, options))
            return None
        return value

    def span(self, value: Any, key: str, low: int) -> tuple[int, int] | None:
        """An inclusive range: an int (pinned) or ``[low, high]``."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if (
            not isinstance(value, list)
            or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
        ):
            self.add(key, f"expected an integer or an inclusive range [low, high], got {show(value)}")
            return None
        a, b = value
        if max(abs(a), abs(b)) > INT64_MAX:
            self.add(key, f"expected integers of at most {INT64_MAX:,} (int64), got {show(value)}")
            return None
        if a < low or b < a:
            self.add(key, f"expected {low} <= low <= high, got [{a}, {b}]")
            return None
        return a, b

    def shape(self, value: Any, key: str) -> tuple[int, ...] | None:
        if (
            not isinstance(value, list)
            or len(value) < 2
            or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= INT64_MAX for v in value)
        ):
            self.add(key, f"expected [channels, size, ...] of positive integers, got {show(value)}")
            return None
        return tuple(value)

    def per_axis(self, value: Any, key: str, ndim: int, boolean: bool = False) -> list[Any] | None:
        """One value for every axis, or a list with one per axis."""
        values = value if isinstance(value, list) else [value] * ndim
        if len(values) != ndim:
            self.add(key, f"expected one value or {ndim} (one per axis), got {len(values)}")
            return None
        if boolean:
            ok = all(isinstance(v, bool) for v in values)
        else:
            ok = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        if not ok:
            what = "true or false" if boolean else "an integer"
            self.add(key, f"expected {what} or a list of them per axis, got {show(value)}")
            return None
        return values


def show(value: Any) -> str:
    """A value as the user wrote it in TOML."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else repr(value[:77]) + "..."
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, int) and abs(value) >= 10**24:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, list | dict):
        return _SHORT.repr(value)  # bounded: a 5,000-deep or million-long value prints a few lines at most
    return str(value)


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 6, 32, 16, 80, 80


def read_ops(
    check: Checker, value: Any, n_steps: int, ndim: int | None, key: str = "ops"
) -> list[tuple[tuple[str, ...], ...]]:
    """``ops``: one entry for every step or one per step; an entry is a kind, a composite
    (``upsample+conv``) or alternatives the solver chooses between (``conv_transpose | upsample+conv``,
    or a list of them)."""
    if value is None:
        check.add(key, 'missing; expected a kind for every step or one per step, e.g. ops = "conv_transpose"')
        return [(("conv",),)] * n_steps
    shared = isinstance(value, str)
    entries = [value] if shared else value
    if not isinstance(entries, list) or (not shared and len(entries) != n_steps):
        check.add(key, f"expected one kind or a list of {n_steps} (one per step), got {show(value)}")
        return [(("conv",),)] * n_steps
    out = [_step_ops(check, key if shared else f"{key}[{i}]", entry, ndim) for i, entry in enumerate(entries)]
    return out * n_steps if shared else out


def _step_ops(check: Checker, key: str, entry: Any, ndim: int | None) -> tuple[tuple[str, ...], ...]:
    texts = entry.split("|") if isinstance(entry, str) else entry
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        check.add(key, f"expected a kind such as 'conv', 'upsample+conv' or 'conv | max_pool', got {show(entry)}")
        return (("conv",),)
    alternatives: list[tuple[str, ...]] = []
    for text in texts:
        parts = tuple(p.strip() for p in text.split("+"))
        for part in parts:
            if part not in KINDS:
                hint = nearest(part, KINDS)
                tail = f"did you mean {hint!r}?" if hint else f"expected one of {', '.join(KINDS)}"
                check.add(key, f"unknown op kind {part!r}; {tail}")
            elif ndim is not None and ndim not in KINDS[part].ndims:
                check.add(key, f"{part} supports {KINDS[part].ndims}D inputs only, the problem is {ndim}D")
        if parts not in alternatives:
            alternatives.append(parts)
    return tuple(alternatives)

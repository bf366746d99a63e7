"""One exception tree for the whole library.

The library never prints or exits: it raises one of these, and the CLI maps
``exit_code`` to the process status.  Errors coming from z3 or torch are
converted where they enter (``raise ... from exc``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class ArchsolveError(Exception):
    """Base of every error archsolve raises on purpose."""

    exit_code = 2


@dataclass(frozen=True)
class Issue:
    """One thing wrong with the user's input: where it is and what was expected."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class InputError(ArchsolveError):
    """Bad input (file, key, value or flag): exit code 2.

    Carries every issue found, so a user fixes a file in one pass.
    """

    exit_code = 2

    def __init__(self, issues: Issue | str | Sequence[Issue]) -> None:
        if isinstance(issues, str):
            issues = [Issue("", issues)]
        elif isinstance(issues, Issue):
            issues = [issues]
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class InfeasibleError(ArchsolveError):
    """The problem is well formed but has no solution: exit code 1.

    ``explanation`` holds the human-readable reasons (conflicting steps and
    constraints, nearest sizes that would work).
    """

    exit_code = 1

    def __init__(self, summary: str, explanation: Sequence[str] = ()) -> None:
        self.summary = summary
        self.explanation: tuple[str, ...] = tuple(explanation)
        super().__init__("\n".join([summary, *(f"  - {line}" for line in self.explanation)]))


class SolverTimeout(ArchsolveError):
    """Z3 did not answer within the time limit: exit code 3 (neither solved nor proven infeasible)."""

    exit_code = 3


class BuildError(ArchsolveError):
    """A design could not be turned into a torch module (torch rejected it)."""

    exit_code = 1


class MeasureError(ArchsolveError):
    """A measurement could not be taken (device missing, out of memory, runtime error)."""

    exit_code = 1


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid spelling of ``word``, for 'did you mean' hints."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def unknown(kind: str, word: str, choices: Iterable[str]) -> str:
    """Message for an unknown name, with the nearest valid one when there is one."""
    options = sorted(choices)
    hint = nearest(word, options)
    tail = f"; did you mean {hint!r}?" if hint else f"; expected one of {', '.join(options)}"
    return f"unknown {kind} {word!r}{tail}"


def first_line(exc: BaseException) -> str:
    """An exception in one line, for a message: ``Type: first line of its text``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

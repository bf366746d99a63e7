"""Tables as plain values: what every archsolve table says, with no opinion on how it is drawn.

The library builds a :class:`Table` (explore's recipes, solve's designs, the
ranked results, the summary); :mod:`archsolve.core.console` draws it with rich,
fitted to the terminal.  Keeping the data free of rich keeps the library light
and lets tests read the cells directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Column:
    """One column: its header, alignment, and how its cells may break across lines.

    ``separator``: the cells are lists joined by it (a recipe's steps joined by
    ``" | "``); a narrow column breaks them only there, keeping each piece whole.
    ``wrap`` false keeps a cell on one line (numbers).
    """

    header: str
    align: Literal["left", "right"] = "left"
    wrap: bool = False
    separator: str | None = None


@dataclass(frozen=True)
class Table:
    """A titled grid of text cells with footer lines; every row has one cell per column."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str | None = None
    #: Lines printed under the table (totals, conventions, legends).
    notes: tuple[str, ...] = ()
    #: Rows after which a rule is drawn (the index of the row above it).
    rules_after: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} has {len(row)} cells for {len(self.columns)} columns")

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(c.header for c in self.columns)

    def column(self, header: str) -> tuple[str, ...]:
        """The cells under ``header``, top to bottom."""
        i = self.headers.index(header)
        return tuple(row[i] for row in self.rows)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 valid design``, ``2 valid designs``, ``5,307 recipes`` (``many`` for irregular plurals)."""
    word = noun if count == 1 else (many if many is not None else _regular_plural(noun))
    return f"{count:,} {word}"


def _regular_plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last.endswith(("s", "x", "sh", "ch")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last

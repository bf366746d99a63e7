"""Drawing archsolve's output with rich: tables fitted to the terminal, text lines, progress.

rich is imported on first use, never at module import, so ``archsolve --help``
and ``explore --json`` stay light.  Off a terminal (a pipe, a file) nothing
carries ANSI codes and tables are drawn 120 columns wide (or ``$COLUMNS``);
``NO_COLOR`` turns colour off everywhere (rich reads it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from .table import Table

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.measure import Measurement
    from rich.table import Table as RichTable

#: Width of tables written to a pipe or file, where there is no terminal to fit.
PIPE_WIDTH = 120


def width_for(stream: IO[str]) -> int | None:
    """The width to draw at: None (rich asks the terminal) on a terminal, else ``$COLUMNS`` or 120."""
    if isatty(stream):
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH


def isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def make_console(stream: IO[str], width: int | None = None) -> Console:
    """A rich console on ``stream`` that prints text as given: no markup, no highlighting, no emoji codes."""
    from rich.console import Console

    return Console(
        file=stream,
        width=width if width is not None else width_for(stream),
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def rich_table(table: Table) -> RichTable:
    """The rich drawing of ``table``: a header rule, numbers right-aligned, long cells wrapped."""
    from rich import box
    from rich.table import Table as RichTable

    # Cells padded on the right only: with the box's blank divider, columns stand two spaces apart.
    drawn = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for column in table.columns:
        drawn.add_column(
            column.header,
            justify=column.align,
            no_wrap=not column.wrap and column.separator is None,
            overflow="fold",
        )
    for i, row in enumerate(table.rows):
        cells: list[Any] = [
            Pieces(cell, column.separator) if column.separator else cell
            for cell, column in zip(row, table.columns, strict=True)
        ]
        drawn.add_row(*cells, end_section=i in table.rules_after)
    return drawn


def print_table(console: Console, table: Table) -> None:
    """Title line, the table, then its notes."""
    if table.title:
        console.print(table.title, soft_wrap=True)
    console.print(rich_table(table))
    for note in table.notes:
        console.print(note)


def render(table: Table, width: int = PIPE_WIDTH) -> str:
    """``table`` as plain text ``width`` columns wide, as a pipe would receive it."""
    import io

    lines = plain_lines(table, width)
    if lines is None:
        buffer = io.StringIO()
        print_table(make_console(buffer, width), table)
        lines = buffer.getvalue().splitlines()
    return "\n".join(line.rstrip() for line in lines)


def plain_lines(table: Table, width: int) -> list[str] | None:
    """The lines rich draws for ``table`` (:func:`rich_table`) when plain layout suffices; else None.

    Drawing a table with rich costs more than a quick ``solve --no-rank`` computes (and importing
    rich more still), so a pipe's table is laid out here when its text is one cell a character and
    at most one column (one of pieces, a recipe) must narrow to fit: each column as wide as its
    widest cell, two spaces apart, right-aligned where the column says, a rule under the header
    (a table with ``rules_after`` is left to rich); the narrowed column takes the width left and
    breaks its cells between pieces (:meth:`Pieces.lines`).  The test suite checks it against rich.
    """
    texts = [*table.headers, *(cell for row in table.rows for cell in row), *table.notes, table.title or ""]
    if table.rules_after or any(len(note) > width for note in table.notes):
        return None
    if not all(_one_cell_wide(text) for text in texts):
        return None
    widths = [max(len(text) for text in column) for column in zip(table.headers, *table.rows, strict=True)]
    gaps = 2 * (len(widths) - 1)
    narrow = None
    if sum(widths) + gaps > width:
        pieces = [i for i, column in enumerate(table.columns) if column.separator is not None]
        if len(pieces) != 1 or any(column.wrap for column in table.columns):
            return None
        (narrow,) = pieces
        separator = table.columns[narrow].separator or ""
        widths[narrow] = width - gaps - sum(w for i, w in enumerate(widths) if i != narrow)
        tail = len(separator.rstrip())
        cells = [row[narrow] for row in table.rows]
        if widths[narrow] < max(len(piece) + tail for cell in cells for piece in cell.split(separator)):
            return None

    def lines_of(cells: tuple[str, ...]) -> list[str]:
        stacked = [
            Pieces(cell, column.separator).lines(widths[i], len) if i == narrow and column.separator else [cell]
            for i, (cell, column) in enumerate(zip(cells, table.columns, strict=True))
        ]
        return [
            "  ".join(
                (part[k] if k < len(part) else "").rjust(w)
                if column.align == "right"
                else (part[k] if k < len(part) else "").ljust(w)
                for part, w, column in zip(stacked, widths, table.columns, strict=True)
            )
            for k in range(max(len(part) for part in stacked))
        ]

    lines = [table.title] if table.title else []
    lines += [*lines_of(table.headers), "─" * (sum(widths) + gaps)]
    for row in table.rows:
        lines += lines_of(row)
    return [*lines, *table.notes]


def _one_cell_wide(text: str) -> bool:
    """Every character printable and one terminal cell wide (no tab, no wide or combining character)."""
    import unicodedata

    return all(
        c.isprintable() and not unicodedata.combining(c) and unicodedata.east_asian_width(c) not in "WF" for c in text
    )


class Pieces:
    """A cell made of pieces joined by a separator, broken across lines only between pieces.

    A recipe ``conv k4 s2 p1 | conv k3 s1 p1 | …`` in a narrow column keeps each
    step whole; a line ending in the separator says the cell goes on.  A piece
    wider than the column is word-wrapped as any text.
    """

    def __init__(self, text: str, separator: str) -> None:
        self.separator = separator
        self.pieces = text.split(separator)

    @property
    def _tail(self) -> str:
        return self.separator.rstrip()

    def lines(self, width: int, cell_len: Callable[[str], int] | None = None) -> list[str]:
        """The cell's lines, each at most ``width`` wide where its pieces allow (``cell_len``: rich's)."""
        if cell_len is None:
            from rich.cells import cell_len as rich_cell_len

            cell_len = rich_cell_len
        return list(self._lines(width, cell_len))

    def _lines(self, width: int, cell_len: Callable[[str], int]) -> Iterator[str]:
        current = ""
        for i, piece in enumerate(self.pieces):
            tail = "" if i == len(self.pieces) - 1 else self._tail
            joined = f"{current}{self.separator}{piece}" if current else piece
            if current and cell_len(joined + tail) > width:
                yield current + self._tail
                current = piece
            else:
                current = joined
        yield current

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.cells import cell_len
        from rich.measure import Measurement

        widest = max(cell_len(piece + self._tail) for piece in self.pieces)
        whole = cell_len(self.separator.join(self.pieces))
        return Measurement(min(widest, whole), whole).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        yield Text("\n".join(self.lines(options.max_width)), overflow="fold")


class Terminal:
    """The CLI's two streams as rich consoles, each made on first use (so an unused one costs nothing)."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        import sys

        self._streams = {False: stdout or sys.stdout, True: stderr or sys.stderr}
        self._consoles: dict[bool, Console] = {}

    def console(self, err: bool = False) -> Console:
        if err not in self._consoles:
            self._consoles[err] = make_console(self._streams[err])
        return self._consoles[err]

    def table(self, table: Table) -> None:
        stream = self._streams[False]
        if isatty(stream):
            print_table(self.console(), table)
        else:  # a pipe or file: plain lines with no trailing padding
            stream.write(render(table, width_for(stream) or PIPE_WIDTH) + "\n")

    def line(self, text: str, err: bool = False) -> None:
        """One line as given: never re-wrapped (a pipe gets it whole), never styled."""
        stream = self._streams[err]
        if not isatty(stream) and _one_cell_wide(text):
            stream.write(text + "\n")  # what rich writes for it, without loading rich
        else:
            self.console(err).print(text, soft_wrap=True)

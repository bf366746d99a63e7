"""Drawing archsolve's output with rich: tables fitted to the terminal, text lines, progress.

rich is imported on first use, never at module import, so ``archsolve --help``
and ``explore --json`` stay light.  Off a terminal (a pipe, a file) nothing
carries ANSI codes and tables are drawn 120 columns wide (or ``$COLUMNS``);
``NO_COLOR`` turns colour off everywhere (rich reads it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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

    buffer = io.StringIO()
    print_table(make_console(buffer, width), table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


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

    def lines(self, width: int) -> Iterator[str]:
        """The cell's lines, each at most ``width`` wide where its pieces allow."""
        from rich.cells import cell_len

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
        self.console(err).print(text, soft_wrap=True)

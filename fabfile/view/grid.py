"""A table or a line as text and styles, printed by rich or, piped, as plain text.

The status table is printed most, often piped (``watch``, a script, a prompt); loading
rich to print it costs it a third of its start-up. A `Grid` (and a line of `Piece`s)
keeps its text apart from its styles: on a terminal it becomes rich's table (colours,
the width of the terminal); piped, where rich prints no styles, `Grid.plain` writes the
very bytes rich would, or says it cannot (a character rich measures otherwise, a table
wider than the page), and rich prints it as before. No rich at import.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

Piece = tuple[str, str]  # text shown as it is (masked already), and its rich style ('': none)
Cell = tuple[Piece, ...]
GAP = 2  # rich's padding (0, 1) between two columns: one space each side
PAGE = 200  # the width rich prints at off a terminal (`fabfile.view.console.make_console`)


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    no_wrap: bool = False


@dataclasses.dataclass(frozen=True)
class Grid:
    """Rows of cells under column headers: rich's ``Table(box=None, pad_edge=False,
    header_style="bold")``, the look of every table we print."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def __rich__(self) -> Table:
        """What rich prints (``console.print(grid)``): the same table as a rich one."""
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in self.columns:
            table.add_column(Text(column.header), no_wrap=column.no_wrap)
        for row in self.rows:
            table.add_row(*(Text.assemble(*cell) for cell in row))
        return table

    def plain(self, width: int) -> str | None:
        """The table as rich prints it without styles on a page ``width`` wide, or None
        where rich would print it otherwise (a character that is not printable ASCII,
        a table wider than the page, no columns)."""
        texts = [[column.header for column in self.columns]]
        texts += [["".join(text for text, _ in cell) for cell in row] for row in self.rows]
        if not self.columns or not all(printable(text) for row in texts for text in row):
            return None
        widths = [max(len(row[n]) for row in texts) for n in range(len(self.columns))]
        if sum(widths) + GAP * (len(widths) - 1) > width or 0 in widths:
            return None
        gap = " " * GAP
        return "".join(
            gap.join(text.ljust(size) for text, size in zip(row, widths, strict=True)) + "\n"
            for row in texts
        )


def printable(text: str) -> bool:
    """Printable ASCII only: one column a character, as rich measures it (no tabs, no
    line breaks, nothing wide or invisible)."""
    return text.isascii() and text.isprintable()


class Printer:
    """Where the status command prints: plain text where that is the bytes rich would
    print (``stream``: not a terminal), else through rich's console, made on first use.

    Rich keeps the terminal (colours, its width), a console a caller gave, and whatever
    plain text would print otherwise (`Grid.plain`)."""

    def __init__(self, console: Callable[[], Console], stream: TextIO | None) -> None:
        self._console = console
        self._stream = stream

    def table(self, grid: Grid) -> None:
        stream = self._stream
        text = grid.plain(PAGE) if stream is not None else None
        if stream is None or text is None:
            self._console().print(grid)
        else:
            stream.write(text)

    def line(self, *pieces: Piece, soft_wrap: bool = False) -> None:
        """One line of ``pieces``: cut to the page as rich does, or with ``soft_wrap``
        left whole (the terminal wraps it)."""
        text, stream = "".join(piece for piece, _ in pieces), self._stream
        if stream is not None and printable(text) and (soft_wrap or len(text) <= PAGE):
            stream.write(text + "\n")
            return
        from rich.text import Text

        self._console().print(Text.assemble(*pieces), soft_wrap=soft_wrap)

    def write(self, text: str) -> None:
        """``text`` as it is (``--json``): on the console's file when rich prints."""
        (self._stream or self._console().file).write(text)


def piped(stream: TextIO) -> bool:
    """Whether rich would print to ``stream`` without styles at `PAGE` columns: not a
    terminal, and nothing in the environment that makes rich take it for one
    (FORCE_COLOR, TTY_COMPATIBLE), no notebook or IDLE. In doubt: no."""
    if {"FORCE_COLOR", "TTY_COMPATIBLE"} & os.environ.keys():
        return False
    if {"IPython", "idlelib"} & sys.modules.keys():
        return False
    try:
        return stream.isatty() is False
    except (AttributeError, ValueError):  # no isatty, or closed: rich decides
        return False

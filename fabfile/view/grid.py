"""A table or a line as text and styles, printed as the very bytes rich would print,
without rich where we can be sure of them.

The status table is printed most, piped (``watch``, a script, a prompt) or on a
terminal; loading rich to print it costs it a third of its start-up. A `Grid` (and a
line of `Piece`s) keeps its text apart from its styles. Piped, where rich prints no
styles, `Grid.plain` writes the bytes rich would; on a terminal, `Grid.styled` writes
them with rich's escape codes (`page` reads the terminal as rich does: its width, its
colours, NO_COLOR). Either says when it cannot (a character rich measures otherwise, a
table wider than the page, a style we do not know), and rich prints it as before. No
rich at import.
"""

from __future__ import annotations

import dataclasses
import functools
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
HEADER = "bold"  # the header row's style: ``Table(header_style="bold")``

# The styles we print and rich's SGR parameters for them: every colour is one of the 8
# standard ones, which rich writes alike for its "standard", "256" and "truecolor"
# systems. Under NO_COLOR rich drops the colour and keeps the rest ('': no codes at all).
SGR = {
    "": "",
    "bold": "1",
    "green": "32",
    "bold green": "1;32",
    "bold red": "1;31",
    "bold yellow": "1;33",
}
SGR_NO_COLOR = {
    "": "",
    "bold": "1",
    "green": "",
    "bold green": "1",
    "bold red": "1",
    "bold yellow": "1",
}
TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE")  # what makes rich decide about a terminal
STD_STREAMS = (0, 1, 2)  # where rich asks the terminal's size, in this order


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
        texts = self._texts()
        widths = _widths(texts, width)
        if widths is None:
            return None
        gap = " " * GAP
        return "".join(
            gap.join(text.ljust(size) for text, size in zip(row, widths, strict=True)) + "\n"
            for row in texts
        )

    def styled(self, width: int, sgr: dict[str, str]) -> str | None:
        """The table as rich prints it on a terminal ``width`` wide whose styles are
        ``sgr`` (`SGR`, or `SGR_NO_COLOR`), or None where rich would print it otherwise
        (as `plain` says; a style not in ``sgr``).

        Rich writes each piece of a cell apart, in its own codes, then the cell's padding
        plain; the header row is bold throughout: the header padded to its column, then
        each of the two spaces between columns, each in its own codes."""
        widths = _widths(self._texts(), width)
        styles = {style for row in self.rows for cell in row for _, style in cell}
        if widths is None or not styles <= sgr.keys() or HEADER not in sgr:
            return None
        bold = functools.partial(_sgr, sgr[HEADER])
        heads = [
            bold(column.header.ljust(size))
            for column, size in zip(self.columns, widths, strict=True)
        ]
        lines = [(bold(" ") * GAP).join(heads)]
        for row in self.rows:
            cells = []
            for cell, size in zip(row, widths, strict=True):
                used = sum(len(text) for text, _ in cell)
                cells.append(
                    "".join(_sgr(sgr[style], text) for text, style in cell) + " " * (size - used)
                )
            lines.append((" " * GAP).join(cells))
        return "".join(line + "\n" for line in lines)

    def _texts(self) -> list[list[str]]:
        """The header row and each row, a cell's pieces joined: what rich measures."""
        texts = [[column.header for column in self.columns]]
        return texts + [["".join(text for text, _ in cell) for cell in row] for row in self.rows]


def _widths(texts: list[list[str]], width: int) -> list[int] | None:
    """Each column's width as rich lays the table out on a page ``width`` wide (its
    widest text), or None where rich would lay it out otherwise: a character that is
    not printable ASCII, a table wider than the page, an empty column, no columns."""
    if not texts[0] or not all(printable(text) for row in texts for text in row):
        return None
    widths = [max(len(row[n]) for row in texts) for n in range(len(texts[0]))]
    if sum(widths) + GAP * (len(widths) - 1) > width or 0 in widths:
        return None
    return widths


def _sgr(codes: str, text: str) -> str:
    """``text`` as rich's `Style.render` writes it: in its codes, reset after; as it is
    without codes; nothing for no text."""
    return f"\x1b[{codes}m{text}\x1b[0m" if codes and text else text


def printable(text: str) -> bool:
    """Printable ASCII only: one column a character, as rich measures it (no tabs, no
    line breaks, nothing wide or invisible)."""
    return text.isascii() and text.isprintable()


@dataclasses.dataclass(frozen=True)
class Page:
    """Where we print without rich, as rich would: ``stream``, ``width`` columns wide,
    in ``sgr``'s codes (`SGR`, `SGR_NO_COLOR`) or, piped, without styles (None)."""

    stream: TextIO
    width: int = PAGE
    sgr: dict[str, str] | None = None

    def table(self, grid: Grid) -> str | None:
        """``grid`` as rich would print it here, or None where we cannot be sure."""
        if self.sgr is None:
            return grid.plain(self.width)
        return grid.styled(self.width, self.sgr)

    def line(self, pieces: tuple[Piece, ...], soft_wrap: bool) -> str | None:
        """One line of ``pieces`` as rich would print it here (cut to the width, or with
        ``soft_wrap`` left whole), or None where we cannot be sure: a character rich
        measures otherwise, a line it would cut, a style we do not know."""
        text = "".join(piece for piece, _ in pieces)
        if not printable(text) or not (soft_wrap or len(text) <= self.width):
            return None
        sgr = self.sgr
        if sgr is None:
            return text + "\n"
        if not {style for _, style in pieces} <= sgr.keys():
            return None
        return "".join(_sgr(sgr[style], piece) for piece, style in pieces) + "\n"


class Printer:
    """Where the status command prints: on ``page``, the bytes rich would print there,
    where we can be sure of them, else through rich's console, made on first use.

    Rich keeps a console a caller gave (no page), and whatever the page cannot print as
    rich would (`Page.table`, `Page.line`)."""

    def __init__(self, console: Callable[[], Console], page: Page | None) -> None:
        self._console = console
        self._page = page

    def table(self, grid: Grid) -> None:
        text = self._page.table(grid) if self._page is not None else None
        if self._page is None or text is None:
            self._console().print(grid)
        else:
            self._page.stream.write(text)

    def line(self, *pieces: Piece, soft_wrap: bool = False) -> None:
        """One line of ``pieces``: cut to the page as rich does, or with ``soft_wrap``
        left whole (the terminal wraps it)."""
        text = self._page.line(pieces, soft_wrap) if self._page is not None else None
        if self._page is not None and text is not None:
            self._page.stream.write(text)
            return
        from rich.text import Text

        self._console().print(Text.assemble(*pieces), soft_wrap=soft_wrap)

    def write(self, text: str) -> None:
        """``text`` as it is (``--json``): on the console's file when rich prints."""
        (self._page.stream if self._page is not None else self._console().file).write(text)


def page(stream: TextIO) -> Page | None:
    """Where `fabfile.view.console.make_console`'s rich console would print to ``stream``
    in a way we print without it: piped (no styles, `PAGE` wide) or a terminal whose
    width and colours we read as rich does; None where rich decides otherwise or we are
    not sure (see `piped`, `terminal`)."""
    if piped(stream):
        return Page(stream)
    return terminal(stream)


def terminal(stream: TextIO) -> Page | None:
    """``stream`` as rich's console sees a terminal (rich's ``Console.is_terminal``,
    ``_detect_color_system``, ``no_color`` and ``size``): a terminal that takes colours
    (not TERM=dumb or unknown; on Windows rich asks the console itself), its width from
    COLUMNS, else the first of stdin, stdout, stderr that is a terminal, else 80; bold
    without colours under NO_COLOR. None where rich would decide otherwise, or on
    something we do not reproduce (FORCE_COLOR, TTY_COMPATIBLE, a notebook, IDLE)."""
    if sys.platform == "win32" or _tty(stream) is not True:
        return None
    if os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return None
    sgr = SGR_NO_COLOR if os.environ.get("NO_COLOR", "") != "" else SGR
    width = _terminal_width()
    return Page(stream, width, sgr) if width > 0 else None  # COLUMNS=0: rich decides


def _tty(stream: TextIO) -> bool | None:
    """Whether rich takes ``stream`` for a terminal by asking it (``isatty``), or None
    where something else decides: the environment (`TERMINAL_ENV`), a notebook or IDLE,
    a stream without an answer (no isatty, closed)."""
    if set(TERMINAL_ENV) & os.environ.keys() or {"IPython", "idlelib"} & sys.modules.keys():
        return None
    try:
        answer = stream.isatty()
    except (AttributeError, ValueError):
        return None
    return answer if isinstance(answer, bool) else None


def _terminal_width() -> int:
    """The width rich's console takes for a terminal (``Console.size``)."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    width = None
    for descriptor in STD_STREAMS:
        try:
            width, _ = os.get_terminal_size(descriptor)
        except (AttributeError, ValueError, OSError):
            continue
        break
    return width or 80


def piped(stream: TextIO) -> bool:
    """Whether rich would print to ``stream`` without styles at `PAGE` columns: not a
    terminal, and nothing in the environment that makes rich take it for one
    (FORCE_COLOR, TTY_COMPATIBLE), no notebook or IDLE. In doubt: no."""
    return _tty(stream) is False

"""The console the commands print to, and text from nodes made safe to print on it.

The tables (`fabfile.view.tables`) and the progress views (`fabfile.view.progress`)
print through these: text from nodes and files is shown as it is, secrets masked,
never read as rich markup; a phase has the same colour everywhere.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from ..app.credentials import redact
from ..engine.phase import Phase
from .grid import PAGE, Piece

if TYPE_CHECKING:  # rich is loaded where a command prints through it: the status table
    # does not, piped or on a terminal, where it can print rich's bytes (`fabfile.view.grid`)
    from rich.console import Console

_STYLES = {Phase.DONE: "green", Phase.SKIPPED: "green", Phase.FAILED: "bold red"}


def make_console(stream: TextIO | None = None) -> Console:
    """A console for stdout; off a terminal, wide enough that tables are not cut.

    No emoji codes: what we print is ours or escaped text from nodes, never ``:name:``
    meant as a picture, and rich's table of them costs every command its import."""
    from rich.console import Console

    target = stream or sys.stdout
    terminal = Console(file=target, emoji=False).is_terminal
    return Console(file=target, highlight=False, emoji=False, width=None if terminal else PAGE)


def plain(text: str) -> str:
    """Text from nodes and files, ready to print: secrets masked, no markup read in it."""
    return _escape(text)


def piece(text: str, style: str = "") -> Piece:
    """Text from nodes and files as a `fabfile.view.grid` piece: secrets masked, shown
    as it is (a piece is never read as markup)."""
    return (redact(text), style)


def _escape(text: str) -> str:
    """Text from nodes and files is shown as it is, never read as rich markup."""
    from rich.markup import escape

    return escape(redact(text))

"""The console the commands print to, and text from nodes made safe to print on it.

The tables (`fabfile.view.tables`) and the progress views (`fabfile.view.progress`)
print through these: text from nodes and files is shown as it is, secrets masked,
never read as rich markup; a phase has the same colour everywhere.

Piped (not a terminal), what deploy, switch and rollback print is lines of text: a
`Plain` console writes the very bytes rich would (no styles, the page `PAGE` wide)
and loads rich only for what it cannot write so (a table, a line wider than the page,
a character rich measures otherwise). No rich at import.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO

from ..app.credentials import redact
from ..engine.phase import Phase
from .grid import PAGE, Page, Piece, piped

if TYPE_CHECKING:  # rich is loaded where a command prints through it (`Plain`, `make_console`;
    # the status table prints rich's bytes itself, piped or on a terminal: `fabfile.view.grid`)
    from rich.console import Console

_STYLES = {Phase.DONE: "green", Phase.SKIPPED: "green", Phase.FAILED: "bold red"}
# rich's markup: a tag, and the backslashes before it (rich.markup.RE_TAGS, escape's)
_TAG = r"((\\*)\[([a-z#/@][^[]*?)])"
_TAGGED = r"(\\*)(\[[a-z#/@][^[]*?])"


class Out(Protocol):
    """What a command prints through: rich's `Console`, or piped, `Plain`."""

    @property
    def file(self) -> IO[str]: ...

    @property
    def is_terminal(self) -> bool: ...

    def print(self, *objects: Any, end: str = "\n", soft_wrap: bool = False) -> None: ...


def make_console(stream: TextIO | None = None) -> Out:
    """A console for stdout: `Plain` when it is not a terminal (`fabfile.view.grid.piped`),
    else rich's; off a terminal, wide enough that tables are not cut.

    No emoji codes: what we print is ours or escaped text from nodes, never ``:name:``
    meant as a picture, and rich's table of them costs every command its import."""
    target = stream or sys.stdout
    return Plain(target) if piped(target) else rich_console(target)


def rich_console(target: IO[str]) -> Console:
    """Rich's console on ``target``: the terminal's width, or off one `PAGE` columns."""
    from rich.console import Console

    terminal = Console(file=target, emoji=False).is_terminal
    return Console(file=target, highlight=False, emoji=False, width=None if terminal else PAGE)


def rich_of(out: Out) -> Console:
    """The rich console behind ``out``: itself, or the one a `Plain` console falls back on."""
    return out.rich if isinstance(out, Plain) else out  # type: ignore[return-value]


class Plain:
    """Rich's console off a terminal, without rich where it can: a line of text (markup
    dropped, escapes undone) is written as rich writes it; anything else (a table, a line
    wider than the page or with a character that is not printable ASCII, markup rich
    would read otherwise) goes to rich's console, made on first use."""

    is_terminal = False

    def __init__(self, stream: TextIO) -> None:
        self.file = stream
        self._rich: Console | None = None
        self._lock = threading.Lock()  # rich's console holds one too: a hook's line and a
        # node's from another thread never mix

    @property
    def rich(self) -> Console:
        if self._rich is None:
            self._rich = rich_console(self.file)
        return self._rich

    def print(self, *objects: Any, end: str = "\n", soft_wrap: bool = False) -> None:
        text = self._line(objects, soft_wrap)
        if text is None:
            self.rich.print(*objects, end=end, soft_wrap=soft_wrap)
            return
        with self._lock:
            self.file.write(text + end)
            self.file.flush()  # as rich does: a log tailed, a pipe read as it goes

    def _line(self, objects: tuple[Any, ...], soft_wrap: bool) -> str | None:
        """What rich prints for ``objects`` off a terminal (the markup's text, as
        `fabfile.view.grid.Page` prints a line piped), or None where it is not plain text."""
        if not all(isinstance(item, str) for item in objects):
            return None
        text = unmarked(" ".join(objects))
        line = Page(self.file).line(((text, ""),), soft_wrap) if text is not None else None
        return line.removesuffix("\n") if line is not None else None


def unmarked(markup: str) -> str | None:
    """``markup``'s text as rich renders it (`rich.markup.render`): style tags dropped,
    escaped brackets shown; None where rich would do more (a handler tag ``[@…]``, a
    closing tag it would refuse or match otherwise)."""
    if "[" not in markup:
        return markup
    texts: list[str] = []
    opened: list[str] = []
    position = 0
    for match in re.finditer(_TAG, markup):
        whole, escapes, tag = match.groups()
        texts.append(markup[position : match.start()].replace("\\[", "["))
        position = match.end()
        backslashes, escaped = divmod(len(escapes), 2)
        texts.append("\\" * backslashes)
        if escaped:
            texts.append(whole[len(escapes) :].replace("\\[", "["))
            continue
        name = tag.partition("=")[0]
        if name.startswith("@"):
            return None
        if not name.startswith("/"):
            opened.append(name)
        elif opened and name[1:].strip() in ("", opened[-1]):  # rich's [/], or the last opened
            opened.pop()
        else:
            return None
    texts.append(markup[position:].replace("\\[", "["))
    return "".join(texts)


def plain(text: str) -> str:
    """Text from nodes and files, ready to print: secrets masked, no markup read in it."""
    return _escape(text)


def piece(text: str, style: str = "") -> Piece:
    """Text from nodes and files as a `fabfile.view.grid` piece: secrets masked, shown
    as it is (a piece is never read as markup)."""
    return (redact(text), style)


def _escape(text: str) -> str:
    """Text from nodes and files is shown as it is, never read as rich markup: rich's
    `rich.markup.escape`, without loading rich."""
    markup = re.sub(_TAGGED, lambda match: f"{match[1]}{match[1]}\\{match[2]}", redact(text))
    if markup.endswith("\\") and not markup.endswith("\\\\"):
        return markup + "\\"
    return markup

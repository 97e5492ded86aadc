"""Progress while a run goes: the live rollout view, plain lines, the retire countdown.

Rich renders the live view on a terminal; when the output is not a terminal the
rollout prints one plain line per phase change instead, so logs and CI read well, and
those lines need no rich (`fabfile.view.console.Plain`): rich is imported where a live
view is drawn.
"""

from __future__ import annotations

import os
import sys
import termios
import threading
import time
import tty
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..engine.phase import Phase
from ..engine.retirement import Held
from ..words import some
from .console import _STYLES, Out, _escape, rich_of

if TYPE_CHECKING:  # rich draws the live views, on a terminal only: piped, the plain
    # lines need none of it (`fabfile.view.console.Plain`)
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table


def ask(console: Out, question: str, keys: str) -> str:
    """One keypress of ``keys`` from the terminal ('' when stdin is not a terminal, or
    at end of input). Other keys are ignored; the key is echoed."""
    stream = sys.stdin
    if not stream.isatty():
        return ""
    console.print(f"{_escape(question)} ", end="")
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            key = os.read(fd, 1).decode(errors="replace").lower()
            if not key or key in keys:
                break
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)  # DRAIN would wait for the reader
    console.print(key)
    return key


class PlainReporter:
    """One line per phase change, with the time since the start."""

    def __init__(self, console: Out) -> None:
        self.console = console
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def phase(self, host: str, phase: Phase, detail: str = "") -> None:
        elapsed = time.monotonic() - self.started
        line = f"{elapsed:7.2f}s  {host:<16} {phase.value}" + (f"  {detail}" if detail else "")
        with self._lock:
            self.console.print(_escape(line), soft_wrap=True)

    def note(self, text: str) -> None:
        with self._lock:
            self.console.print(_escape(text), soft_wrap=True)

    def ask(self, question: str, keys: str) -> str:
        with self._lock:
            return ask(self.console, question, keys)


class LiveReporter:
    """A live table: each node's phase, how long it has been in it, and details.

    When a row per node would not fit the terminal (a fleet), the table is
    compact instead: a row per phase with how many nodes are in it, the longest
    any has been there and which nodes, the slowest first. The notes above it
    (a line per batch) say what was done.
    """

    def __init__(self, console: Console, hosts: Sequence[str]) -> None:
        self.console = console
        self.started = time.monotonic()
        self.rows: dict[str, tuple[Phase, float, str]] = {
            host: (Phase.PENDING, self.started, "") for host in hosts
        }
        self._lock = threading.Lock()
        from rich.live import Live

        # Drawn afresh at every refresh, so the times tick between phase changes.
        self.live = Live(get_renderable=self._render, console=console, refresh_per_second=8)

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)  # draws the last frame

    def phase(self, host: str, phase: Phase, detail: str = "") -> None:
        """Only noted here: the next refresh draws it, so a worker never waits on the
        terminal (a slow link, a terminal held by Ctrl-S) in the middle of a node."""
        with self._lock:
            self.rows[host] = (phase, time.monotonic(), detail)

    def note(self, text: str) -> None:
        self.live.console.print(_escape(text))

    def ask(self, question: str, keys: str) -> str:
        """The live table stops while the question waits for its key."""
        with self._lock:
            self.live.stop()
            try:
                return ask(self.console, question, keys)
            finally:
                self.live.start()

    def _render(self) -> Table:
        """Called by the live view's own thread: it reads a copy of the rows (their
        keys never change; each value is replaced whole)."""
        rows = dict(self.rows)
        if len(rows) + _LIVE_MARGIN > self.console.size.height:
            return self._by_phase(rows)
        from rich.table import Table

        now = time.monotonic()
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("Node")
        table.add_column("Phase")
        table.add_column("For", justify="right")
        table.add_column("Detail")
        for host, (phase, since, detail) in rows.items():
            style = _STYLES.get(phase, "")
            name = f"[{style}]{phase.value}[/]" if style else phase.value
            table.add_row(_escape(host), name, f"{now - since:5.1f}s", _escape(detail))
        table.caption = f"{now - self.started:.1f}s elapsed"
        return table

    def _by_phase(self, rows: dict[str, tuple[Phase, float, str]]) -> Table:
        """The compact table: a row per phase that has nodes, in the order of a run."""
        from rich.table import Table

        now = time.monotonic()
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("Phase", no_wrap=True)
        table.add_column("Nodes", justify="right")
        table.add_column("Longest", justify="right")
        table.add_column("Which", no_wrap=True, overflow="ellipsis")
        for phase in Phase:
            here = [(host, now - since) for host, (p, since, _) in rows.items() if p == phase]
            if not here:
                continue
            here.sort(key=lambda item: item[1], reverse=True)
            style = _STYLES.get(phase, "")
            name = f"[{style}]{phase.value}[/]" if style else phase.value
            timed = phase not in (Phase.PENDING, *_ENDED)
            longest = f"{here[0][1]:5.1f}s" if timed else ""
            table.add_row(name, str(len(here)), longest, _escape(some([h for h, _ in here])))
        ended = sum(1 for p, _, _ in rows.values() if p in _ENDED)
        table.caption = f"{now - self.started:.1f}s elapsed, {ended} of {len(rows)} ended"
        return table


_ENDED = (Phase.DONE, Phase.SKIPPED, Phase.FAILED, Phase.INTERRUPTED)
_LIVE_MARGIN = 6  # header, caption and a few notes: a row per node needs that much more


class RetireView:
    """The retire countdown: a live table on a terminal, a line per change otherwise."""

    def __init__(self, console: Out) -> None:
        self.console = console
        self.live = _live(rich_of(console)) if console.is_terminal else None
        self._last: list[tuple[str, str, int]] = []

    def __enter__(self) -> RetireView:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def show(self, left: Sequence[Held], seconds: float) -> None:
        rows = [(held.node, held.version.label, held.version.sessions) for held in left]
        if self.live is not None:
            self.live.update(self._table(rows, seconds))
        elif rows and rows != self._last:
            for node, label, sessions in rows:
                self.console.print(
                    _escape(
                        f"  {node}: {label} holds {sessions} session(s); "
                        f"waiting up to {seconds:.0f} s more"
                    ),
                    soft_wrap=True,
                )
        self._last = rows

    def note(self, text: str) -> None:
        self.console.print(_escape(text), soft_wrap=True)

    @staticmethod
    def _table(rows: Sequence[tuple[str, str, int]], seconds: float) -> Table:
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("Node", "Old version", "Sessions left"):
            table.add_column(column)
        for node, label, sessions in rows:
            table.add_row(_escape(node), _escape(label), str(sessions))
        table.caption = f"retire waits {seconds:.0f} s more for these sessions to end"
        return table


def _live(console: Console) -> Live:
    """The retire countdown's live view (a terminal's: rich imported here, not piped)."""
    from rich.live import Live

    return Live(console=console, refresh_per_second=4)

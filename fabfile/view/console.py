"""What the terminal shows: the status table, the live rollout view, the history.

Rich renders tables and the live view on a terminal; when the output is not a
terminal the rollout prints one plain line per phase change instead, so logs
and CI read well.
"""

from __future__ import annotations

import json
import os
import sys
import termios
import threading
import time
import tty
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..app.credentials import redact
from ..cluster.manager import Deployed
from ..cluster.probe import Status
from ..engine.phase import Phase
from ..engine.retirement import Held
from ..records.archive import Archive, Version
from ..words import some
from .timeline import Timeline

_STYLES = {Phase.DONE: "green", Phase.SKIPPED: "green", Phase.FAILED: "bold red"}
_END_STYLES = {phase.value: style for phase, style in _STYLES.items()}


def make_console(stream: TextIO | None = None) -> Console:
    """A console for stdout; off a terminal, wide enough that tables are not cut."""
    target = stream or sys.stdout
    terminal = Console(file=target).is_terminal
    return Console(file=target, highlight=False, width=None if terminal else 200)


def status_table(
    statuses: Sequence[Status],
    expected: str | None,
    rotation: Mapping[str, str] | None = None,
    live: Mapping[str, bool] | None = None,
) -> Table:
    """One row per node; a node not on the last deployed version, or out of
    rotation in haproxy, stands out. Blue/green (``live`` given): the idle
    colour is out of rotation by design, and says so."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["URL", "State", "Artifact", "Version", "Time"]
    if rotation is not None:
        columns.insert(2, "haproxy")
    if live is not None:
        columns.insert(0, "Node")
        columns.insert(1, "Live")
    for column in columns:
        table.add_column(column, no_wrap=column != "State")
    for status in statuses:
        state = "[green]Ok[/]" if status.ok else f"[bold red]Fail[/] {_escape(status.reason)}"
        version = _escape(status.version)
        if status.ok and expected and status.version != expected:
            version = f"[bold yellow]{version} (last deployed: {_escape(expected)})[/]"
        cells = [
            _escape(status.url),
            state,
            _escape(status.coordinates),
            version,
            f"{status.seconds * 1000:.0f} ms",
        ]
        if rotation is not None:
            lb = rotation.get(status.host, "?")
            idle = live is not None and lb == "MAINT"
            good = lb == "UP" or idle
            cells.insert(2, f"[green]{lb}[/]" if good else f"[bold red]{_escape(lb)}[/]")
        if live is not None:
            on = live.get(status.host, False)
            cells[:0] = [_escape(status.host), "[bold green]live[/]" if on else "idle"]
        table.add_row(*cells)
    return table


def status_json(
    statuses: Sequence[Status],
    expected: str | None,
    rotation: Mapping[str, str] | None = None,
    live: Mapping[str, bool] | None = None,
) -> str:
    return json.dumps(_status_rows(statuses, expected, rotation, live), indent=2)


def _status_rows(
    statuses: Sequence[Status],
    expected: str | None,
    rotation: Mapping[str, str] | None = None,
    live: Mapping[str, bool] | None = None,
) -> list[dict[str, Any]]:
    return [
        {
            "host": s.host,
            "url": s.url,
            "ok": s.ok,
            "reason": s.reason,
            "code": s.code,
            "artifact": s.coordinates,
            "version": s.version,
            "seconds": round(s.seconds, 4),
            "last_deployed": expected,
            "drifted": bool(s.ok and expected and s.version != expected),
            "haproxy": rotation.get(s.host) if rotation is not None else None,
            "live": live.get(s.host) if live is not None else None,
        }
        for s in statuses
    ]


def history_table(entries: Sequence[dict[str, Any]], first: int = 1) -> Table:
    """One row per run; # is the run's number (``deploy report --run #``), ``first``
    being the number of the first entry given."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in (
        "#",
        "Finished",
        "Action",
        "Artifact",
        "Version",
        "Outcome",
        "Seconds",
        "User",
        "Nodes",
    ):
        table.add_column(column)
    for number, entry in enumerate(entries, start=first):
        hosts = entry.get("hosts") or {}
        nodes = ", ".join(f"{h}: {r.get('outcome', '?')}" for h, r in hosts.items())
        table.add_row(
            str(number),
            _escape(str(entry.get("finished", ""))),
            _escape(str(entry.get("action", ""))),
            _escape(str(entry.get("artifact", ""))),
            _escape(str(entry.get("version", ""))),
            _escape(str(entry.get("outcome", ""))),
            f"{entry.get('seconds', 0):.1f}",
            _escape(str(entry.get("user", ""))),
            _escape(nodes),
        )
    return table


def timeline_table(run: Timeline) -> Table:
    """Seconds per phase for each node of one run; the slowest node's own time in bold."""
    columns = run.columns()
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Node")
    for phase in columns:
        table.add_column(_escape(phase), justify="right")
    table.add_column("Busy", justify="right")
    table.add_column("Ended")
    slowest = max((node.busy for node in run.nodes), default=0.0)
    for node in run.nodes:
        totals = node.totals()
        cells = [f"{totals[p]:.2f}" if p in totals else "" for p in columns]
        busy = f"{node.busy:.2f}"
        if len(run.nodes) > 1 and node.busy == slowest:
            busy = f"[bold]{busy}[/]"
        style = _END_STYLES.get(node.ended, "")
        ended = f"[{style}]{_escape(node.ended)}[/]" if style else _escape(node.ended)
        table.add_row(_escape(node.node), *cells, busy, ended)
    return table


def config_table(archive: Archive, versions: Sequence[Version]) -> Table:
    """Config history: when each file changed, to what, and by how many lines."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("Seen", "File", "sha256", "Change", "User", "Command"):
        table.add_column(column)
    previous: dict[str, str] = {}
    for version in archive.versions():
        before = previous.get(version.file, "")
        previous[version.file] = version.sha256
        if version not in versions:
            continue
        table.add_row(
            _escape(version.at),
            _escape(version.file),
            version.sha256[:12] or "(removed)",
            archive.change(before, version.sha256),
            _escape(version.user),
            _escape(version.command),
        )
    return table


def plain(text: str) -> str:
    """Text from nodes and files, ready to print: secrets masked, no markup read in it."""
    return _escape(text)


def _escape(text: str) -> str:
    """Text from nodes and files is shown as it is, never read as rich markup."""
    return escape(redact(text))


def ask(console: Console, question: str, keys: str) -> str:
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

    def __init__(self, console: Console) -> None:
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


def versions_table(statuses: Sequence[Status], versions: Mapping[str, Sequence[Deployed]]) -> Table:
    """Parallel deployment: one row per version on each node; ``/status`` answers from
    the newest running one, so its row carries what /status said."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("Node", "Version", "State", "Sessions", "/status", "Time"):
        table.add_column(column, no_wrap=column != "/status")
    for status in statuses:
        listed = versions.get(status.host, ())
        newest = _newest(listed)
        answer = "[green]Ok[/] " + _escape(status.version) if status.ok else "[bold red]Fail[/] "
        answer += "" if status.ok else _escape(status.reason)
        if not listed:
            table.add_row(_escape(status.host), "-", "-", "-", answer, _ms(status))
        for deployed in listed:
            on = deployed is newest
            state = _escape(deployed.state) + (" (new sessions)" if on else "")
            table.add_row(
                _escape(status.host),
                _escape(deployed.label),
                state if deployed.state == "running" else f"[bold red]{state}[/]",
                str(deployed.sessions),
                answer if on else "",
                _ms(status) if on else "",
            )
    return table


def held_lines(versions: Mapping[str, Sequence[Deployed]]) -> list[str]:
    """Which hosts still hold each old version, and how many sessions on each."""
    where: dict[str, list[str]] = {}
    for host, listed in versions.items():
        newest = _newest(listed)
        for deployed in listed:
            if deployed is not newest:
                where.setdefault(deployed.label, []).append(f"{host} ({deployed.sessions})")
    return [f"{label} is still on {', '.join(hosts)}" for label, hosts in where.items()]


def versions_json(
    statuses: Sequence[Status], versions: Mapping[str, Sequence[Deployed]], expected: str | None
) -> str:
    rows = _status_rows(statuses, expected)
    for row in rows:
        listed = versions.get(row["host"])
        newest = _newest(listed or ())
        row["versions"] = (
            None
            if listed is None
            else [
                {
                    "tag": d.tag,
                    "version": d.parsed.version if d.parsed else None,
                    "state": d.state,
                    "sessions": d.sessions,
                    "newest": d is newest,
                }
                for d in listed
            ]
        )
    return json.dumps(rows, indent=2)


def _newest(listed: Sequence[Deployed]) -> Deployed | None:
    running = [deployed for deployed in listed if deployed.state == "running"]
    return running[-1] if running else None


def _ms(status: Status) -> str:
    return f"{status.seconds * 1000:.0f} ms"


class RetireView:
    """The retire countdown: a live table on a terminal, a line per change otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = Live(console=console, refresh_per_second=4) if console.is_terminal else None
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
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("Node", "Old version", "Sessions left"):
            table.add_column(column)
        for node, label, sessions in rows:
            table.add_row(_escape(node), _escape(label), str(sessions))
        table.caption = f"retire waits {seconds:.0f} s more for these sessions to end"
        return table

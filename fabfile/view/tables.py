"""The tables the commands print: status, parallel versions, history, config, timeline.

Text from nodes and files goes through `fabfile.view.console` (masked, never read as
markup); ``--json`` gets the status rows as data instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..cluster.balancer import State
from ..cluster.probe import Status
from .console import _STYLES, _escape, piece
from .grid import Cell, Column, Grid

if TYPE_CHECKING:  # only named here: the status table loads no Tomcat manager, no timeline,
    # no delivery metrics (and their statistics, fractions, decimal), no rich (`_table`
    # loads it for the other tables)
    from rich.table import Table

    from ..cluster.manager import Deployed
    from ..records.archive import Archive, Version
    from ..records.history import Record
    from ..records.metrics import Stats
    from .timeline import Timeline

_END_STYLES = {phase.value: style for phase, style in _STYLES.items()}


Views = Mapping[str, Mapping[str, State]]  # balancer name -> node label -> its state there


def status_table(
    statuses: Sequence[Status],
    expected: str | None,
    rotation: Mapping[str, State] | None = None,
    live: Mapping[str, bool] | None = None,
    views: Views | None = None,
) -> Grid:
    """One row per node; a node not on the last deployed version, or out of
    rotation in haproxy, stands out. Blue/green (``live`` given): the idle
    colour is out of rotation by design, and says so. With several balancers
    (``views``), a node they see differently shows each one's view.

    A `Grid`, not a rich table: piped, it prints without loading rich."""
    columns = ["URL", "State", "Artifact", "Version", "Time"]
    if rotation is not None:
        columns.insert(2, "haproxy")
    if live is not None:
        columns.insert(0, "Node")
        columns.insert(1, "Live")
    rows = []
    for status in statuses:
        state: Cell = (("Ok", "green"),)
        if not status.ok:
            state = (("Fail", "bold red"), piece(" " + status.reason))
        version: Cell = (piece(status.version),)
        if status.ok and expected and status.version != expected:
            version = (piece(f"{status.version} (last deployed: {expected})", "bold yellow"),)
        cells = [
            (piece(status.url),),
            state,
            (piece(status.coordinates),),
            version,
            ((_ms(status), ""),),
        ]
        if rotation is not None:
            lb = rotation.get(status.host, "?")
            idle = live is not None and lb == State.MAINT
            good = lb == State.UP or idle
            split = _split(views, status.host)
            if split:
                cells.insert(2, (piece(split, "bold red"),))
            else:
                cells.insert(2, (piece(str(lb), "green" if good else "bold red"),))
        if live is not None:
            on = live.get(status.host, False)
            cells[:0] = [(piece(status.host),), (("live", "bold green") if on else ("idle", ""),)]
        rows.append(tuple(cells))
    header = tuple(Column(column, no_wrap=column != "State") for column in columns)
    return Grid(header, tuple(rows))


def _split(views: Views | None, label: str) -> str:
    """``lb1 UP, lb2 MAINT`` when the balancers see the node differently, else ''."""
    if not views or len({view.get(label) for view in views.values()}) < 2:
        return ""
    return ", ".join(f"{name} {view.get(label, '?')}" for name, view in views.items())


def status_json(
    statuses: Sequence[Status],
    expected: str | None,
    rotation: Mapping[str, State] | None = None,
    live: Mapping[str, bool] | None = None,
    views: Views | None = None,
) -> str:
    return json.dumps(_status_rows(statuses, expected, rotation, live, views), indent=2)


def _status_rows(
    statuses: Sequence[Status],
    expected: str | None,
    rotation: Mapping[str, State] | None = None,
    live: Mapping[str, bool] | None = None,
    views: Views | None = None,
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
            "balancers": {n: v.get(s.host) for n, v in views.items()} if views else None,
        }
        for s in statuses
    ]


def history_table(numbered: Sequence[tuple[int, Record]]) -> Table:
    """One row per run; # is the run's number (``deploy report --run #``)."""
    table = _table()
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
    for number, record in numbered:
        nodes = ", ".join(f"{h}: {r.outcome or '?'}" for h, r in record.hosts.items())
        table.add_row(
            str(number),
            _escape(record.finished),
            _escape(record.action),
            _escape(record.artifact),
            _escape(record.release.version if record.release else ""),
            _escape(record.outcome),
            f"{record.seconds or 0:.1f}",
            _escape(record.user),
            _escape(nodes),
        )
    return table


def stats_table(stats: Stats) -> Table:
    """Delivery metrics over one window: a row per figure, with what it counts."""
    import statistics

    from ..records.metrics import percentile

    table = _table()
    for column in ("Figure", "Value", "Counted from"):
        table.add_column(column)
    deploys = len(stats.deploys)
    table.add_row("Deploys", f"{stats.per_day:.2f} a day", f"{deploys} in {stats.days:.2f} days")
    rate = stats.failure_rate
    failed = "; ".join(f"run {f.run}: {f.why}" for f in stats.failures)
    table.add_row(
        "Change failure rate",
        "-" if rate is None else f"{rate:.0%}",
        _escape(f"{len(stats.failures)} of {deploys}" + (f" ({failed})" if failed else "")),
    )
    restored, open_ = stats.restored, [r.failed for r in stats.restores if r.restored is None]
    table.add_row(
        "Time to restore",
        f"median {_span(statistics.median(restored))}" if restored else "-",
        f"{len(restored)} restored"
        + (f", longest {_span(max(restored))}" if restored else "")
        + (f"; not yet: run {', '.join(map(str, open_))}" if open_ else ""),
    )
    durations = stats.durations
    table.add_row(
        "Deploy duration",
        f"median {_span(statistics.median(durations))}, p95 {_span(percentile(durations, 95))}"
        if durations
        else "-",
        f"{len(durations)} deploys that ended ok",
    )
    return table


def ready_table(stats: Stats) -> Table:
    """Per node: p95 of its restart-to-ready time against its ``ready_timeout``."""
    table = _table()
    for column in ("Node", "Restarts", "p95 restart-to-ready", "ready_timeout"):
        table.add_column(column, justify="left" if column == "Node" else "right")
    for node in stats.nodes:
        timeout = "-" if node.ready_timeout is None else f"{node.ready_timeout:g} s"
        if node.suggested is not None:
            timeout = f"[bold yellow]{timeout}[/]"
        table.add_row(_escape(node.node), str(len(node.times)), _span(node.p95), timeout)
    return table


def ready_hints(stats: Stats) -> list[str]:
    """A line per node whose ``ready_timeout`` is under `ROOM` times its p95 restart-to-ready."""
    from ..records.metrics import ROOM

    return [
        f"hint: {n.node}: ready_timeout = {n.ready_timeout:g} is under {ROOM:g} x its p95 "
        f"restart-to-ready ({n.p95:.1f} s, {len(n.times)} restarts); set ready_timeout = "
        f"{n.suggested} ({_section(n.node)} in .config, or [deploy] for every node)"
        for n in stats.nodes
        if n.suggested is not None and n.ready_timeout is not None
    ]


def _section(label: str) -> str:
    """Where ``.config`` sets a key for the node labelled ``label`` (``host/instance``)."""
    host, _, instance = label.partition("/")
    return f"[host:{host}] or [instance:{instance}]" if instance else f"[host:{host}]"


def _span(seconds: float) -> str:
    """12.3 s, 4.5 min, 3.2 h, 2.1 days: a duration at the scale it has."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def timeline_table(run: Timeline) -> Table:
    """Seconds per phase for each node of one run; the slowest node's own time in bold."""
    columns = run.columns()
    table = _table()
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
    table = _table()
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


def versions_table(statuses: Sequence[Status], versions: Mapping[str, Sequence[Deployed]]) -> Table:
    """Parallel deployment: one row per version on each node; ``/status`` answers from
    the newest running one, so its row carries what /status said."""
    table = _table()
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


def _table() -> Table:
    """A rich table as every one we print looks (`fabfile.view.grid.Grid` too)."""
    from rich.table import Table

    return Table(box=None, pad_edge=False, header_style="bold")


def _newest(listed: Sequence[Deployed]) -> Deployed | None:
    running = [deployed for deployed in listed if deployed.state == "running"]
    return running[-1] if running else None


def _ms(status: Status) -> str:
    return f"{status.seconds * 1000:.0f} ms"

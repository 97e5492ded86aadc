"""``deploy history``: what was deployed, when, by whom; with ``--stats``, how well."""

from __future__ import annotations

import datetime
import json

from ..errors import (
    ExitCode,
)
from ..records import metrics
from ..records.history import History, Run
from ..view import console as view
from ..view import tables
from .options import Options


def history(
    options: Options,
    limit: int = 20,
    as_json: bool = False,
    stats: bool = False,
    since: str | None = None,
) -> ExitCode:
    """The last ``limit`` records (those of the ``since`` window, when given), as a table
    or, for scripts, as JSON (a list, oldest first); with ``stats``, the delivery
    metrics of the window instead (`fabfile.records.metrics`)."""
    window = metrics.parse_since(since) if since is not None else None  # bad input first
    every = History(options.app.history_path).runs()
    if stats:
        return _stats(options, every, since or metrics.DEFAULT_SINCE, as_json)
    if window is not None:
        start = datetime.datetime.now().astimezone() - window
        every = [run for run in every if (when := metrics.ended_at(run)) is None or when >= start]
    runs = every[-limit:]
    if as_json:
        numbered = [{"run": run.number} | run.record.to_json() for run in runs]
        options.console.file.write(json.dumps(numbered, indent=2) + "\n")
    elif not runs:
        within = f" in the last {since}" if since is not None else " yet"
        options.console.print(f"no deploys recorded in {options.app.history_path}{within}")
    else:
        options.console.print(tables.history_table([(run.number, run.record) for run in runs]))
    return ExitCode.OK


def _stats(options: Options, runs: list[Run], since: str, as_json: bool) -> ExitCode:
    """The delivery metrics of the window, against the nodes' ``ready_timeout`` in .config."""
    timeouts = {node.label: node.ready_timeout for node in options.app.config.nodes}
    now = datetime.datetime.now().astimezone()
    stats = metrics.compute(runs, since, now, timeouts)
    hints = tables.ready_hints(stats)
    if as_json:
        data = stats.to_json() | {"hints": hints}
        options.console.file.write(json.dumps(data, indent=2) + "\n")
        return ExitCode.OK
    path = options.app.history_path
    if not runs:
        options.console.print(view.plain(f"no deploys recorded in {path} yet"))
        return ExitCode.OK
    if not stats.runs:
        older = f"; {stats.older} older: a longer --since counts them" if stats.older else ""
        options.console.print(view.plain(f"no runs recorded in {path} in the last {since}{older}"))
        return ExitCode.OK
    span = f"{stats.start:%Y-%m-%d %H:%M} to {stats.end:%Y-%m-%d %H:%M}"
    options.console.print(view.plain(f"{path}: the last {since} ({span}), {stats.runs} runs"))
    options.console.print(tables.stats_table(stats))
    if stats.nodes:
        options.console.print()
        options.console.print(tables.ready_table(stats))
    for hint in hints:
        options.console.print(view.plain(hint))
    return ExitCode.OK

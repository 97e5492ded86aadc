"""``deploy report``: where one run's time went, and its timeline."""

from __future__ import annotations

import json

from ..errors import (
    ExitCode,
    UsageError,
)
from ..records.history import History
from ..view import console as view
from ..view import tables, timeline
from .options import Options


def report(
    options: Options, run: int = 0, output: str | None = None, as_json: bool = False
) -> ExitCode:
    """Where one run's time went: seconds per phase and node here (or as JSON), and its
    timeline drawn into a file (with --json, only when --output names one)."""
    path = options.app.history_path
    number, record = timeline.chosen(History(path).records(), run, str(path))
    drawn = timeline.of(record)
    draws = timeline.drawable()
    if output and not draws:
        raise UsageError(
            f"--output {output}: drawing the timeline needs matplotlib, which this install "
            f"lacks: {timeline.EXTRA} adds it (without --output, the table alone)"
        )
    wanted = output or not as_json
    target = timeline.destination(output, number) if wanted and draws else None
    if target is not None:
        timeline.write(drawn, timeline.title(number, record), target)
    if as_json:
        picture = str(target) if target else None
        data = {
            "run": number,
            "picture": picture,
            "nodes": timeline.rows(drawn),
            "verdicts": [{"at": at, "verdict": text} for at, text in drawn.verdicts],
        }
        options.console.file.write(json.dumps(data, indent=2) + "\n")
        return ExitCode.OK
    options.console.print(view.plain(timeline.title(number, record)))
    options.console.print(tables.timeline_table(drawn))
    for at, text in drawn.verdicts:
        options.console.print(view.plain(f"{timeline.when(at):>9}  {text}"), soft_wrap=True)
    if target is None:
        line = f"timeline: not drawn, this install has no matplotlib: {timeline.EXTRA} adds it"
        options.console.print(view.plain(line))
    else:
        options.console.print(f"timeline: {view.plain(str(target))}")
    return ExitCode.OK

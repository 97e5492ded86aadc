"""What the terminal shows, tested as text (rich's recorded console)."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any, cast

from rich.console import Console

from fabfile.commands import execute
from fabfile.engine.target import Outcome
from fabfile.view import console as view


def recording(terminal: bool) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal, width=120, record=True)


def test_a_fleet_summary_counts_outcomes_and_names_the_nodes_to_look_at() -> None:
    out = recording(terminal=False)
    ends = [Outcome.DEPLOYED] * 9 + [Outcome.FAILED, Outcome.UNTOUCHED, Outcome.UNTOUCHED]
    targets = [
        SimpleNamespace(host=f"web{n}", outcome=end, sent=10, left_out="")
        for n, end in enumerate(ends, 1)
    ]
    execute.summary(out, cast(Any, targets))
    assert out.export_text().strip() == (
        "done: deployed: 9, failed: 1 (web10), untouched: 2; 120 bytes sent"
    )
    few = recording(terminal=False)
    execute.summary(few, cast(Any, targets[8:10]))
    assert few.export_text().strip() == "done: web9: deployed, web10: failed; 20 bytes sent"


def test_text_from_a_node_is_printed_as_it_is_emoji_codes_too() -> None:
    """No emoji table: ``:name:`` from a node is text (and rich's table of them is not
    loaded by the status table)."""
    stream = io.StringIO()
    console = view.make_console(stream)
    console.print(view.plain("com.example:shop 1.0.0 :thumbs_up: [bold]x[/]"))
    assert stream.getvalue() == "com.example:shop 1.0.0 :thumbs_up: [bold]x[/]\n"

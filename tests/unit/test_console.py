"""What the terminal shows, tested as text (rich's recorded console)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from rich.console import Console

from fabfile.app.appdir import AppDir
from fabfile.commands import execute
from fabfile.commands.options import Options
from fabfile.engine.target import Outcome
from fabfile.view import console as view
from fabfile.view.console import piece
from fabfile.view.grid import PAGE, Column, Grid


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


def test_a_command_makes_its_console_on_first_use_and_piped_prints_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = Options(AppDir(tmp_path))
    options.out.line(("error:", "bold red"), (" ", ""), piece("x [bold]y[/] \\[z :ok:"))
    options.out.table(Grid((Column("A"), Column("B")), (((("1", "green"),), ()),)))
    assert capsys.readouterr().out == "error: x [bold]y[/] \\[z :ok:\nA  B\n1   \n"
    assert options.__dict__["_console"] is None  # not made: rich not needed
    wide = Grid((Column("A" * (PAGE + 1)),), ())
    options.out.table(wide)  # wider than the page: rich prints it, on a console made now
    assert options.__dict__["_console"] is not None
    assert capsys.readouterr().out == "A" * (PAGE - 1) + "…\n"  # rich cuts it


def test_a_console_given_takes_everything_the_status_command_prints(tmp_path: Path) -> None:
    given = Console(file=io.StringIO(), force_terminal=True, width=80)
    options = Options(AppDir(tmp_path), console=given)
    assert options.console is given
    options.out.line(("error:", "bold red"), piece(" x"))
    options.out.write("[]\n")
    assert given.file.getvalue() == "\x1b[1;31merror:\x1b[0m x\n[]\n"  # type: ignore[attr-defined]

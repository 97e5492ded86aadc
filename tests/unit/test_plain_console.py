"""Piped, the console deploy, switch and rollback print through (`view.Plain`) writes
the very bytes rich's console wrote there, and loads no rich for lines of text."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.table import Table

from fabfile.engine.phase import Phase
from fabfile.view import console as view
from fabfile.view import progress
from fabfile.view.grid import PAGE

REPO = Path(__file__).resolve().parents[2]
HOSTILE = [
    "",
    "plain text",
    "  indented and trailing  ",
    "[bold]x[/]",
    "[bold red]x[/bold red] y",
    "[yellow]warning:[/] no load balancer",
    "a [b] c",
    "\\[bold]x",
    "\\\\[bold]x[/]",
    "\\\\\\[bold]x",
    "ends in \\",
    "ends in \\\\",
    "a\\[b",
    "[1] [x=1] [#fff]",
    ":thumbs_up: :smile:",
    "[",
    "]",
    "x" * PAGE,
    "x" * (PAGE + 1),
    "word " * 50,
    "tab\there",
    "caf\u00e9 \u2026",
    "line\nbreak",
]


def by_rich(*objects: Any, **kwargs: Any) -> str:
    """What rich's console printed off a terminal before `view.Plain` (``make_console``)."""
    stream = io.StringIO()
    Console(file=stream, highlight=False, emoji=False, width=PAGE).print(*objects, **kwargs)
    return stream.getvalue()


def by_plain(*objects: Any, **kwargs: Any) -> tuple[str, bool]:
    """What `view.Plain` prints, and whether it needed rich for it."""
    stream = io.StringIO()
    console = view.Plain(stream)
    console.print(*objects, **kwargs)
    return stream.getvalue(), console._rich is not None


@pytest.mark.parametrize("text", HOSTILE)
def test_escaping_is_riches(text: str) -> None:
    assert view._escape(text) == escape(text)


@pytest.mark.parametrize("soft_wrap", [False, True])
@pytest.mark.parametrize("text", HOSTILE)
def test_a_line_prints_as_rich_printed_it(text: str, soft_wrap: bool) -> None:
    for markup in (text, view.plain(text), f"[green]{view.plain(text)}[/]"):
        out, _ = by_plain(markup, soft_wrap=soft_wrap)
        assert out == by_rich(markup, soft_wrap=soft_wrap), markup


def test_plain_text_needs_no_rich_and_the_rest_goes_to_it() -> None:
    assert by_plain("[yellow]warning:[/] a \\[b] c", soft_wrap=True) == (
        "warning: a [b] c\n",
        False,
    )
    assert by_plain("done: web1: unchanged; 0 bytes sent") == (
        "done: web1: unchanged; 0 bytes sent\n",
        False,
    )
    assert by_plain() == ("\n", False)
    assert by_plain("a", "b", end="") == ("a b", False)
    assert by_plain("x" * (PAGE + 1), soft_wrap=True) == ("x" * (PAGE + 1) + "\n", False)
    for rich_only in ("x" * (PAGE + 1), "caf\u00e9", "[@click]x[/]"):
        assert by_plain(rich_only)[1], rich_only
    for refused in ("[/]", "[b]x[/c]"):  # rich's error, as before
        with pytest.raises(MarkupError):
            by_plain(refused)
    table = Table("A")
    table.add_row("1")
    assert by_plain(table) == (by_rich(table), True)


def test_the_plain_reporter_prints_the_lines_rich_printed() -> None:
    lines = [("web-1", Phase.DONE, "[bold]1.0.2[/] :ok:"), ("web-2", Phase.FAILED, "")]
    printed: list[str] = []
    for stream in (io.StringIO(), io.StringIO()):
        console = view.Plain(stream) if not printed else view.rich_console(stream)
        reporter = progress.PlainReporter(console)
        reporter.started = 0.0
        for host, phase, detail in lines:
            reporter.phase(host, phase, detail)
        reporter.note("pushed [x] to 2 node(s)")
        printed.append(stream.getvalue())
    plain, rich = printed
    assert _untimed(plain) == _untimed(rich)
    assert "web-1            done  [bold]1.0.2[/] :ok:" in plain
    assert plain.endswith("pushed [x] to 2 node(s)\n")


def _untimed(text: str) -> list[str]:
    return [line.split("s  ", 1)[-1] for line in text.splitlines()]


def test_a_console_for_a_pipe_is_plain_and_where_rich_may_see_a_terminal_riches() -> None:
    assert isinstance(view.make_console(io.StringIO()), view.Plain)
    tty = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FORCE_COLOR", "1")
        assert isinstance(view.make_console(tty), Console)  # FORCE_COLOR: rich decides


PIPED = """
import sys
from types import SimpleNamespace
from fabfile.commands import deploy, execute, rollback, switch
from fabfile.engine.phase import Phase
from fabfile.engine.target import Outcome
from fabfile.view import console as view, progress

console = view.make_console()
reporter = progress.PlainReporter(console)
reporter.phase("web-1", Phase.DONE, "1.0.2")
reporter.note("[x] noted")
node = SimpleNamespace(host="web-1", outcome=Outcome.UNCHANGED, sent=0, left_out="")
execute.summary(console, [node])
console.print("[yellow]warning:[/] " + view.plain("a [b]"))
unused = ("rich", "statistics", "fabfile.records.metrics")  # metrics: a missed ready_timeout's
found = sorted(m for m in sys.modules for u in unused if m == u or m.startswith(u + "."))
print(found, file=sys.stderr)
"""


def test_deploy_switch_and_rollback_piped_load_no_rich() -> None:
    """The commands' modules and their plain lines, in a fresh interpreter, stdout a pipe:
    no rich, and no delivery metrics (`fabfile.engine.readiness` loads them when a node
    missed its limit)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-c", PIPED],
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"
    assert done.stdout.endswith(
        "web-1            done  1.0.2\n[x] noted\n"
        "done: web-1: unchanged; 0 bytes sent\nwarning: a [b]\n"
    )

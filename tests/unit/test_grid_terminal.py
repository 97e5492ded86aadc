"""On a terminal the status table and its lines print without rich: the very bytes
rich's console (`fabfile.view.console.make_console`) prints there, colours and width
read from the same environment, or rich prints them."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from fabfile.cluster.balancer import State
from fabfile.view import grid
from fabfile.view import tables as view
from fabfile.view.console import make_console, rich_of
from fabfile.view.grid import Column, Grid, Page, Printer
from tests.unit.test_tables import _STYLE, _grids, _statuses, _texts


class Tty(io.StringIO):
    """What a terminal is to rich: a stream whose isatty() says so."""

    def isatty(self) -> bool:
        return True


CLEARED = (
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
)
SIZE = os.terminal_size((100, 30))  # the terminal's size where COLUMNS does not say it
# environments where rich's console colours a terminal, and we print as it does
COLOURED: list[dict[str, str]] = [
    {"TERM": "xterm-256color", "COLUMNS": "120"},
    {"TERM": "xterm", "COLORTERM": "truecolor", "COLUMNS": "80"},
    {"TERM": "xterm-16color", "COLUMNS": "40"},
    {"TERM": "kitty", "COLORTERM": "24bit"},  # its width: the terminal's
    {"TERM": "screen", "NO_COLOR": "1", "COLUMNS": "200"},
    {"TERM": "vt100", "NO_COLOR": "", "LINES": "10"},  # an empty NO_COLOR: colours
    {"TERM": "linux", "COLUMNS": "wide"},  # not a number: the terminal's width
    {"COLUMNS": "60", "NO_COLOR": "yes"},  # no TERM at all: standard colours
    {"TERM": "DUMBER", "COLUMNS": "7"},
]
# environments where rich decides otherwise than we reproduce: rich prints
RICH: list[dict[str, str]] = [
    {"TERM": "dumb"},
    {"TERM": "Unknown", "COLUMNS": "120"},
    {"TERM": "xterm", "FORCE_COLOR": "1"},
    {"TERM": "xterm", "FORCE_COLOR": ""},
    {"TERM": "xterm", "TTY_COMPATIBLE": "1"},
    {"TERM": "xterm", "TTY_COMPATIBLE": "0"},
    {"TERM": "xterm", "COLUMNS": "0"},
]


@contextmanager
def environment(env: dict[str, str], size: os.terminal_size | None = SIZE) -> Iterator[None]:
    """``env`` instead of the terminal variables, and a terminal of ``size`` on the
    standard streams (None: none of them is one)."""

    def terminal_size(descriptor: int = 1) -> os.terminal_size:
        if size is None:
            raise OSError("not a terminal")
        return size

    with pytest.MonkeyPatch.context() as patch:
        for name in CLEARED:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setattr(os, "get_terminal_size", terminal_size)
        yield


def rich_prints(printable: object, soft_wrap: bool = False) -> str:
    """What rich's console of a command prints to a terminal, here and now."""
    stream = Tty()
    make_console(stream).print(printable, soft_wrap=soft_wrap)
    return stream.getvalue()


def printer_on(stream: Tty) -> tuple[Printer, list[Console]]:
    """A command's printer on ``stream``, and the rich consoles it made (none, or one)."""
    made: list[Console] = []

    def console() -> Console:
        made.append(rich_of(make_console(stream)))
        return made[0]

    return Printer(console, grid.page(stream)), made


@settings(max_examples=600, deadline=None)
@given(_grids(), st.sampled_from(COLOURED), st.sampled_from([SIZE, None]))
def test_a_grid_on_a_terminal_is_the_bytes_rich_prints(
    table: Grid, env: dict[str, str], size: os.terminal_size | None
) -> None:
    with environment(env, size):
        page = grid.page(Tty())
        assert page is not None and page.sgr is not None, env
        text = page.table(table)
        event("ours" if text is not None else "to rich")
        if text is not None:
            assert text == rich_prints(table), env


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_texts(odd=True), _STYLE), max_size=4),
    st.booleans(),
    st.sampled_from(COLOURED),
)
def test_a_line_on_a_terminal_is_the_bytes_rich_prints(
    pieces: list[tuple[str, str]], soft_wrap: bool, env: dict[str, str]
) -> None:
    with environment(env):
        stream = Tty()
        printer, made = printer_on(stream)
        printer.line(*pieces, soft_wrap=soft_wrap)
        event("ours" if not made else "to rich")
        assert stream.getvalue() == rich_prints(Text.assemble(*pieces), soft_wrap), env


@pytest.mark.parametrize("env", COLOURED)
@pytest.mark.parametrize(
    "rotation", [None, {"web1": State.UP, "web2": State.MAINT, "web3": State.DRAIN}]
)
def test_the_status_table_on_a_terminal_is_rich_s_colours_without_rich(
    env: dict[str, str], rotation: dict[str, State] | None
) -> None:
    table = view.status_table(_statuses(), "1.0.126", rotation)
    with environment(env):
        stream = Tty()
        page = grid.page(stream)
        assert page is not None
        natural = table.plain(1000)
        assert natural is not None
        wide = page.width >= len(natural.splitlines()[0])  # the terminal has room for it
        text = page.table(table)
        assert (text is not None) is wide, page.width
        printer, made = printer_on(stream)
        printer.table(table)
        assert stream.getvalue() == rich_prints(table)
        assert bool(made) is not wide  # rich only for a table wider than the terminal
    coloured = "NO_COLOR" not in env or not env["NO_COLOR"]
    if wide:
        assert (
            "\x1b[1;33m1.0.125 (last deployed: 1.0.126)\x1b[0m" in stream.getvalue()
        ) is coloured
        assert "\x1b[1mURL" in stream.getvalue()  # bold headers, with or without colours


@pytest.mark.parametrize("env", RICH)
def test_where_rich_decides_otherwise_rich_prints(env: dict[str, str]) -> None:
    with environment(env):
        assert grid.page(Tty()) is None


def test_a_style_we_do_not_know_goes_to_rich() -> None:
    page = Page(Tty(), 80, grid.SGR)
    assert page.table(Grid((Column("A"),), (((("x", "italic"),),),))) is None
    assert page.line((("x", "underline"),), soft_wrap=False) is None
    assert page.line((("x", "bold red"), (" y", "")), soft_wrap=False) == "\x1b[1;31mx\x1b[0m y\n"


def test_the_terminal_s_width_comes_from_columns_then_the_standard_streams() -> None:
    stream = Tty()
    for env, size, width, sgr in (
        ({"TERM": "xterm", "COLUMNS": "33"}, SIZE, 33, grid.SGR),
        ({"TERM": "xterm"}, SIZE, SIZE.columns, grid.SGR),
        ({"TERM": "xterm"}, None, 80, grid.SGR),
        ({"TERM": "xterm", "NO_COLOR": "1"}, SIZE, SIZE.columns, grid.SGR_NO_COLOR),
    ):
        with environment(env, size):
            assert grid.page(stream) == Page(stream, width, sgr), env


def test_lines_and_tables_at_the_terminal_s_edge_print_as_rich_prints_them() -> None:
    with environment({"TERM": "xterm-256color", "COLUMNS": "80"}):
        for size in (79, 80, 81):
            words = " ".join(["ab"] * 60)[: size - 1] + "c"
            stream = Tty()
            printer, made = printer_on(stream)
            printer.line(("error:", "bold red"), (words[6:], ""))
            table = Grid(  # as wide as the line: two columns and the gap between them
                (Column("A"), Column("B", no_wrap=True)),
                ((((words[:-4], "green"),), (("ms", "bold"),)),),
            )
            printer.table(table)
            expected = rich_prints(Text.assemble(("error:", "bold red"), (words[6:], "")))
            assert stream.getvalue() == expected + rich_prints(table), size
            assert bool(made) is (size > 80), size  # rich only past the edge

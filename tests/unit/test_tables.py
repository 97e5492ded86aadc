"""The tables, tested as text (rich's recorded console)."""

from __future__ import annotations

import functools
import io
import string

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from fabfile.cluster.balancer import State
from fabfile.cluster.probe import Status
from fabfile.view import grid
from fabfile.view import tables as view
from fabfile.view.grid import PAGE, Column, Grid, Printer


def recording(terminal: bool) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal, width=120, record=True)


def test_the_status_table_marks_a_node_off_the_last_deployed_version() -> None:
    out = recording(terminal=False)
    statuses = [
        Status("web1", "http://web1/status", True, "", 200, "g:a", "1.0.126", 0.012),
        Status("web2", "http://web2/status", True, "", 200, "g:a", "1.0.125", 0.009),
        Status("web3", "http://web3/status", False, "connection refused", seconds=0.001),
    ]
    out.print(view.status_table(statuses, "1.0.126"))
    rows = {line.split()[0]: line for line in out.export_text().splitlines()[1:]}
    assert "Ok" in rows["http://web1/status"] and "last deployed" not in rows["http://web1/status"]
    assert "1.0.125 (last deployed: 1.0.126)" in rows["http://web2/status"]
    assert "Fail connection refused" in rows["http://web3/status"]
    assert rows["http://web1/status"].rstrip().endswith("12 ms")


def test_text_from_a_node_is_never_read_as_markup() -> None:
    out = recording(terminal=False)
    statuses = [Status("web1", "http://web1/status", True, "", 200, "g:a", "1.0[/]", 0.001)]
    out.print(view.status_table(statuses, "2.0"))
    assert "1.0[/] (last deployed: 2.0)" in out.export_text()


# -- piped, the status table prints without rich: the very bytes rich prints ----------

# printable ASCII, markup's own characters often, long texts near the page's edge; in
# some grids, what rich measures otherwise (a tab, a line break, a wide character, an
# accent, an escape): those go to rich
_PRINTABLE = st.sampled_from([*"ab :/[]\\@#", *string.printable.strip()])
_ODD = st.sampled_from(["\t", "\n", "é", "界", "\x1b"])
_TRICKS = ["", " ", "  x  ", "[bold]x[/]", "\\", "x\\", "\\[a", "[/]", ":thumbs_up:"]
_STYLE = st.sampled_from(["", "green", "bold red", "bold yellow", "bold"])


def _texts(odd: bool, long: bool = True) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(st.one_of(_PRINTABLE, _ODD) if odd else _PRINTABLE, max_size=12),
        st.text(st.sampled_from("ab [/]"), min_size=40, max_size=120 if long else 60),
        st.sampled_from(_TRICKS),
    )


@st.composite
def _grids(draw: st.DrawFn) -> Grid:
    text = _texts(odd=draw(st.integers(0, 4)) == 0, long=draw(st.integers(0, 4)) == 0)
    cell = st.lists(st.tuples(text, _STYLE), max_size=3).map(tuple)
    count = draw(st.integers(1, 6))
    columns = tuple(Column(draw(text), draw(st.booleans())) for _ in range(count))
    rows = draw(st.lists(st.tuples(*[cell] * count), max_size=5))
    return Grid(columns, tuple(rows))


def _rich(printable: object, width: int = PAGE) -> str:
    """What rich prints off a terminal, as `fabfile.view.console.make_console` makes it."""
    stream = io.StringIO()
    Console(file=stream, highlight=False, emoji=False, width=width).print(printable)
    return stream.getvalue()


@settings(max_examples=1000, deadline=None)
@given(_grids(), st.sampled_from([PAGE, PAGE, 120, 40]))
def test_a_grid_printed_plain_is_the_bytes_rich_prints(table: Grid, width: int) -> None:
    plain = table.plain(width)
    event("plain" if plain is not None else "to rich")
    if plain is not None:
        assert plain == _rich(table, width)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_texts(odd=True), _STYLE), max_size=4), st.booleans())
def test_a_line_printed_plain_is_the_bytes_rich_prints(
    pieces: list[tuple[str, str]], soft_wrap: bool
) -> None:
    piped, terminal = io.StringIO(), io.StringIO()
    made: list[Console] = []

    def console() -> Console:
        made.append(Console(file=terminal, highlight=False, emoji=False, width=PAGE))
        return made[0]

    Printer(console, grid.Page(piped)).line(*pieces, soft_wrap=soft_wrap)
    text = "".join(text for text, _ in pieces)
    event("plain" if not made else "to rich")
    if not made:
        expected = io.StringIO()
        Console(file=expected, highlight=False, emoji=False, width=PAGE).print(
            Text.assemble(*pieces), soft_wrap=soft_wrap
        )
        assert piped.getvalue() == expected.getvalue() == text + "\n"


def _same(console: Console) -> Console:
    return console


def test_lines_and_tables_near_the_page_edge_print_plain_only_where_rich_prints_them_so() -> None:
    for size in (PAGE - 1, PAGE, PAGE + 1):
        words = " ".join(["abcd"] * 60)[:size]
        piped, made = io.StringIO(), io.StringIO()
        console = Console(file=made, highlight=False, emoji=False, width=PAGE)
        Printer(functools.partial(_same, console), grid.Page(piped)).line((words, ""))
        assert (piped.getvalue() + made.getvalue()) == _rich(Text(words))
        assert bool(piped.getvalue()) is (size <= PAGE)
        table = Grid(  # as wide as the line: two columns and the gap between them
            (Column("A"), Column("B", no_wrap=True)), ((((words[:-4], ""),), (("ms", ""),)),)
        )
        plain = table.plain(PAGE)
        assert (plain is None) is (size > PAGE)
        assert plain is None or plain == _rich(table)


def _statuses() -> list[Status]:
    return [
        Status("web1", "http://web1/status", True, "", 200, "g:a", "1.0.126", 0.012),
        Status("web2", "http://web2/status", True, "", 200, "g:a", "1.0.125", 0.009),
        Status("web3", "http://web3/status", False, "connection refused", seconds=0.001),
        Status("web4", "http://web4/status", False, "x [bold]y[/] \\[z", seconds=0.3),
    ]


@pytest.mark.parametrize(
    ("rotation", "live", "views"),
    [
        (None, None, None),
        ({"web1": State.UP, "web2": State.MAINT, "web3": State.DRAIN}, None, None),
        ({"web1": State.UP, "web2": State.MAINT}, {"web1": True, "web2": False}, None),
        ({"web1": State.MAINT}, None, {"lb1": {"web1": State.UP}, "lb2": {"web1": State.MAINT}}),
    ],
)
def test_the_status_table_piped_is_what_rich_prints_without_loading_it(
    rotation: dict[str, State] | None,
    live: dict[str, bool] | None,
    views: dict[str, dict[str, State]] | None,
) -> None:
    table = view.status_table(_statuses(), "1.0.126", rotation, live, views)
    plain = table.plain(PAGE)
    assert plain is not None and plain == _rich(table)
    assert "1.0.125 (last deployed: 1.0.126)" in plain
    assert "Fail x [bold]y[/] \\[z" in plain
    coloured = Console(file=io.StringIO(), force_terminal=True, width=PAGE, record=True)
    coloured.print(table)  # on a terminal: the same text, in colour
    assert coloured.export_text() == plain
    assert "\x1b[1;33m1.0.125 (last deployed: 1.0.126)" in coloured.file.getvalue()  # type: ignore[attr-defined]


def test_rich_prints_where_it_would_take_the_stream_for_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert grid.piped(io.StringIO())
    assert not grid.piped(Tty())
    closed = io.StringIO()
    closed.close()
    assert not grid.piped(closed)
    for name, value in (("FORCE_COLOR", "1"), ("FORCE_COLOR", ""), ("TTY_COMPATIBLE", "0")):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert not grid.piped(io.StringIO())

"""The progress views, tested as text (rich's recorded console): live table, plain lines."""

from __future__ import annotations

import io
import re

from rich.console import Console

from fabfile.engine.phase import Phase
from fabfile.view import progress as view


def recording(terminal: bool) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal, width=120, record=True)


def test_the_live_view_shows_each_node_phase_and_time() -> None:
    screen = recording(terminal=True)
    with view.LiveReporter(screen, ["web1", "web2"]) as live:
        live.phase("web1", Phase.DONE, "2.1 s to ready")
        live.phase("web2", Phase.WAITING)
    text = screen.export_text()
    final = list(reversed(text.splitlines()))  # the live view redraws: the last frame counts
    web1 = next(line for line in final if line.startswith("web1"))
    web2 = next(line for line in final if line.startswith("web2"))
    assert "done" in web1 and "2.1 s to ready" in web1
    assert "waiting for /status" in web2
    assert "elapsed" in text


def test_plain_lines_off_a_terminal() -> None:
    out = recording(terminal=False)
    reporter = view.PlainReporter(out)
    reporter.phase("web1", Phase.RESTARTING)
    reporter.phase("web1", Phase.FAILED, "HTTP 500: [boom]")
    lines = out.export_text().splitlines()
    assert lines[0].endswith("web1             restarting")
    assert lines[1].endswith("failed  HTTP 500: [boom]")  # brackets are not eaten as markup


def test_a_fleet_that_would_not_fit_the_terminal_gets_a_row_per_phase() -> None:
    hosts = [f"web{n}" for n in range(1, 101)]
    screen = Console(file=io.StringIO(), force_terminal=True, width=120, height=30, record=True)
    with view.LiveReporter(screen, hosts) as live:
        for host in hosts[:40]:
            live.phase(host, Phase.DONE)
        live.phase("web41", Phase.FAILED, "HTTP 500")
        for host in hosts[41:51]:
            live.phase(host, Phase.WAITING)
    last = screen.export_text().split("Phase")[-1]  # the last frame the live view drew
    lines = last.splitlines()
    assert len(lines) < 30, "the compact table fits the terminal"
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert rows["pending"].split()[1] == "49"
    assert rows["done"].split()[1] == "40"
    assert "web1, web2" in rows["done"] and "and 32 more" in rows["done"]
    assert rows["failed"].split()[1] == "1" and "web41" in rows["failed"]
    waiting = next(line for line in lines if line.startswith("waiting for /status"))
    assert re.match(r"waiting for /status +10 +\d+\.\ds +web42, web43", waiting)  # the longest
    assert "41 of 100 ended" in last


def test_a_few_nodes_keep_a_row_each() -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=120, height=30, record=True)
    with view.LiveReporter(screen, ["web1", "web2", "web3"]) as live:
        live.phase("web1", Phase.DONE)
    text = screen.export_text()
    assert "Which" not in text
    assert any(line.startswith("web3") for line in text.splitlines())

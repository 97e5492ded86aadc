"""The tables, tested as text (rich's recorded console)."""

from __future__ import annotations

import io

from rich.console import Console

from fabfile.cluster.probe import Status
from fabfile.view import tables as view


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

"""The haproxy client against a real Unix socket whose backlog is full, as haproxy's
stats socket is when more than its ``stats maxconn`` (10) connections arrive at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.cluster import runtimeapi
from fabfile.cluster.balancer import Balancer, Counters, State, _counters
from fabfile.errors import NodeError


@pytest.fixture
def full(tmp_path: Path) -> Iterator[tuple[str, socket.socket, list[socket.socket]]]:
    """A listening socket nobody accepts on, its backlog filled until a connect says EAGAIN."""
    path = str(tmp_path / "haproxy.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    waiting: list[socket.socket] = []
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(1)
        try:
            client.connect(path)
        except BlockingIOError:
            client.close()
            break
        waiting.append(client)
        assert len(waiting) < 100, "the backlog never filled"
    try:
        yield path, server, waiting
    finally:
        for client in waiting:
            client.close()
        server.close()


def test_a_command_waits_while_the_socket_is_busy(
    full: tuple[str, socket.socket, list[socket.socket]],
) -> None:
    path, server, waiting = full
    answered: list[bytes] = []

    def haproxy() -> None:
        """Busy for a moment, then takes every connection in turn; answers commands."""
        time.sleep(0.2)
        for client in waiting:
            client.close()
        for _ in range(len(waiting) + 1):
            conn, _ = server.accept()
            with conn:
                line = conn.recv(100)
                if line:
                    answered.append(line)
                    conn.sendall(b"Pid: 42\n")

    thread = threading.Thread(target=haproxy, daemon=True)
    thread.start()
    assert Balancer(path).command("show info") == "Pid: 42\n"
    thread.join(5)
    assert answered == [b"show info\n"]


def test_a_socket_busy_for_good_fails_naming_stats_maxconn(
    full: tuple[str, socket.socket, list[socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtimeapi, "TIMEOUT", 0.3)
    started = time.monotonic()
    with pytest.raises(NodeError, match=r"stayed busy for 0.3 s .*'stats maxconn'"):
        Balancer(full[0]).command("show info")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("UP", State.UP),
        ("UP 1/3", State.UP),  # going down, still in rotation
        ("no check", State.UP),
        ("DRAIN", State.DRAIN),
        ("MAINT", State.MAINT),
        ("MAINT(via)", State.MAINT),
        ("DOWN 1/2", State.DOWN),
        ("NOLB", State.NOLB),
        (None, State.MISSING),
        ("", State.OTHER),
        ("STOPPING", State.OTHER),
    ],
)
def test_haproxys_status_column_is_one_state(status: str | None, state: State) -> None:
    assert State.of(status) is state


def test_only_up_and_drain_serve() -> None:
    assert {state for state in State if state.serving} == {State.UP, State.DRAIN}


def test_every_answer_counts_as_a_request_also_those_a_cookie_sent() -> None:
    """``lbtot`` counts only the times haproxy's algorithm chose the server; a sticky
    user's requests are in the server's answers (``hrsp_*``) and nowhere else."""
    row = {
        "lbtot": "1", "hrsp_1xx": "0", "hrsp_2xx": "40", "hrsp_3xx": "2", "hrsp_4xx": "3",
        "hrsp_5xx": "5", "hrsp_other": "0", "eresp": "1", "econ": "2", "rtime": "7",
    }  # fmt: skip
    assert _counters(row) == Counters(requests=53, errors=8, rtime=7)
    tcp = {"lbtot": "12", "hrsp_2xx": "", "eresp": "0", "econ": "1"}  # TCP mode: no answers
    assert _counters(tcp) == Counters(requests=12, errors=1)

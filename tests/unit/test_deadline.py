"""Every step on a node is bounded: a command by command_timeout, an upload by a deadline
that grows with its bytes, a dead connection by its keepalives; a signal ends a wait at
once. SSH mocked with fabric.testing, or a fake connection where a call must hang."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import paramiko
import pytest
from fabric import Connection
from fabric.testing.base import Command, MockRemote

from fabfile.app.config import NodeConfig
from fabfile.cluster import connection, deadline
from fabfile.cluster.node import Node
from fabfile.engine import signals
from fabfile.engine.signals import Signalled
from fabfile.errors import ConfigError, NodeError
from tests.fakes import node_configs
from tests.unit.test_node import HOST, MOCKED, NodeSession

FOREVER = 10**9  # exit_status_ready() answers False this many times: a command that never ends


@pytest.fixture
def remote() -> Iterator[MockRemote]:
    with MockRemote() as mocked:
        yield mocked


def hanging(remote: MockRemote, cmd: str | None) -> Mock:
    """The mocked channel of ``cmd`` (None: any), a command that never ends, waited on
    in real time."""
    (channel,) = remote.expect_sessions(
        NodeSession(host=HOST, user="deployer", port=2222, commands=[Command(cmd, waits=FOREVER)])
    )
    channel.status_event.wait.side_effect = time.sleep
    return channel  # type: ignore[no-any-return]


def node(tmp_path: Path, *lines: str) -> Node:
    return Node(node_configs(tmp_path, *MOCKED, *lines)[0])


def test_a_command_that_never_ends_fails_at_command_timeout_naming_node_and_step(
    tmp_path: Path, remote: MockRemote
) -> None:
    cmd = "deploy-unit-test --never-a-real-command --hang"
    hanging(remote, cmd)
    started = time.monotonic()
    with pytest.raises(NodeError) as caught:
        node(tmp_path, "command_timeout = 0.5").run(cmd, "reading the releases directory")
    assert 0.5 <= time.monotonic() - started < 2.0  # never ends
    assert str(caught.value).startswith(
        f"{HOST}: no answer within 0.5 s (command_timeout) while reading the releases "
        "directory; the node or the network to it went silent."
    )


def test_the_restart_command_is_bounded_by_ready_timeout(
    tmp_path: Path, remote: MockRemote
) -> None:
    hanging(remote, None)  # the claim script, then the restart command
    started = time.monotonic()
    with pytest.raises(NodeError) as caught:
        node(tmp_path, "ready_timeout = 0.4", "command_timeout = 30").restart("me", "run-1")
    assert time.monotonic() - started < 2.0
    assert "no answer within 0.4 s (ready_timeout) while running the restart command" in str(
        caught.value
    )


def test_a_signal_ends_a_command_at_once_and_cuts_its_connection(
    tmp_path: Path, remote: MockRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd = "deploy-unit-test --never-a-real-command --hang"
    hanging(remote, cmd)
    cut: list[object] = []
    monkeypatch.setattr(connection, "sever", cut.append)
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    with pytest.raises(Signalled), signals.handled():
        node(tmp_path, "command_timeout = 30").run(cmd, "installing the release")
    assert time.monotonic() - started < 1.2  # the command: 30 s
    assert len(cut) == 1


# -- a connection that dies under a command ------------------------------------------------


class Channel:
    """A channel whose connection died: no output, EOF, paramiko's exit status -1."""

    status_event = threading.Event()

    def settimeout(self, seconds: float) -> None: ...

    def exec_command(self, script: str) -> None: ...

    def shutdown_write(self) -> None: ...

    def recv(self, size: int) -> bytes:
        return b""

    def recv_stderr_ready(self) -> bool:
        return False

    def recv_stderr(self, size: int) -> bytes:
        return b""

    def exit_status_ready(self) -> bool:
        return True

    def recv_exit_status(self) -> int:
        return -1


@dataclasses.dataclass
class Dead:
    """A connection whose transport died, and why."""

    why: BaseException | None
    transport: Any = None

    def __post_init__(self) -> None:
        self.transport = Mock(**{"is_active.return_value": False})
        self.transport.get_exception.return_value = self.why

    def create_session(self) -> Channel:
        return Channel()


def test_a_connection_that_died_under_a_command_is_lost_not_an_exit_code() -> None:
    with pytest.raises(deadline.Lost) as caught:
        deadline.execute(Dead(EOFError("closed by the node")), "true", 5, lambda: None)
    assert str(caught.value) == "closed by the node" and caught.value.quiet < 1


class Unanswered(Channel):
    """A channel whose command request gets no reply: paramiko waits for one with no
    timeout of its own, until the connection is cut."""

    def __init__(self, cut: threading.Event) -> None:
        self.cut = cut

    def exec_command(self, script: str) -> None:
        self.cut.wait(30)
        raise EOFError


def test_a_request_the_node_never_answers_ends_at_the_deadline() -> None:
    cut = threading.Event()
    held = Mock(**{"create_session.return_value": Unanswered(cut)})
    started = time.monotonic()
    with pytest.raises(deadline.Silent):
        deadline.execute(held, "true", 0.3, cut.set)
    assert time.monotonic() - started < 1.5  # unanswered: 30 s


def configured(tmp_path: Path, *lines: str) -> NodeConfig:
    return node_configs(tmp_path, "hosts = web1", *lines)[0]


def test_a_connection_dropped_for_its_unanswered_keepalives_says_the_node_went_silent(
    tmp_path: Path,
) -> None:
    web1 = Node(configured(tmp_path, "ssh_keepalive = 5"))
    silent = web1.lost("running the restart command", deadline.Lost("EOFError()", 16.2))
    assert str(silent).startswith(
        "web1: no answer within 16 s (its connection dropped as dead: nothing acknowledged "
        "for 3 x ssh_keepalive = 3 x 5 s) while running the restart command; the node or "
        "the network to it went silent."
    )
    closed = web1.lost("installing the release", deadline.Lost("EOFError()", 0.3))
    assert str(closed) == "web1: installing the release: connection lost (EOFError())"


def test_a_channel_the_node_never_opens_is_a_silent_node(tmp_path: Path) -> None:
    web1 = Node(configured(tmp_path, "connect_timeout = 4"))
    silent = web1.lost("uploading app.war", paramiko.SSHException("Timeout opening channel."))
    assert str(silent).startswith(
        "web1: no answer within 4 s (connect_timeout, opening a channel) while uploading app.war"
    )


def test_a_reason_without_words_is_named() -> None:
    assert deadline.describe(EOFError()) == "EOFError: the connection closed"
    assert deadline.describe(None) == "the connection closed"
    assert deadline.describe(OSError("reset")) == "reset"


# -- uploads --------------------------------------------------------------------------------


class Stalled:
    """A connection whose upload hangs until the connection is cut."""

    def __init__(self) -> None:
        self.cut = threading.Event()
        self.transport = Mock()

    def put(self, local: str, remote: str) -> None:
        self.cut.wait(30)
        raise EOFError  # what paramiko raises once its transport is closed


def test_an_upload_that_stalls_fails_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    war = tmp_path / "app-1.0.war"
    war.write_bytes(b"x" * 300_000)
    web1 = Node(configured(tmp_path, "command_timeout = 0.5", "min_transfer_kib = 100000"))
    stalled = Stalled()
    web1._connection = stalled  # type: ignore[assignment]
    monkeypatch.setattr(connection, "sever", lambda held: held.cut.set())
    started = time.monotonic()
    with pytest.raises(NodeError) as caught:
        web1.upload(war, "ab" * 32)
    assert time.monotonic() - started < 2.5  # stalled: 30 s
    assert str(caught.value).startswith(
        "web1: no answer within 1 s (command_timeout + its size at min_transfer_kib) while "
        "uploading app-1.0.war (292 KiB)"
    )


def test_a_transfers_deadline_grows_with_its_bytes() -> None:
    assert deadline.transfer_seconds(0, 30, 256) == 30
    assert deadline.transfer_seconds(30 * 2**20, 30, 256) == 30 + 120
    assert deadline.transfer_seconds(1, 30, 256) == 31  # rounded up to a second


def test_a_rate_of_zero_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        configured(tmp_path, "min_transfer_kib = 0")
    assert "[deploy] min_transfer_kib" in str(caught.value)
    assert "expected a whole number of KiB/s > 0" in str(caught.value)


# -- keepalive ------------------------------------------------------------------------------


def test_keepalives_are_sent_and_a_silent_link_is_dead_after_three() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    sock = socket.create_connection(server.getsockname())
    try:
        held = Connection("web1.invalid")  # never opened: its transport is the test's
        held.transport = Mock(sock=sock)
        connection.keep_alive(held, 5)
        held.transport.set_keepalive.assert_called_once_with(5)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 15_000
    finally:
        sock.close()
        server.close()


def test_no_keepalive_when_it_is_off() -> None:
    held = Connection("web1.invalid")
    held.transport = Mock()
    connection.keep_alive(held, 0)
    held.transport.set_keepalive.assert_not_called()

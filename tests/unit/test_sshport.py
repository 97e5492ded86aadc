"""Which sshd turns a connection away, told without SSH in the words SSH would use.

Real sockets on loopback: a port nothing listens on refuses, a listener takes the
connection, a listener whose queue is full lets it wait. The words are held to what
the SSH path itself says (`locks._read_one`, `connection.reason`) for the same node.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from fabfile.app.config import NodeConfig
from fabfile.cluster import connection, sshport
from fabfile.commands import locks
from tests.fakes import node_configs


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one(tmp_path: Path, port: int, *lines: str) -> NodeConfig:
    return node_configs(
        tmp_path, "hosts = 127.0.0.1", "user = u", f"port = {port}", "connect_timeout = 0.5", *lines
    )[0]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


def test_a_refusing_sshd_is_told_in_the_words_ssh_uses(tmp_path: Path) -> None:
    config = one(tmp_path, closed_port())
    said = sshport.turned_away([config])
    assert said == {"127.0.0.1": locks._read_one(config)}  # the SSH path, for the same node
    assert "refused the connection: is sshd running there" in said["127.0.0.1"]


def test_an_sshd_that_takes_the_connection_is_left_to_ssh(
    tmp_path: Path, listener: socket.socket
) -> None:
    config = one(tmp_path, listener.getsockname()[1])
    assert sshport.turned_away([config]) == {}


def test_an_sshd_that_does_not_accept_in_time_is_told_at_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):  # fills its queue: SYNs dropped
            config = one(tmp_path, port)
            started = time.monotonic()
            said = sshport.turned_away([config])
            took = time.monotonic() - started
    assert said == {"127.0.0.1": sshport.timed_out(config)}
    assert 0.5 <= took < 2.0
    assert sshport.timed_out(config) == f"127.0.0.1: {connection.reason(config, TimeoutError())}"


def test_the_other_words_are_the_ssh_connections_own(tmp_path: Path) -> None:
    config = one(tmp_path, 2222)
    unreachable = paramiko.ssh_exception.NoValidConnectionsError(
        {
            ("127.0.0.1", 2222): OSError(errno.EHOSTUNREACH, os.strerror(errno.EHOSTUNREACH)),
            ("::1", 2222, 0, 0): OSError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED)),
        }
    )
    reasons = [os.strerror(errno.EHOSTUNREACH), os.strerror(errno.ECONNREFUSED)]
    assert sshport.unreachable(config, reasons) == (
        f"127.0.0.1: {connection.reason(config, unreachable)}"
    )
    gone = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert sshport.unresolved(config, gone) == f"127.0.0.1: {connection.reason(config, gone)}"


def test_many_hosts_are_dialled_at_once_more_than_the_sockets_open_at_a_time(
    tmp_path: Path,
) -> None:
    hosts = [f"127.0.{20 + i // 250}.{1 + i % 250}" for i in range(300)]  # > _AT_ONCE
    configs = node_configs(tmp_path, f"hosts = {', '.join(hosts)}", "user = u", "port = 1")
    started = time.monotonic()
    said = sshport.turned_away(configs)
    assert list(said) == hosts
    assert said[hosts[-1]] == sshport.refused(configs[-1])
    assert time.monotonic() - started < 2.0  # not a connection attempt after another


def test_a_name_is_resolved_as_ssh_would_and_one_that_resolves_to_nothing_is_told(
    tmp_path: Path,
) -> None:
    configs = node_configs(
        tmp_path, "hosts = localhost, nowhere.invalid", "user = u", f"port = {closed_port()}"
    )
    said = sshport.turned_away(configs)
    assert said["localhost"] == locks._read_one(configs[0])
    assert said["nowhere.invalid"] == locks._read_one(configs[1])
    assert "resolves to no address" in said["nowhere.invalid"]


def test_only_direct_nodes_are_dialled(tmp_path: Path) -> None:
    assert sshport.direct(one(tmp_path, 22))
    assert not sshport.direct(one(tmp_path, 22, "http_via = ssh"))


def test_the_lock_read_reads_over_ssh_only_what_was_not_turned_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    refusing = one(tmp_path, closed_port())
    taking = node_configs(
        tmp_path, "hosts = localhost", "user = u", f"port = {listener.getsockname()[1]}"
    )[0]
    over_ssh: list[str] = []
    monkeypatch.setattr(locks, "_read_one", lambda c: over_ssh.append(c.host))
    found = locks.read([taking, refusing])
    assert list(found) == ["localhost", "127.0.0.1"]  # the nodes' order
    assert over_ssh == ["localhost"]
    assert found["127.0.0.1"] == sshport.refused(refusing)
    over_ssh.clear()
    assert locks.read([refusing], turned={})["127.0.0.1"] is None  # read over SSH: mocked
    assert over_ssh == ["127.0.0.1"]


def test_status_starts_the_first_step_once_on_a_failure_and_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabfile.commands import status

    nodes = (one(tmp_path, 22),)
    calls: list[tuple[NodeConfig, ...]] = []

    def turned_away(nodes: tuple[NodeConfig, ...]) -> dict[str, str]:
        calls.append(nodes)
        return {"h": "why"}

    monkeypatch.setattr(locks, "turned_away", turned_away)
    sooner = status._Sooner(nodes)
    assert sooner.found() is None  # no node failed: the lock read takes the step itself
    sooner.start()
    sooner.start()
    assert sooner.found() == {"h": "why"}
    assert calls == [nodes]

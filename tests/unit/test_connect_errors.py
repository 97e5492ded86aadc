"""SSH connection failures in our words, with nothing of paramiko's own on stderr.

Real sockets on loopback: a port that refuses, and one that accepts but never
speaks SSH (a blackholed sshd).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.cluster.node import Node
from fabfile.errors import NodeError
from tests.fakes import node_configs


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_node(tmp_path: Path, port: int) -> str:
    config = node_configs(
        tmp_path,
        "hosts = 127.0.0.1",
        "user = u",
        f"port = {port}",
        "connect_timeout = 0.5",
        f"known_hosts = {tmp_path / 'known_hosts'}",
    )[0]
    node = Node(config)
    with pytest.raises(NodeError) as caught:
        node.open()
    return str(caught.value)


def test_a_silent_sshd_is_described_as_such(tmp_path: Path, silent_port: int) -> None:
    message = open_node(tmp_path, silent_port)
    assert message == (
        f"127.0.0.1: sshd at 127.0.0.1:{silent_port} accepted the connection but sent no SSH "
        "banner within 0.5 s: is it sshd, and is it overloaded?"
    )


def test_paramiko_prints_nothing_of_its_own(tmp_path: Path, silent_port: int) -> None:
    """In a process of its own: pytest's log capture would hide what a user sees."""
    (tmp_path / ".config").write_text(
        f"[deploy]\nhosts = 127.0.0.1\nuser = u\nport = {silent_port}\nconnect_timeout = 0.5\n"
    )
    script = (
        "import sys; from fabfile.app import config; from fabfile.cluster.node import Node\n"
        "node = Node(config.load(__import__('pathlib').Path(sys.argv[1]), app='a').nodes[0])\n"
        "try:\n    node.open()\nexcept Exception as error:\n    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / ".config")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "sent no SSH banner" in done.stdout
    assert done.stderr == ""


def test_a_refused_port_is_described_as_such(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    message = open_node(tmp_path, port)
    assert message == (
        f"127.0.0.1: sshd at 127.0.0.1:{port} refused the connection: "
        "is sshd running there, on that port?"
    )
    assert "Errno" not in message
    assert capfd.readouterr().err == ""

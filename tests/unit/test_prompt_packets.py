"""Every SSH connection sends each packet at once (TCP_NODELAY) and acknowledges each
at once (TCP_QUICKACK): otherwise a command's request, and the first channel's answer,
waited for a delayed acknowledgement, 40 ms each."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from fabfile.cluster import connection
from tests.fakes import node_configs


@pytest.fixture
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A TCP socket connected to a listener on loopback, and the listener's end."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        yield client, accepted
    finally:
        for sock in (client, accepted, server):
            sock.close()


def test_a_tcp_socket_sends_and_acknowledges_without_delay(
    connected: tuple[socket.socket, socket.socket],
) -> None:
    client, peer = connected
    assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    transport = connection._prompt_transport(client)
    sock = transport.sock
    try:
        assert isinstance(sock, socket.socket)  # keep_alive's TCP_USER_TIMEOUT needs one
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        if hasattr(socket, "TCP_QUICKACK"):
            assert isinstance(sock, connection._QuickAck)
        peer.sendall(b"SSH-2.0-x")
        sock.settimeout(5)
        assert sock.recv(64) == b"SSH-2.0-x"  # reads as before
    finally:
        transport.close()


def test_a_jump_hosts_channel_is_used_as_it_is() -> None:
    class Channel:  # what paramiko is given for a node behind a jump host
        def settimeout(self, seconds: float) -> None: ...

        def close(self) -> None: ...

    transport = connection._prompt_transport(Channel())
    assert isinstance(transport, paramiko.Transport)


def test_every_hop_is_built_with_it(tmp_path: Path) -> None:
    [node] = node_configs(tmp_path, "hosts = web1", "user = u")
    built = connection.build(node)
    assert built.connect_kwargs["transport_factory"] is connection._prompt_transport

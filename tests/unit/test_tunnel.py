"""HTTP through SSH (`fabfile.cluster.tunnel`) with a fake transport whose channels are
real sockets to a real HTTP server on loopback; https against a CA bundle; which
nodes default to ssh; the one shared jump connection; pre-flight's refusal."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fabfile.app.config import NodeConfig
from fabfile.app.credentials import Secret
from fabfile.cluster import connection, jumps, probe, tunnel
from fabfile.cluster import http as client
from fabfile.cluster.manager import Manager
from fabfile.engine import warmup
from fabfile.errors import ConfigError, NodeError
from tests.fakes import node_configs
from tests.unit.test_http import SEEN, Handler, Server, closed_port, manager_node


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """The port of test_http's canned server, a server of this module's own."""
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class FakeChannel:
    """A direct-tcpip channel as `_pump` uses it, over a real socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.closed = sock, False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class FakeTransport:
    """Opens channels to loopback ports, recording where each was asked to go."""

    def __init__(self, refuse: paramiko.SSHException | None = None) -> None:
        self.asked: list[tuple[str, int]] = []
        self.refuse = refuse

    def open_channel(
        self, kind: str, dest: tuple[str, int], src: tuple[str, int], timeout: float
    ) -> FakeChannel:
        assert kind == "direct-tcpip"
        self.asked.append(dest)
        if self.refuse is not None:
            raise self.refuse
        return FakeChannel(socket.create_connection(("127.0.0.1", dest[1]), timeout=timeout))


class FakeCarrier:
    def __init__(self, transport: FakeTransport | None = None, error: str = "") -> None:
        self.held, self.error = transport, error

    def transport(self) -> FakeTransport:
        if self.error:
            raise NodeError(self.error)
        assert self.held is not None
        return self.held


def via_ssh(tmp_path: Path, port: int) -> NodeConfig:
    manager_node(tmp_path, port)  # writes the .config this adds to
    path = tmp_path / ".config"
    path.write_text(path.read_text() + "http_via = ssh\n")
    return node_configs(tmp_path, *path.read_text().splitlines()[1:])[0]


@pytest.fixture
def carried(tmp_path: Path, port: int) -> Iterator[tuple[NodeConfig, FakeTransport]]:
    node, transport = via_ssh(tmp_path, port), FakeTransport()
    carrier = FakeCarrier(transport)
    tunnel.carry(node, carrier)
    try:
        yield node, transport
    finally:
        tunnel.drop(node, carrier)


# -- the way a request goes -------------------------------------------------------


def test_a_request_goes_through_its_way_to_the_host_and_port_named(port: int) -> None:
    asked: list[tuple[str, int, float]] = []

    def forward(host: str, to: int, timeout: float) -> socket.socket:
        asked.append((host, to, timeout))
        return socket.create_connection(("127.0.0.1", port))

    way = client.Way(forward)
    answer = client.request(
        "GET", "http://web1.invalid:8080/ok", connect_timeout=1, read_timeout=1, way=way
    )
    assert answer.status == 200
    assert asked == [("web1.invalid", 8080, 1)]


def test_probe_warmup_and_manager_go_over_the_nodes_ssh_connection(
    carried: tuple[NodeConfig, FakeTransport],
    port: int,
) -> None:
    node, transport = carried
    assert probe.probe(node).describe() == "200 g:a 1.2.3"
    assert warmup.fetch(node) == [f"http://127.0.0.1:{port}/missing: HTTP 404"]
    assert Manager(Secret("pw", "test")).count(node) == 3
    assert SEEN["/manager/text/list"]["Authorization"].startswith("Basic ")
    assert transport.asked == [("127.0.0.1", port)] * 4  # to the URL's host, as the node sees it


def test_a_direct_node_never_asks_its_carrier(tmp_path: Path, port: int) -> None:
    node = manager_node(tmp_path, port)
    assert node.http_via == "direct"
    tunnel.carry(node, FakeCarrier(error="must not be asked"))
    assert probe.probe(node).ok


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (paramiko.ChannelException(2, "Connection refused"), "connection refused"),
        (paramiko.SSHException("Timeout opening channel."), "timed out"),
        (
            paramiko.ChannelException(1, "administratively prohibited"),
            "not reached through SSH (127.0.0.1's sshd does not forward to 127.0.0.1:",
        ),
    ],
)
def test_a_channel_the_node_will_not_open_is_said_as_the_socket_would(
    tmp_path: Path, refusal: paramiko.SSHException, reason: str
) -> None:
    node = via_ssh(tmp_path, closed_port())
    carrier = FakeCarrier(FakeTransport(refuse=refusal))
    tunnel.carry(node, carrier)
    status = probe.probe(node)
    assert not status.ok and status.code is None
    assert status.reason.startswith(reason)


def test_a_node_that_cannot_be_logged_in_to_is_named_in_the_reason(tmp_path: Path) -> None:
    node = via_ssh(tmp_path, closed_port())
    carrier = FakeCarrier(error="127.0.0.1: sshd at 127.0.0.1:22 refused the connection")
    tunnel.carry(node, carrier)
    assert probe.probe(node).reason == (
        "not reached through SSH (127.0.0.1: sshd at 127.0.0.1:22 refused the connection)"
    )
    with pytest.raises(NodeError, match=r"does not answer \(not reached through SSH \(127"):
        Manager(Secret("pw", "test")).count(node)


def test_without_a_carrier_a_spare_connection_is_dialled_once_and_closed_at_the_end(
    tmp_path: Path,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, transport = via_ssh(tmp_path, port), FakeTransport()
    dialled: list[NodeConfig] = []
    closed: list[object] = []

    class Spare:
        def __init__(self) -> None:
            self.transport = transport
            transport.is_active = lambda: True  # type: ignore[attr-defined]

    def dial(config: NodeConfig) -> Spare:
        dialled.append(config)
        return Spare()

    monkeypatch.setattr(connection, "dial", dial)
    monkeypatch.setattr(connection, "close", closed.append)
    assert [s.ok for s in probe.probe_all([node, node, node])] == [True] * 3
    assert dialled == [node]  # one login, however many requests
    spare = tunnel.adopt(node)  # a Session opened now takes it over
    assert spare is not None and tunnel.adopt(node) is None
    probe.probe(node)
    tunnel.close_spares()
    assert len(dialled) == 2 and len(closed) == 1


# -- https and the CA bundle ---------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wardeploy test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem, key_pem = directory / "ca.pem", directory / "key.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, key_pem


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    pem, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem, key)
    server = Server(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], pem
    finally:
        server.shutdown()
        server.server_close()


def https_node(tmp_path: Path, port: int, *lines: str) -> NodeConfig:
    return node_configs(
        tmp_path,
        "hosts = localhost",
        "user = u",
        f"status_url = https://{{host}}:{port}/ok",
        "strategy = parallel",
        "manager_user = deploy",
        "war_path = /t/webapps/ROOT.war",
        "connect_timeout = 2",
        *lines,
    )[0]


def test_https_is_verified_and_an_untrusted_certificate_says_what_to_set(
    tmp_path: Path, https: tuple[int, Path]
) -> None:
    port, _ = https
    node = https_node(tmp_path, port)
    status = probe.probe(node)
    assert status.reason.startswith("certificate not trusted (")
    assert status.reason.endswith("); set ca_bundle to the CA that signed it")
    with pytest.raises(NodeError) as caught:
        Manager(Secret("pw", "test")).count(node)
    assert f"localhost: the Tomcat manager at https://localhost:{port}/manager/text" in str(
        caught.value
    )
    assert "set ca_bundle to the CA that signed it" in str(caught.value)


def test_https_verifies_against_the_ca_bundle_named(
    tmp_path: Path, https: tuple[int, Path]
) -> None:
    port, pem = https
    node = https_node(tmp_path, port, f"ca_bundle = {pem}")
    assert node.ca_bundle == str(pem)
    assert probe.probe(node).describe() == "200 g:a 1.2.3"
    assert Manager(Secret("pw", "test")).count(node) == 3


# -- which nodes go through SSH --------------------------------------------------------


def jump_nodes(tmp_path: Path, *lines: str) -> tuple[NodeConfig, ...]:
    (tmp_path / "ssh_config").write_text(
        "Host web*\n  ProxyJump bastion\nHost bastion\n  HostName 10.9.9.9\n  User jump\n"
        "Host db1\n  HostName 10.0.0.5\n"
    )
    return node_configs(
        tmp_path,
        "hosts = web1, web2, db1",
        "user = u",
        f"ssh_config = {tmp_path}/ssh_config",
        f"known_hosts = {tmp_path}/known",
        *lines,
    )


def test_a_node_behind_a_jump_host_is_asked_through_ssh_by_default(tmp_path: Path) -> None:
    assert [n.http_via for n in jump_nodes(tmp_path)] == ["ssh", "ssh", "direct"]
    chosen = jump_nodes(tmp_path, "http_via = direct", "[host:db1]", "http_via = SSH")
    assert [n.http_via for n in chosen] == ["direct", "direct", "ssh"]


def test_a_bad_http_via_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.config:6: \[deploy\] http_via = 'tunnel': expected"):
        jump_nodes(tmp_path, "http_via = tunnel")


def test_nodes_behind_one_jump_host_share_one_connection_to_it(tmp_path: Path) -> None:
    (tmp_path / "known").write_text("")
    web1, web2, db1 = jump_nodes(tmp_path, "connect_timeout = 7.5")
    first, second = connection.build(web1), connection.build(web2)
    assert first.gateway is second.gateway and isinstance(first.gateway, jumps.Jump)
    assert connection.build(db1).gateway is False
    key = first.gateway.key
    assert jumps.holders(key) == 2
    connection.close(first)
    assert jumps.holders(key) == 1  # web2 still goes through it
    connection.close(second)
    assert jumps.holders(key) == 0
    third = connection.build(web1)
    assert third.gateway is not first.gateway  # the last one closed it: a new one
    connection.close(third)


def test_threads_opening_one_jump_open_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    monkeypatch.setattr("fabric.Connection.open", lambda self: opened.append(threading.get_ident()))
    monkeypatch.setattr(jumps.Jump, "is_connected", property(lambda self: bool(opened)))
    jump = jumps.take(("test", "one"), lambda: jumps.Jump("10.9.9.9"))
    threads = [threading.Thread(target=jump.open) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 1
    monkeypatch.setattr("fabric.Connection.close", lambda self: None)
    jumps.give_back(jump)

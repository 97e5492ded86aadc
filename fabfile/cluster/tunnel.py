"""HTTP through SSH: a node's ``/status``, warm-up pages and Tomcat manager asked over
a channel of the node's own SSH connection, where SSH is the only way in.

``http_via = ssh`` (the default for a node reached through a jump host) opens a
``direct-tcpip`` channel on the node's connection to the URL's host and port, as the
node resolves them: nothing but SSH crosses the network, so the manager's password
travels only inside it. The connection is the node's `Session`'s when the command has
one (it registers here), else one this module dials and keeps until the command ends
(`close_spares`); a `Session` opened later adopts it, so a node costs one login, and
one closed hands its connection back here (`keep`): a request may still be on it.

http.client wants a socket (and ssl wraps only sockets), a channel is not one: each
request gets a private socketpair, one end pumped to the channel by a thread
(`_pump`). No local port is listened on, so no other local user can use the tunnel.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Protocol

from ..app.config import NodeConfig
from ..errors import NodeError
from . import http

if TYPE_CHECKING:
    import paramiko
    from fabric import Connection

# Paramiko and Fabric (and `connection`, which needs them) are loaded when a request
# first goes through SSH: `way` is asked for every probe, most of them direct, and
# ``deploy`` (the status table) must not load SSH for them.

SSH, DIRECT = "ssh", "direct"
_CHUNK = 65536
_IDLE = 1.0  # the pump looks up every second to see whether either end is gone


class Carrier(Protocol):
    """What holds a node's SSH connection: an open transport, dialled if need be
    (`NodeError` when it cannot be)."""

    def transport(self) -> paramiko.Transport: ...


_carriers: weakref.WeakValueDictionary[NodeConfig, Carrier] = weakref.WeakValueDictionary()
_spares: dict[NodeConfig, Connection] = {}
_done: list[Connection] = []  # kept by `keep` beside a node's spare, closed with them
_dialling: dict[NodeConfig, threading.Lock] = {}
_lock = threading.Lock()


def way(node: NodeConfig) -> http.Way:
    """How the HTTP client reaches ``node``: through its SSH connection or directly."""
    if node.http_via != SSH:
        return http.Way(ca_bundle=node.ca_bundle)
    return http.Way(lambda host, port, timeout: _forward(node, host, port, timeout), node.ca_bundle)


def carry(node: NodeConfig, carrier: Carrier) -> None:
    """``carrier`` holds ``node``'s connection from now on: its requests go over it."""
    with _lock:
        _carriers[node] = carrier


def drop(node: NodeConfig, carrier: Carrier) -> None:
    """``carrier`` closed for good: a later request dials a spare, not it again."""
    with _lock:
        if _carriers.get(node) is carrier:
            del _carriers[node]


def adopt(node: NodeConfig) -> Connection | None:
    """The spare connection dialled for ``node``'s requests, handed over (None: none)."""
    with _lock:
        return _spares.pop(node, None)


def keep(node: NodeConfig, held: Connection) -> bool:
    """Keep a connection its `Session` is done with, when requests may still be on it
    (``http_via = ssh``), until `close_spares`; False: close it now."""
    transport = held.transport
    if node.http_via != SSH or transport is None or not transport.is_active():
        return False
    with _lock:
        if node in _spares:
            _done.append(held)  # the node has one already: this one only waits to close
        else:
            _spares[node] = held
        return True


def close_spares() -> None:
    """Close every connection this module dialled and no `Session` adopted (the end
    of a command)."""
    with _lock:
        spares = [*_spares.values(), *_done]
        _spares.clear()
        _done.clear()
        _dialling.clear()
    if not spares:
        return
    from . import connection  # loaded already: it dialled them

    for spare in spares:
        with contextlib.suppress(Exception):
            connection.close(spare)


def _transport(node: NodeConfig) -> paramiko.Transport:
    with _lock:
        carrier = _carriers.get(node)
    if carrier is not None:
        return carrier.transport()
    return _spare(node)


def _spare(node: NodeConfig) -> paramiko.Transport:
    """A connection of this module's own to ``node``, dialled once for all its requests."""
    with _lock:
        dialling = _dialling.setdefault(node, threading.Lock())
    with dialling:
        with _lock:
            held = _spares.get(node)
        transport = held.transport if held is not None else None
        if transport is not None and transport.is_active():
            return transport
        from . import connection

        dialled = connection.dial(node)
        with _lock:
            _spares[node] = dialled
        assert dialled.transport is not None
        return dialled.transport


def _forward(node: NodeConfig, host: str, port: int, timeout: float) -> socket.socket:
    """A socket whose other end is a channel to ``host:port`` as the node resolves it."""
    import paramiko

    try:
        transport = _transport(node)
        channel = transport.open_channel(
            "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout
        )
    except NodeError as error:
        raise http.TunnelError(str(error)) from None
    except paramiko.ChannelException as error:
        raise _refused(node, host, port, error) from None
    except (paramiko.SSHException, EOFError, OSError) as error:
        if "Timeout opening channel" in str(error):
            raise TimeoutError(
                f"{node.host}'s sshd opened no channel within {timeout:g} s"
            ) from None
        raise http.TunnelError(f"{node.host}: SSH connection lost ({error})") from None
    ours, theirs = socket.socketpair()
    threading.Thread(target=_pump, args=(channel, theirs), daemon=True).start()
    forwarded = _Forwarded(ours.family, ours.type, fileno=ours.detach())
    forwarded.settimeout(timeout)
    return forwarded


def _refused(node: NodeConfig, host: str, port: int, error: paramiko.ChannelException) -> OSError:
    """The node's sshd would not connect the channel: why, as the socket would say it."""
    import paramiko

    text = error.text or ""
    if "refused" in text.lower():
        return ConnectionRefusedError(text)
    if "timed out" in text.lower():
        return TimeoutError(text)
    if error.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
        return http.TunnelError(
            f"{node.host}'s sshd does not forward to {host}:{port} ({text}): allow it "
            "(AllowTcpForwarding, PermitOpen) or set http_via = direct"
        )
    return http.TunnelError(f"{node.host}'s sshd could not connect to {host}:{port} ({text})")


class _Forwarded(socket.socket):
    """The client's end of a forwarded stream: TCP options mean nothing on it."""

    def setsockopt(self, level: int, option: int, value: object, *rest: object) -> None:  # type: ignore[override]
        if level != socket.IPPROTO_TCP:
            super().setsockopt(level, option, value, *rest)  # type: ignore[call-overload]


def _pump(channel: paramiko.Channel, end: socket.socket) -> None:
    """Copy bytes both ways between ``channel`` and ``end`` until the client closes its
    end (every request does) or the channel ends."""
    import paramiko

    try:
        with contextlib.closing(channel), contextlib.closing(end):
            _copy(channel, end)
    except (OSError, EOFError, paramiko.SSHException):
        pass  # either end gone: the client sees it as a closed connection


def _copy(channel: paramiko.Channel, end: socket.socket) -> None:
    sources: list[paramiko.Channel | socket.socket] = [channel, end]
    while sources:
        readable, _, _ = select.select(sources, [], [], _IDLE)
        if channel.closed and channel not in readable:
            return
        for source in readable:
            if source is channel:
                data = channel.recv(_CHUNK)
                if not data:  # the server closed: the client reads what is left, then EOF
                    end.shutdown(socket.SHUT_WR)
                    sources.remove(channel)
                    continue
                end.sendall(data)
            else:
                data = end.recv(_CHUNK)
                if not data:  # the client closed its end: the exchange is over
                    return
                channel.sendall(data)

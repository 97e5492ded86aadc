"""Which nodes' sshd turns a TCP connection away, for many nodes at once, without SSH.

Status reads the deploy lock over SSH from every host once a node fails (a run may
hold it). Building an SSH connection costs milliseconds of CPU a host (Fabric's
configuration, host keys) before a single byte is sent, and loading Paramiko a tenth
of a second: a thousand hosts whose sshd refuses cost seconds for one line of the
table. Here every directly reached host's SSH port is first dialled in one thread,
non-blocking, as Paramiko would dial it (each address getaddrinfo gives, in its order,
each bounded by ``connect_timeout``); a host that refuses on every address, or does
not accept within the timeout, is told in the very words `fabfile.cluster.connection`
would use (tests hold the two to it), and only the others are read over SSH. A host
that accepts costs its sshd one extra connection, closed before a byte.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..app.config import NodeConfig
from . import inflight

_AT_ONCE = 256  # sockets open at once: well below any descriptor limit
_RESOLVERS = 32  # names resolved at once
_SKIP = (errno.ECONNREFUSED, errno.EHOSTUNREACH)  # Paramiko tries the next address


def direct(config: NodeConfig) -> bool:
    """SSH goes straight to the node's own address: no jump host, no connection made
    for HTTP through SSH to adopt."""
    return not config.jumps and config.http_via != "ssh"


def turned_away(configs: Iterable[NodeConfig]) -> dict[str, str]:
    """Each host (of ``configs``, directly reached ones: `direct`) whose sshd cannot be
    connected to (or whose name resolves to nothing), with what the SSH connection would
    have said; hosts that accept are left out (their lock is read over SSH), and so are
    those that fail otherwise (SSH says why)."""
    dials = [_Dial(config) for config in configs]
    for dial in dials:
        if _literal(dial.name):
            dial.resolve()
    named = [d for d in dials if not _literal(d.name)]  # DNS may take a while: in parallel
    inflight.each(_Dial.resolve, named, workers=_RESOLVERS)
    _run([d for d in dials if d.addresses])
    return {d.config.host: d.said for d in dials if d.said}


def _literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# What SSH says when it cannot connect: the one wording, used here and by
# `fabfile.cluster.connection` (which loads Paramiko, so the words live here).


def refused_words(where: str) -> str:
    """Every address of the sshd ``where`` names refused the connection."""
    return f"{where} refused the connection: is sshd running there, on that port?"


def unreachable_words(where: str, reasons: Iterable[str]) -> str:
    """Every address refused or had no route (``reasons``: the errors' texts)."""
    return f"cannot reach {where} ({'; '.join(sorted(set(reasons)))})"


def unresolved_words(name: str, why: str, told: str) -> str:
    """``name`` resolves to no address (``told``: what ssh_config made of the host)."""
    return f"{name!r} resolves to no address ({why}); {told}"


def timed_out_words(where: str, seconds: float) -> str:
    """An address did not accept within ``seconds`` (``connect_timeout``)."""
    return f"{where} did not accept the connection within {seconds:g} s"


def refused(config: NodeConfig) -> str:
    """The SSH connection's words when every address refused."""
    return f"{config.host}: {refused_words(_where(config))}"


def unreachable(config: NodeConfig, reasons: Iterable[str]) -> str:
    """The SSH connection's words when every address refused or had no route."""
    return f"{config.host}: {unreachable_words(_where(config), reasons)}"


def unresolved(config: NodeConfig, error: socket.gaierror) -> str:
    """The SSH connection's words when the address resolves to nothing."""
    told = config.ssh.describe(config.host) if config.ssh else ""
    name = config.address or config.host
    return f"{config.host}: {unresolved_words(name, error.strerror or '', told)}"


def timed_out(config: NodeConfig) -> str:
    """The SSH connection's words when an address did not accept within the timeout."""
    return f"{config.host}: {timed_out_words(_where(config), config.connect_timeout)}"


def _where(config: NodeConfig) -> str:
    return f"sshd at {config.address or config.host}:{config.port}"


class _Dial:
    """One host's addresses, tried in turn, and what came of them."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.name = config.address or config.host
        self.addresses: list[tuple[int, Any]] = []
        self.errors: list[int] = []
        self.said = ""
        self.sock: socket.socket | None = None
        self.deadline = 0.0

    def resolve(self) -> None:
        """Where Paramiko would dial, in its order; a name that resolves to nothing is
        told as SSH would tell it (any other failure: SSH tells it)."""
        try:
            found = socket.getaddrinfo(
                self.name, self.config.port, socket.AF_UNSPEC, socket.SOCK_STREAM
            )
        except socket.gaierror as error:
            self.said = unresolved(self.config, error)
            return
        except (OSError, UnicodeError):
            return
        streams: list[tuple[int, Any]] = [
            (f, a) for f, k, _, _, a in found if k == socket.SOCK_STREAM
        ]
        self.addresses = streams or [(f, a) for f, _, _, _, a in found]

    def start(self) -> bool:
        """Dial the next address; True while the answer is pending."""
        while self.addresses:
            family, address = self.addresses.pop(0)
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError:  # no descriptor left, say: SSH tells what it meets
                self.addresses = []
                return False
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code in (errno.EINPROGRESS, errno.EAGAIN):
                self.sock, self.deadline = sock, time.monotonic() + self.config.connect_timeout
                return True
            sock.close()
            if not self.settled(code):
                return False
        self._all_failed()
        return False

    def settled(self, code: int) -> bool:
        """Take an address's outcome; True when the next address is to be tried."""
        if code in _SKIP:
            self.errors.append(code)
            return True
        self.addresses = []  # connected (SSH reads the lock), or a failure SSH tells itself
        return False

    def answered(self) -> bool:
        """The pending address answered; True while another is pending."""
        assert self.sock is not None
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.close()
        return self.settled(code) and self.start()

    def expired(self) -> None:
        """The pending address did not accept in time: Paramiko gives up there."""
        self.close()
        self.addresses = []
        self.said = timed_out(self.config)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _all_failed(self) -> None:
        if not self.errors:
            return
        if set(self.errors) == {errno.ECONNREFUSED}:
            self.said = refused(self.config)
        else:
            self.said = unreachable(self.config, (os.strerror(e) for e in self.errors))


def _run(dials: Sequence[_Dial]) -> None:
    """Every dial to its end, at most `_AT_ONCE` sockets pending at a time."""
    waiting = iter(dials)
    with selectors.DefaultSelector() as selector:
        _fill(selector, waiting)
        while selector.get_map():
            now = time.monotonic()
            soonest = min(key.data.deadline for key in selector.get_map().values())
            for key, _ in selector.select(max(0.0, soonest - now)):
                selector.unregister(key.fileobj)
                if key.data.answered():
                    selector.register(key.data.sock, selectors.EVENT_WRITE, key.data)
            now = time.monotonic()
            for key in list(selector.get_map().values()):
                if key.data.deadline <= now:
                    selector.unregister(key.fileobj)
                    key.data.expired()
            _fill(selector, waiting)


def _fill(selector: selectors.BaseSelector, waiting: Iterator[_Dial]) -> None:
    while len(selector.get_map()) < _AT_ONCE:
        dial = next(waiting, None)
        if dial is None:
            return
        if dial.start():
            selector.register(dial.sock, selectors.EVENT_WRITE, dial)  # type: ignore[arg-type]

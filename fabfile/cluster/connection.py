"""The SSH connection to a node: through its jump hosts, every host key checked, and
a failure to connect told as what to do.

Fabric reads no ssh_config itself (`fabfile.app.sshconfig` resolved it), and its own
ProxyJump is not used: it would accept any jump host's key.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from ..app.config import NodeConfig
from ..app.sshconfig import Resolved
from ..errors import NodeError
from . import hostkeys, jumps, sshport

_FAST_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
DEAD_AFTER = 3  # keepalive intervals with nothing acknowledged: the link is dead


def _prefer_aead_ciphers() -> None:
    """Offer AES-GCM first: it needs no separate MAC pass, which makes staging a
    30 MB WAR measurably faster (paramiko lists it last). Servers without it
    (OpenSSH before 6.2) still get the other ciphers."""
    rest = tuple(c for c in paramiko.Transport._preferred_ciphers if c not in _FAST_FIRST)
    paramiko.Transport._preferred_ciphers = _FAST_FIRST + rest


_prefer_aead_ciphers()
# paramiko logs connection failures itself ("Exception (client): Error reading SSH
# protocol banner"); the user reads our sentence about them instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def dial(config: NodeConfig) -> Connection:
    """An open connection to the node, host keys checked; `NodeError` saying why not."""
    try:
        connection = build(config)
    except OSError as error:
        name = f" {error.filename}" if error.filename else ""
        raise NodeError(
            f"{config.host}: cannot read the known_hosts file{name} ({error.strerror or error})"
        ) from None
    try:
        connection.open()
    except Exception as error:
        hop = _failed_hop(config, connection)
        close(connection)
        raise NodeError(f"{config.host}: {reason(config, error, hop)}") from None
    keep_alive(connection, config.ssh_keepalive)
    return connection


def build(config: NodeConfig) -> Connection:
    """A Fabric connection to the node's resolved address, not yet open, through its
    jump hosts, every one of them checked against ``known_hosts``; the connection to
    the last of them is shared with every node behind the same hops (`jumps`)."""
    gateway: Connection | bool = _jump(config, len(config.jumps)) if config.jumps else False
    assert config.ssh is not None  # `fabfile.app.config` resolves every node
    try:
        return _one(config, config.ssh, gateway, own_key=True)
    except BaseException:
        if isinstance(gateway, jumps.Jump):
            jumps.give_back(gateway)
        raise


def _jump(config: NodeConfig, hops: int) -> jumps.Jump:
    """The shared connection to the node's ``hops``-th jump host, through those before it."""
    used = config.jumps[:hops]
    key = (
        tuple((hop.address, hop.port, hop.user, hop.identity_files) for hop in used),
        config.identity_file,
        config.known_hosts,
        config.accept_unknown_hosts,
        config.connect_timeout,
    )

    def make() -> jumps.Jump:
        gateway: Connection | bool = _jump(config, hops - 1) if hops > 1 else False
        try:
            made = _one(config, used[-1], gateway, kind=jumps.Jump)
        except BaseException:
            if isinstance(gateway, jumps.Jump):
                jumps.give_back(gateway)
            raise
        assert isinstance(made, jumps.Jump)
        return made

    return jumps.take(key, make)


def close(connection: Connection) -> None:
    """The connection, and its jump hosts' unless other nodes still go through them
    (Fabric closes only the first)."""
    while isinstance(connection, Connection):
        if isinstance(connection, jumps.Jump):
            jumps.give_back(connection)  # it lets go of its own jump host when it closes
            return
        connection.close()
        connection = connection.gateway


def _hops(connection: Connection) -> list[Connection]:
    """The node's connection and its jump hosts', the node's first."""
    hops = []
    hop: Any = connection
    while isinstance(hop, Connection):
        hops.append(hop)
        hop = hop.gateway
    return hops


def keep_alive(connection: Connection, seconds: float) -> None:
    """SSH keepalives every ``seconds`` on every hop, and on the first hop's socket a
    bound on what may stay unacknowledged (`DEAD_AFTER` intervals, TCP_USER_TIMEOUT):
    a link that goes silent is then dead within that bound, and every step on it fails
    at once, instead of after TCP's own quarter of an hour."""
    if not seconds:
        return
    for hop in _hops(connection):
        transport = getattr(hop, "transport", None)
        if transport is None:
            continue
        transport.set_keepalive(max(1, round(seconds)))
        sock = transport.sock
        if isinstance(sock, socket.socket) and hasattr(socket, "TCP_USER_TIMEOUT"):
            bound = int(DEAD_AFTER * seconds * 1000)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, bound)


def sever(connection: Connection) -> None:
    """Close the connection without a word to the node, which may be silent: every
    hop's transport first, from the first hop dialled (nothing then waits on a send
    that cannot go out), then what Fabric holds. A jump host other nodes share is
    only let go of: the keepalive bound ends it if it is the one gone silent."""
    own = [hop for hop in _hops(connection) if not isinstance(hop, jumps.Jump)]
    for hop in reversed(own):
        transport = getattr(hop, "transport", None)
        if transport is not None:
            with contextlib.suppress(Exception):  # a dead transport may fail to close
                transport.close()
    with contextlib.suppress(Exception):
        close(connection)


def _one(
    config: NodeConfig,
    ssh: Resolved,
    gateway: Connection | bool,
    own_key: bool = False,
    kind: type[Connection] = Connection,
) -> Connection:
    """One SSH hop: ``.config``'s identity_file first (for the node itself), then
    ssh_config's IdentityFile, each host key checked."""
    keys = [str(Path(config.identity_file).expanduser())] if config.identity_file else []
    kwargs: dict[str, Any] = {
        "banner_timeout": config.connect_timeout,
        "auth_timeout": config.connect_timeout,
        "channel_timeout": config.connect_timeout,
        "key_filename": keys + list(ssh.identity_files),
        "transport_factory": _prompt_transport,
    }
    if config.identity_file and own_key:
        kwargs.update(look_for_keys=False, allow_agent=False)
    connection = kind(
        ssh.address,
        user=ssh.user,
        port=ssh.port,
        connect_kwargs=kwargs,
        config=Config(overrides={"load_ssh_configs": False}),
        connect_timeout=config.connect_timeout,
        gateway=gateway,
    )
    _check_host_keys(config, ssh, connection)
    return connection


def _prompt_transport(sock: Any, **kwargs: Any) -> paramiko.Transport:
    """paramiko's transport, on a socket that sends each packet at once and acknowledges
    each one at once, as OpenSSH's own client does. SSH is request and answer, and sshd
    writes some answers in two packets: with Nagle's algorithm on either side the second
    waits for the acknowledgement of the first, which Linux delays by 40 ms. Every
    command cost 40 ms more than its work that way (TCP_NODELAY, our side), and the
    first channel of a connection 40 ms more again (sshd's side: after the login its
    answer to that channel waited for our acknowledgement of what it sent before,
    `_QuickAck`). A jump host's channel (not a socket) is used as it is."""
    if not isinstance(sock, socket.socket) or sock.family not in _TCP:
        return paramiko.Transport(sock, **kwargs)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "TCP_QUICKACK"):  # Linux
        sock = _QuickAck(sock.family, sock.type, sock.proto, fileno=sock.detach())
    return paramiko.Transport(sock, **kwargs)


_TCP = (socket.AF_INET, socket.AF_INET6)


class _QuickAck(socket.socket):
    """A TCP socket that acknowledges what it receives at once: Linux leaves quick-ack
    mode by itself, so it is asked again before every read (a system call each)."""

    def recv(self, size: int, flags: int = 0) -> bytes:
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return super().recv(size, flags)


def _check_host_keys(config: NodeConfig, ssh: Resolved, connection: Connection) -> None:
    """Known hosts from the hop's files; an unknown one refused unless trusted on first use."""
    known = hostkeys.KnownHosts.of(config, ssh)
    known.load(connection.client)
    connection.client.set_missing_host_key_policy(known.policy(config.accept_unknown_hosts))


def _failed_hop(config: NodeConfig, connection: Connection) -> Resolved | None:
    """The jump host the connection did not get through (None: the node itself)."""
    chain = []
    hop: Any = connection.gateway
    while isinstance(hop, Connection):
        chain.append(hop)
        hop = hop.gateway
    for index, hop in enumerate(reversed(chain)):  # in dialling order
        transport = hop.client.get_transport()  # set before the key check and the login
        if transport is None or not transport.is_authenticated():
            return config.jumps[index]
    return None


def reason(config: NodeConfig, error: Exception, hop: Resolved | None = None) -> str:
    """Turn paramiko's and the socket's exceptions into what to do (``hop``: the jump
    host that failed, None for the node itself)."""
    via = f"jump host {hop.address}:{hop.port}: " if hop is not None else ""
    return _refused(config, error, hop, via) or _unreached(config, error, hop)


def _refused(config: NodeConfig, error: Exception, hop: Resolved | None, via: str) -> str:
    """Why SSH would not let us in: a name, a key or a login ('' for none of these)."""
    if isinstance(error, paramiko.BadHostKeyException):
        return via + _host_key_changed(config, hop)
    if isinstance(error, socket.gaierror):
        name = hop.address if hop is not None else config.address or config.host
        told = config.ssh.describe(config.host) if config.ssh else ""
        return via + sshport.unresolved_words(name, error.strerror or "", told)
    if isinstance(error, paramiko.PasswordRequiredException) or "encrypted" in str(error):
        return (
            f"the identity_file {config.identity_file} is passphrase-protected; load it into "
            "ssh-agent and leave identity_file empty"
        )
    if isinstance(error, paramiko.AuthenticationException):
        user = hop.user if hop is not None else config.user
        return f"{via}SSH login as {user!r} refused; check user and identity_file"
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
        address, port = (hop.address, hop.port) if hop else (config.address, config.port)
        known = hostkeys.KnownHosts.of(config, hop or config.ssh)
        return via + known.unknown(_known_as(address, port), address, port)
    if isinstance(error, paramiko.ChannelException) and hop is None and config.jumps:
        told = config.ssh.describe(config.host) if config.ssh else ""
        return (
            f"the jump host {config.jumps[-1].address} could not reach {config.address}:"
            f"{config.port} ({error.text}); {told}"
        )
    return ""


def _host_key_changed(config: NodeConfig, hop: Resolved | None) -> str:
    address, port = (hop.address, hop.port) if hop else (config.address, config.port)
    return hostkeys.KnownHosts.of(config, hop or config.ssh).changed(_known_as(address, port))


def _known_as(address: str, port: int) -> str:
    """The host as known_hosts names it."""
    return address if port == 22 else f"[{address}]:{port}"


def _unreached(config: NodeConfig, error: Exception, hop: Resolved | None) -> str:
    """Why the sshd (the node's or a jump host's) could not be talked to."""
    where = f"sshd at {config.address or config.host}:{config.port}"
    if hop is not None:
        where = f"jump host sshd at {hop.address}:{hop.port}"
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = {type(e) for e in error.errors.values()}
        if reasons == {ConnectionRefusedError}:
            return sshport.refused_words(where)
        return sshport.unreachable_words(
            where, (e.strerror or str(e) for e in error.errors.values())
        )
    if isinstance(error, (socket.timeout, TimeoutError)):
        return sshport.timed_out_words(where, config.connect_timeout)
    if isinstance(error, paramiko.SSHException) and (
        "banner" in str(error) or "No existing session" in str(error)
    ):
        return (
            f"{where} accepted the connection but sent no SSH banner within "
            f"{config.connect_timeout:g} s: is it sshd, and is it overloaded?"
        )
    if isinstance(error, (OSError, paramiko.SSHException, EOFError)):
        return f"{where}: SSH failed ({error})"
    return f"SSH connect failed ({type(error).__name__}: {error})"

"""How a command reaches one haproxy's runtime API: a socket here, or over SSH.

haproxy's stats socket takes one command line per connection and closes it after
its answer. `Local` connects to a Unix socket on this machine (or a TCP one); `Remote`
runs ``socat`` on the balancer's own host, over one SSH connection per balancer kept
for the whole command (`fabfile.cluster.session`), each command a channel of it: no
TCP port of haproxy's is exposed, and SSH's own checks (host keys, jump hosts, keys)
guard the way. A socket the SSH user may not write (Debian's is ``root:haproxy``, mode
660) is used through ``sudo -n -u become_user``, as the nodes' files are.

Both can write ``show servers state`` to the ``server-state-file`` haproxy reads at a
reload, on haproxy's own host, whole or not at all.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import NodeError

if TYPE_CHECKING:
    from ..app.endpoints import Endpoint
    from .session import Session

TIMEOUT = 5.0  # seconds for one command's answer
SOCAT = "socat"


class Channel(Protocol):
    """One haproxy runtime API, however it is reached."""

    name: str

    def send(self, line: str) -> str:
        """Send one command line; haproxy's whole answer."""
        ...

    def write_states(self, path: str) -> None:
        """``show servers state`` into ``path`` on haproxy's host, whole or not at all."""
        ...


def open_channel(endpoint: Endpoint) -> Channel:
    """The channel to ``endpoint``: over SSH when it names a host."""
    if endpoint.host is None:
        return Local(endpoint.socket, endpoint.name)
    return Remote(endpoint)


class Local:
    """haproxy's socket on this machine (a Unix path), or a TCP ``HOST:PORT``."""

    def __init__(self, address: str, name: str = "") -> None:
        self.address = address
        self.name = name or address

    def send(self, line: str) -> str:
        try:
            with self._connect() as conn:
                conn.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except BlockingIOError:
            raise NodeError(
                f"haproxy at {self.address}: its runtime API stayed busy for {TIMEOUT:g} s "
                "(every connection its 'stats maxconn' allows in use; haproxy's default is "
                "10): raise it on the 'stats socket' line, or use a smaller --batch"
            ) from None
        except OSError as error:
            raise NodeError(f"haproxy at {self.address}: {error}; is it running?") from None
        return b"".join(chunks).decode(errors="replace")

    def _connect(self) -> socket.socket:
        if "/" in self.address:
            return _connect_unix(self.address)
        host, _, port = self.address.rpartition(":")
        return socket.create_connection((host, int(port)), timeout=TIMEOUT)

    def write_states(self, path: str) -> None:
        target = Path(path)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:  # under a lock: another app's deploy through this haproxy saves states too
            with target.with_name(f".{target.name}.lock").open("a") as guard:
                fcntl.flock(guard, fcntl.LOCK_EX)
                partial.write_text(self.send("show servers state"))
                os.replace(partial, target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise NodeError(
                f"cannot write haproxy's server states to {target} ({error.strerror}); a "
                "reload of haproxy would revert them: fix lb_state_file"
            ) from None


def _connect_unix(path: str) -> socket.socket:
    """Connect to haproxy's Unix socket, waiting (bounded) while its backlog is full.

    haproxy serves its stats socket to ``stats maxconn`` connections at once (10 by
    default); past that the kernel's backlog fills, and a connect with a timeout then
    fails at once with EAGAIN instead of waiting as a TCP connect would. The nodes of
    one batch drain and come back at the same moment: 25 at once hit it (bench/scale.py)."""
    deadline = time.monotonic() + TIMEOUT
    pause = 0.005
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(TIMEOUT)
        try:
            conn.connect(path)
            return conn
        except BlockingIOError:
            conn.close()
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        except BaseException:
            conn.close()
            raise


# what `Remote.check` prints, a word per line
_NO_SOCAT, _NO_SOCKET, _WRITABLE = "no-socat", "no-socket", "writable"


class Remote:
    """haproxy's Unix socket on the balancer's host, through ``socat`` over SSH."""

    def __init__(self, endpoint: Endpoint) -> None:
        from .session import Session  # Paramiko and Fabric: only when a balancer needs SSH

        assert endpoint.host is not None
        self.endpoint = endpoint
        self.name = endpoint.name
        self.session: Session = Session(endpoint.host)
        self._prefix: str | None = None  # '' or sudo's words, once the socket was looked at
        self._checking = threading.Lock()
        _opened.append(self)

    def send(self, line: str) -> str:
        script = (
            f"{self._socat()} -t {TIMEOUT:g} - UNIX-CONNECT:{shlex.quote(self.endpoint.socket)}"
        )
        return self._run(script, f"sending haproxy '{line.split()[0]} ...'", line.encode() + b"\n")

    def write_states(self, path: str) -> None:
        """One script on the balancer's host: a lock beside the file, socat into a
        partial copy, renamed over it (as `Local.write_states`)."""
        target, directory = shlex.quote(path), shlex.quote(os.path.dirname(path) or ".")
        lock = shlex.quote(f"{os.path.dirname(path)}/.{os.path.basename(path)}.lock")
        partial = shlex.quote(f"{path}.{os.getpid()}.partial")
        socket_path = shlex.quote(self.endpoint.socket)
        inner = (
            f"set -e; cd {directory}; exec 9>>{lock}; flock 9; "
            f"printf 'show servers state\\n' | socat -t {TIMEOUT:g} - UNIX-CONNECT:{socket_path} "
            f"> {partial} || {{ rm -f {partial}; exit 1; }}; mv -f {partial} {target}"
        )
        prefix = self._socat_prefix()
        script = f"{prefix}sh -c {shlex.quote(inner)}" if prefix else inner
        self._run(script, f"writing haproxy's server states to {path}", b"")

    def _socat(self) -> str:
        return f"{self._socat_prefix()}{SOCAT}"

    def _socat_prefix(self) -> str:
        """'' when the SSH user may write the socket, else ``sudo -n -u become_user``;
        a host without socat, a missing socket or no way to it is a `NodeError`."""
        with self._checking:
            if self._prefix is None:
                self._prefix = self._check()
            return self._prefix

    def _check(self) -> str:
        """Looked at as the SSH user first, then (not writable) as ``become_user``."""
        from . import become

        where = f"balancer {self.name}: {self.endpoint.socket}"
        found = self._look("")
        if _NO_SOCAT in found:
            raise NodeError(
                f"{where}: socat is not installed there; install it (apt install socat)"
            )
        if _WRITABLE in found:
            return ""
        user = self.endpoint.host.become_user if self.endpoint.host else ""
        if user:
            found = self._look(become.prefix(user))
        if _NO_SOCKET in found:
            raise NodeError(f"{where}: no such socket; is haproxy running there, with that path?")
        if _WRITABLE not in found:
            raise NodeError(
                f"{where}: {user or self.session.config.user} may not write it; set "
                "become_user (sudo -n) or give the SSH user haproxy's socket group"
            )
        return become.prefix(user)

    def _look(self, prefix: str) -> list[str]:
        path = shlex.quote(self.endpoint.socket)
        script = (
            f"command -v {SOCAT} >/dev/null || echo {_NO_SOCAT}; [ -S {path} ] || echo "
            f"{_NO_SOCKET}; [ -w {path} ] && echo {_WRITABLE}; true"
        )
        if prefix:
            script = f"{prefix}sh -c {shlex.quote(script)}"
        return self._run(script, "looking at haproxy's socket", b"").split()

    def _run(self, script: str, what: str, stdin: bytes) -> str:
        result = self.session._exec(script, what, TIMEOUT * 2, stdin)
        if result.exited != 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise NodeError(
                f"balancer {self.name}: {what} failed (exit {result.exited}): "
                f"{said[-1] if said else 'no output'}"
            )
        return result.stdout

    def close(self) -> None:
        self.session.close()


_opened: list[Remote] = []


def close_all() -> None:
    """Close every SSH connection to a balancer (the end of a command)."""
    while _opened:
        _opened.pop().close()

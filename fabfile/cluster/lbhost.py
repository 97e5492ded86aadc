"""haproxy's socket on the balancer's own host, reached over SSH (``lb_socket =
HOST:/path``).

`Remote` runs ``socat`` there, over one SSH connection per balancer kept for the whole
command (`fabfile.cluster.session`: jump hosts, host keys, keepalives, deadlines as for
a node), each command a channel of it: no TCP port of haproxy's is exposed, and SSH's
own checks guard the way. A socket the SSH user may not write (Debian's is
``root:haproxy``, mode 660) is used through ``sudo -n -u become_user``, as the nodes'
files are; the first command looks at the socket once to tell which.
"""

from __future__ import annotations

import os
import shlex
import threading

from ..app.config import NodeConfig
from ..app.endpoints import Endpoint
from ..errors import NodeError
from . import become
from .runtimeapi import TIMEOUT
from .session import Session

SOCAT = "socat"
# Channels open at once on one balancer's connection: OpenSSH's sshd takes 10 per
# connection (MaxSessions), and one more is refused, which would cut the connection
# under every other thread's command (a --batch above 10 drains that many at once).
CHANNELS = 8


# what `Remote.check` prints, a word per line
_NO_SOCAT, _NO_SOCKET, _WRITABLE = "no-socat", "no-socket", "writable"


class Remote:
    """haproxy's Unix socket on the balancer's host, through ``socat`` over SSH."""

    def __init__(self, endpoint: Endpoint, host: NodeConfig) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.session = Session(host)
        self._prefix: str | None = None  # '' or sudo's words, once the socket was looked at
        self._checking = threading.Lock()
        self._channels = threading.BoundedSemaphore(CHANNELS)
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
        where = f"balancer {self.name}: {self.endpoint.socket}"
        found = self._look("")
        if _NO_SOCAT in found:
            raise NodeError(
                f"{where}: socat is not installed there; install it (apt install socat)"
            )
        if _WRITABLE in found:
            return ""
        user = self.session.config.become_user
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
        with self._channels:
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

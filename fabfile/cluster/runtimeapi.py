"""How a command reaches one haproxy's runtime API: the `Channel` a `Balancer` sends
through, and `Local`, a socket on this machine (a Unix path, or a TCP ``HOST:PORT``).

haproxy's stats socket takes one command line per connection and closes it after its
answer. The socket on a balancer's own host, over SSH, is `fabfile.cluster.lbhost`'s.
A channel can also write ``show servers state`` to the ``server-state-file`` haproxy
reads at a reload, on haproxy's own host, whole or not at all.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Protocol

from ..errors import NodeError

TIMEOUT = 5.0  # seconds for one command's answer


class Channel(Protocol):
    """One haproxy runtime API, however it is reached."""

    name: str

    def send(self, line: str) -> str:
        """Send one command line; haproxy's whole answer."""
        ...

    def write_states(self, path: str) -> None:
        """``show servers state`` into ``path`` on haproxy's host, whole or not at all."""
        ...


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

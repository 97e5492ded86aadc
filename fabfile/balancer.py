"""Taking a node out of haproxy's rotation and back, through its runtime API.

haproxy's stats socket (``stats socket PATH level admin``) takes one command
per connection. A node is set to ``drain`` (no new requests), we wait for its
current sessions to reach 0, and after verification it is set ``ready``; a
node that failed verification is left in ``maint``.
"""

from __future__ import annotations

import csv
import io
import socket
import time

from .config import NodeConfig
from .errors import NodeError

_TIMEOUT = 5.0


class Balancer:
    """A client of one haproxy runtime API (a Unix socket path or HOST:PORT)."""

    def __init__(self, address: str) -> None:
        self.address = address

    @classmethod
    def for_nodes(cls, nodes: tuple[NodeConfig, ...]) -> Balancer | None:
        """The balancer the nodes name, or None when ``.config`` names none.

        `fabfile.config` already checked the names and that every node names
        the same socket.
        """
        return cls(nodes[0].lb_socket) if nodes and nodes[0].lb_socket else None

    def command(self, line: str) -> str:
        """Send one command and return haproxy's whole answer."""
        try:
            with self._connect() as conn:
                conn.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as error:
            raise NodeError(f"haproxy at {self.address}: {error}; is it running?") from None
        return b"".join(chunks).decode(errors="replace")

    def _connect(self) -> socket.socket:
        if "/" in self.address:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(_TIMEOUT)
            conn.connect(self.address)
            return conn
        host, _, port = self.address.rpartition(":")
        return socket.create_connection((host, int(port)), timeout=_TIMEOUT)

    def set_state(self, node: NodeConfig, state: str) -> None:
        answer = self.command(f"set server {node.lb_backend}/{node.lb_server} state {state}")
        if answer.strip():
            raise NodeError(f"haproxy refused 'state {state}' for {node.host}: {answer.strip()}")

    def row(self, node: NodeConfig) -> dict[str, str]:
        """The node's server line of ``show stat`` (``scur``, ``status``, ...)."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        for row in rows:
            if (row.get("pxname"), row.get("svname")) == (node.lb_backend, node.lb_server):
                return row
        raise NodeError(
            f"haproxy has no server {node.lb_backend}/{node.lb_server} for {node.host}; "
            "check lb_backend and lb_server in .config"
        )

    def drain(self, node: NodeConfig) -> float:
        """Stop new requests and wait (bounded) until in-flight ones are done."""
        self.set_state(node, "drain")
        started = time.monotonic()
        deadline = started + node.drain_timeout
        while int(self.row(node).get("scur") or 0) > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return time.monotonic() - started

    def ready(self, node: NodeConfig) -> None:
        """Back in rotation now: the tool has just verified /status, which is
        what haproxy's own check asks, so its health is set up rather than
        waiting up to a check interval for haproxy to find out."""
        server = f"{node.lb_backend}/{node.lb_server}"
        answer = self.command(f"set server {server} state ready; set server {server} health up")
        if answer.strip():
            raise NodeError(f"haproxy refused to put {node.host} back: {answer.strip()}")

"""Whether haproxy's server for a node sends its traffic to that node, and if not, which
key of ``.config`` to fix.

A node's haproxy server is named by ``lb_server``; where the node answers is its
``status_url``. When haproxy's server points elsewhere, either names the wrong thing,
and the two mistakes look alike from haproxy's table. A server named after the node
itself (``lb_server``'s default: the host, or ``host-instance``) is taken at its
word, so the node's ``status_url`` is the odd one out (blue/green colours with their
ports swapped); a server named otherwise is the likelier mistake.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from ..app.config import NodeConfig
from .address import resolve, url_port

Servers = dict[str, tuple[str, int]]  # haproxy's server name -> (address, port)


def mismatch(node: NodeConfig, servers: Servers, nodes: Sequence[NodeConfig] = ()) -> str:
    """'' when ``node``'s haproxy server sends traffic where its status_url answers; else
    what is wrong, with the key to fix. ``nodes``: the others, to name a swap."""
    server = f"{node.lb_backend}/{node.lb_server}"
    if node.lb_server not in servers:
        known = ", ".join(sorted(servers)) or "none"
        return (
            f"{node.label}: haproxy has no server {server} (servers in {node.lb_backend}: "
            f"{known}); fix lb_backend / lb_server in .config"
        )
    address, port = servers[node.lb_server]
    host, want_port = _where(node)
    if _at(node, address, port):
        return ""
    said = (
        f"{node.label}: haproxy server {server} sends traffic to {address}:{port}, not to "
        f"this node ({host}:{want_port})"
    )
    if node.lb_server in named_after(node):
        other = next((n for n in nodes if n is not node and _at(n, address, port)), None)
        swapped = f", which is {other.label}'s status_url: the two look swapped" if other else ""
        return (
            f"{said}; the server is named after this node, so its status_url says the "
            f"wrong place: fix status_url for {node.label} in .config (haproxy sends its "
            f"traffic to {address}:{port}{swapped})"
        )
    return (
        f"{said}; draining it would not protect this node: fix lb_server in .config (or "
        f"status_url, if {node.label} does answer on {address}:{port})"
    )


def named_after(node: NodeConfig) -> frozenset[str]:
    """The server names that name ``node`` itself: ``lb_server``'s defaults."""
    names = {node.host, node.address or node.host}
    return (
        frozenset(f"{name}-{node.instance}" for name in names)
        if node.instance
        else (frozenset(names))
    )


def _where(node: NodeConfig) -> tuple[str, int]:
    """The host and port the node's status_url talks to."""
    return urllib.parse.urlsplit(node.url).hostname or node.host, url_port(node.url)


def _at(node: NodeConfig, address: str, port: int) -> bool:
    host, want_port = _where(node)
    return address in resolve(host) and port == want_port

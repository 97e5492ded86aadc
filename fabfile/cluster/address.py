"""What a node's name means on the network, as the coordinator resolves it.

Both haproxy's server table and ``ss`` on a node show addresses, while
``.config`` may name nodes by host name: comparing them needs one resolution.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse


def resolve(host: str) -> frozenset[str]:
    """Every address ``host`` resolves to, normalised; ``host`` itself if it does not."""
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        found = set()
    found.add(host)
    return frozenset(normal(address) for address in found)


def normal(address: str) -> str:
    """``::ffff:127.0.0.3`` -> ``127.0.0.3``; other text is returned as it is."""
    address = address.strip("[]").partition("%")[0]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def url_port(url: str) -> int:
    """The TCP port a URL talks to (80 or 443 when it names none)."""
    parts = urllib.parse.urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)

"""Asking a node's ``/status`` what it runs, one node or all of them at once.

``/status`` answers ``groupId:artifactId version``. A node is ready only when
it answers 200 *and* names the version just deployed: right after a restart
the old JVM still answers 200 for a moment.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import requests

from .config import NodeConfig

_EXCERPT = 120
_MAX_THREADS = 128


@dataclasses.dataclass(frozen=True)
class Status:
    """One answer (or non-answer) of one node's ``/status``."""

    host: str
    url: str
    ok: bool
    reason: str  # "" when ok; otherwise what went wrong, for the table
    code: int | None = None
    coordinates: str = ""
    version: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        """What was seen, in words, for error messages."""
        if self.ok:
            return f"200 {self.coordinates} {self.version}"
        return self.reason


def probe(node: NodeConfig, session: requests.Session | None = None) -> Status:
    """GET the node's ``/status`` once, bounded by its connect and read timeouts."""
    url = node.url
    started = time.monotonic()
    getter = session or requests
    try:
        response = getter.get(
            url, timeout=(node.connect_timeout, node.status_timeout), allow_redirects=False
        )
    except requests.Timeout:
        return _failed(node, url, started, "timed out")
    except requests.ConnectionError as error:
        return _failed(node, url, started, _connection_reason(error))
    except requests.RequestException as error:
        return _failed(node, url, started, f"HTTP error ({type(error).__name__})")
    return _read(node, url, started, response)


def _read(node: NodeConfig, url: str, started: float, response: requests.Response) -> Status:
    seconds = time.monotonic() - started
    body = response.text.strip()
    if response.status_code != 200:
        excerpt = " ".join(body.split())[:_EXCERPT]
        reason = f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else "")
        return Status(node.host, url, False, reason, response.status_code, seconds=seconds)
    coordinates, _, version = body.partition(" ")
    if ":" not in coordinates or not version or "\n" in version:
        reason = f"200 but not 'groupId:artifactId version': {body[:_EXCERPT]!r}"
        return Status(node.host, url, False, reason, 200, seconds=seconds)
    return Status(node.host, url, True, "", 200, coordinates, version.strip(), seconds)


def _failed(node: NodeConfig, url: str, started: float, reason: str) -> Status:
    return Status(node.host, url, False, reason, seconds=time.monotonic() - started)


def _connection_reason(error: requests.ConnectionError) -> str:
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text:
        return "timed out"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed without an answer"
    return "cannot connect"


def probe_all(nodes: Sequence[NodeConfig]) -> list[Status]:
    """Probe every node in parallel; the slowest node bounds the wait, not their sum."""
    if not nodes:
        return []
    with ThreadPoolExecutor(max_workers=min(_MAX_THREADS, len(nodes))) as pool:
        return list(pool.map(probe, nodes))


def wait_ready(
    node: NodeConfig,
    coordinates: str,
    version: str,
    must_go_down: bool = False,
) -> tuple[bool, Status]:
    """Poll until ``/status`` reports ``coordinates version`` with 200, or ``ready_timeout`` passes.

    When the node already answered that version before the restart (a forced
    or config-only redeploy), a 200 proves nothing until the old JVM has been
    seen gone: ``must_go_down`` waits for one failed poll first.
    Returns (ready, the last status seen); the caller decides what failure means.
    """
    deadline = time.monotonic() + node.ready_timeout
    with requests.Session() as session:
        while True:
            status = probe(node, session)
            must_go_down = must_go_down and status.ok
            wanted = (status.coordinates, status.version) == (coordinates, version)
            if status.ok and wanted and not must_go_down:
                return True, status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, status
            time.sleep(min(node.poll_interval, remaining))

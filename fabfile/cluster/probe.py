"""Asking a node's ``/status`` what it runs, one node or all of them at once.

``/status`` answers ``groupId:artifactId version`` on its first line. Lines
after it may add facts as ``name: value`` (``pid``, ``started``, ``log-level``):
`deploy logging` reads them to see that the same JVM took the new level. A
node is ready only when it answers 200 *and* names the version just deployed:
right after a restart the old JVM still answers 200 for a moment.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from ..app.config import NodeConfig
from . import http, inflight, tunnel

_EXCERPT = 120
_MAX_THREADS = 512
_MAX_BODY = 4096
_LEAST = 0.05  # a probe reached at the very end still gets a chance to answer


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
    facts: tuple[tuple[str, str], ...] = ()  # the ``name: value`` lines after the first
    # the way to the node failed (its SSH, or https's certificate), not the node's port
    unreached: bool = False

    def fact(self, name: str) -> str:
        """A fact the node reported on ``/status`` ('' when it reports none by that name)."""
        return next((value for key, value in self.facts if key == name), "")

    def describe(self) -> str:
        """What was seen, in words, for error messages."""
        if self.ok:
            return f"200 {self.coordinates} {self.version}"
        return self.reason


def probe(node: NodeConfig, since: float | None = None) -> Status:
    """GET the node's ``/status`` once, bounded by its connect and read timeouts.

    ``since`` is when a fleet's probes began: a probe the thread pool reaches late
    has that much less of each timeout, so a thousand nodes, a few of them hanging,
    take the timeouts and not the timeouts plus the queue.
    """
    url = node.url
    started = time.monotonic()
    late = started - since if since is not None else 0.0
    try:
        response = http.request(
            "GET",
            url,
            headers={"Connection": "close"},
            connect_timeout=max(node.connect_timeout - late, _LEAST),
            read_timeout=max(node.status_timeout - late, _LEAST),
            max_body=_MAX_BODY,
            way=tunnel.way(node),
        )
    except http.HttpError as error:
        unreached = error.failure in (http.Failure.TUNNEL, http.Failure.UNTRUSTED)
        return _failed(node, url, started, error.reason, unreached)
    return _read(node, url, started, response.status, response.text)


def _read(node: NodeConfig, url: str, started: float, code: int, text: str) -> Status:
    seconds = time.monotonic() - started
    body = text.strip()
    if code != 200:
        excerpt = " ".join(body.split())[:_EXCERPT]
        reason = f"HTTP {code}" + (f": {excerpt}" if excerpt else "")
        return Status(node.label, url, False, reason, code, seconds=seconds)
    first, *rest = body.splitlines() or [""]
    coordinates, _, version = first.strip().partition(" ")
    if ":" not in coordinates or not version.strip():
        reason = f"200 but not 'groupId:artifactId version': {body[:_EXCERPT]!r}"
        return Status(node.label, url, False, reason, 200, seconds=seconds)
    facts = tuple(_fact(line) for line in rest if ":" in line)
    return Status(node.label, url, True, "", 200, coordinates, version.strip(), seconds, facts)


def _fact(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def _failed(
    node: NodeConfig, url: str, started: float, reason: str, unreached: bool = False
) -> Status:
    seconds = time.monotonic() - started
    return Status(node.label, url, False, reason, seconds=seconds, unreached=unreached)


def probe_all(
    nodes: Sequence[NodeConfig], failed: Callable[[], None] | None = None
) -> list[Status]:
    """Probe every node in parallel; the slowest node bounds the wait, not their sum.
    ``failed`` is called (in a probe's thread) each time a node is not Ok, as soon as
    it is known: status starts what a failure calls for while the rest still answer.

    In `inflight.each`'s threads, not concurrent.futures': its import (logging,
    traceback, queue) costs the status table more than probing three nodes."""
    since = time.monotonic()

    def one(node: NodeConfig) -> Status:
        status = probe(node, since)
        if failed is not None and not status.ok:
            failed()
        return status

    return inflight.each(one, nodes, workers=_MAX_THREADS)


class DownWatch:
    """Polls a node in the background and remembers whether it was ever down."""

    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self.saw_down = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.saw_down:
            self.saw_down = not probe(self.node).ok
            self._stop.wait(self.node.poll_interval)

    def stop(self) -> bool:
        self._stop.set()
        self._thread.join()
        return self.saw_down


def wait_ready(
    node: NodeConfig,
    coordinates: str,
    version: str,
    must_go_down: bool = False,
) -> tuple[bool, Status, bool]:
    """Poll until ``/status`` reports ``coordinates version`` with 200, or ``ready_timeout`` passes.

    When the node already answered that version before the restart (a forced
    or config-only redeploy), a 200 proves nothing until the old JVM has been
    seen gone: ``must_go_down`` waits for one failed poll first. A node that
    answers a server error at every poll for ``error_grace`` seconds has failed
    then, not at ``ready_timeout``: a broken release answers 500 for good.
    Returns (ready, the last status seen, whether it gave up on steady errors).
    """
    deadline = time.monotonic() + node.ready_timeout
    errors_since: float | None = None
    while True:
        status = probe(node)
        must_go_down = must_go_down and status.ok
        wanted = (status.coordinates, status.version) == (coordinates, version)
        if status.ok and wanted and not must_go_down:
            return True, status, False
        now = time.monotonic()
        server_error = status.code is not None and status.code >= 500
        errors_since = (errors_since or now) if server_error else None
        if errors_since is not None and now - errors_since >= node.error_grace:
            return False, status, True
        remaining = deadline - now
        if remaining <= 0:
            return False, status, False
        inflight.pause(min(node.poll_interval, remaining))  # a stopped fan-out ends it

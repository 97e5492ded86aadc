"""The one HTTP client: ``/status`` probes, the Tomcat manager and warm-up all ask through it.

The standard library's http.client, not requests: it probes 300 nodes in about a
third of the time, which the status table's budget needs. No redirects are
followed and no proxy is used: a node is asked directly, and a 3xx is its answer.
Every connection is opened in `_open` alone, so that one function can later hand
back a channel forwarded over SSH instead of a direct socket.
"""

from __future__ import annotations

import dataclasses
import enum
import http.client
import time
import urllib.parse
from collections.abc import Mapping

from ..errors import NodeError


class Failure(enum.Enum):
    """Why an exchange ended without an answer, in the status table's words."""

    TIMEOUT = "timed out"
    REFUSED = "connection refused"
    CLOSED = "connection closed without an answer"
    OTHER = "cannot connect"


class HttpError(NodeError):
    """No whole HTTP answer: no connection, no bytes in time, or not HTTP; ``cause`` says which."""

    def __init__(self, method: str, url: str, cause: OSError | http.client.HTTPException) -> None:
        self.url = url
        self.cause = cause
        self.failure = _classify(cause)
        super().__init__(f"{method} {url}: {self.reason}")

    @property
    def reason(self) -> str:
        """What went wrong, in words: the failure, with the cause's own text when it is 'other'."""
        words: str = self.failure.value
        if self.failure is Failure.OTHER:
            return f"{words} ({type(self.cause).__name__}: {self.cause})"
        return words


def _classify(cause: BaseException) -> Failure:
    if isinstance(cause, TimeoutError):
        return Failure.TIMEOUT
    if isinstance(cause, ConnectionRefusedError):
        return Failure.REFUSED
    if isinstance(cause, http.client.RemoteDisconnected):
        return Failure.CLOSED
    return Failure.OTHER


@dataclasses.dataclass(frozen=True)
class Response:
    """One answer, whatever its status: a 404 or a 500 is an answer, not an `HttpError`."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes  # at most the ``max_body`` asked for: the rest was never read
    elapsed: float  # seconds from opening the connection to the last byte read

    def header(self, name: str) -> str:
        """A header's value, its name in any case ('' when the answer has none by that name)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), "")

    @property
    def text(self) -> str:
        """The body as UTF-8, bad bytes replaced: a node's error page is shown, not refused."""
        return self.body.decode("utf-8", errors="replace")


def request(
    method: str,
    url: str,
    *,
    connect_timeout: float,
    read_timeout: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    max_body: int | None = None,
) -> Response:
    """Send one request and read its answer; `HttpError` when there is none.

    ``connect_timeout`` bounds opening the connection (TLS included);
    ``read_timeout`` bounds every wait for bytes after that (a socket timeout, so
    a server that keeps sending keeps the exchange alive). ``max_body``: read at
    most that many bytes of the body and ignore the rest (None: all of it).
    """
    parts = urllib.parse.urlsplit(url)
    started = time.monotonic()
    connection: http.client.HTTPConnection | None = None
    try:
        connection = _open(parts, connect_timeout)
        assert connection.sock is not None
        connection.sock.settimeout(read_timeout)
        connection.request(method, _target(parts), body=body, headers=dict(headers or {}))
        answer = connection.getresponse()
        content = answer.read() if max_body is None else answer.read(max_body)
    except (OSError, http.client.HTTPException) as error:
        raise HttpError(method, url, error) from error
    finally:
        if connection is not None:
            connection.close()
    elapsed = time.monotonic() - started
    return Response(answer.status, tuple(answer.getheaders()), content, elapsed)


def _open(parts: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    """Connect to the URL's host and port: the only place this package opens an HTTP connection."""
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.connect()
    except BaseException:
        connection.close()  # a failed TLS handshake leaves the plain socket open
        raise
    return connection


def _target(parts: urllib.parse.SplitResult) -> str:
    """The request line's path and query (never the fragment, which is the client's own)."""
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

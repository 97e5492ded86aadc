"""The one HTTP client: ``/status`` probes, the Tomcat manager and warm-up all ask through it.

The standard library's http.client, not requests: it probes 300 nodes in about a
third of the time, which the status table's budget needs. No redirects are
followed and no proxy is used: a node is asked directly, and a 3xx is its answer.
Every connection is opened in `_open` alone: to the URL's host and port, or through
the `Way`'s ``forward`` (a channel over the node's own SSH connection,
`fabfile.cluster.tunnel`); https is verified against the system's CAs or ``ca_bundle``.
"""

from __future__ import annotations

import dataclasses
import enum
import http.client
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping

from ..errors import NodeError


class Failure(enum.Enum):
    """Why an exchange ended without an answer, in the status table's words."""

    TIMEOUT = "timed out"
    REFUSED = "connection refused"
    CLOSED = "connection closed without an answer"
    UNTRUSTED = "certificate not trusted"
    TUNNEL = "not reached through SSH"
    OTHER = "cannot connect"


class TunnelError(ConnectionError):
    """The SSH way to a node's HTTP port failed: its connection, or the forwarded channel."""


# Opens a stream to (host, port) within the timeout, as a socket (`Way.forward`).
Forward = Callable[[str, int, float], socket.socket]


@dataclasses.dataclass(frozen=True)
class Way:
    """How a request reaches its server: directly, or through ``forward``; and the CA
    bundle an https server's certificate is verified against ('' for the system's)."""

    forward: Forward | None = None
    ca_bundle: str = ""


DIRECT = Way()


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
        if self.failure is Failure.UNTRUSTED:
            why = getattr(self.cause, "verify_message", "") or str(self.cause)
            return f"{words} ({why}); set ca_bundle to the CA that signed it"
        if self.failure is Failure.TUNNEL:
            return f"{words} ({self.cause})"
        return words


def _classify(cause: BaseException) -> Failure:
    if isinstance(cause, ssl.SSLCertVerificationError):
        return Failure.UNTRUSTED
    if isinstance(cause, TunnelError):
        return Failure.TUNNEL
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
    way: Way = DIRECT,
) -> Response:
    """Send one request and read its answer; `HttpError` when there is none.

    ``connect_timeout`` bounds opening the connection (TLS included);
    ``read_timeout`` bounds every wait for bytes after that (a socket timeout, so
    a server that keeps sending keeps the exchange alive). ``max_body``: read at
    most that many bytes of the body and ignore the rest (None: all of it). ``way``:
    directly (the default) or forwarded over SSH, and the CAs https trusts.
    """
    parts = urllib.parse.urlsplit(url)
    started = time.monotonic()
    connection: http.client.HTTPConnection | None = None
    try:
        connection = _open(parts, connect_timeout, way)
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


def _open(parts: urllib.parse.SplitResult, timeout: float, way: Way) -> http.client.HTTPConnection:
    """Connect to the URL's host and port, or through ``way.forward`` to them: the only
    place this package opens an HTTP connection."""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=way.ca_bundle or None)
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    if way.forward is not None:
        forward = way.forward
        connection._create_connection = lambda address, timeout, source: forward(  # type: ignore[attr-defined]
            address[0], int(address[1]), timeout
        )
    try:
        connection.connect()
    except BaseException:
        connection.close()  # a failed TLS handshake leaves the plain socket open
        raise
    return connection


def _target(parts: urllib.parse.SplitResult) -> str:
    """The request line's path and query (never the fragment, which is the client's own)."""
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

"""The one HTTP client over real HTTP on loopback: answers, failures, time bounds, and
that probes, warm-up and the Tomcat manager all go through its one `_open`."""

from __future__ import annotations

import ast
import base64
import http.server
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.app.config import NodeConfig
from fabfile.app.credentials import Secret
from fabfile.cluster import http as client
from fabfile.cluster import probe
from fabfile.cluster.manager import Manager
from fabfile.engine import warmup
from fabfile.errors import NodeError
from tests.fakes import node_configs

TIMEOUT = 0.3  # the read timeout of the slow cases: keeps the file fast
TRICKLE = 0.15  # seconds between the bytes of the trickling answer, under TIMEOUT
BIG = 10_000  # bytes of the big answer
RELEASE = threading.Event()  # lets the hanging handlers go when the server stops
SEEN: dict[str, dict[str, str]] = {}  # the request headers each path last received


class Handler(http.server.BaseHTTPRequestHandler):
    """Canned answers and misbehaviours, one per path."""

    def do_GET(self) -> None:  # the name http.server calls
        SEEN[self.path] = dict(self.headers.items())
        if self.path == "/hang":
            RELEASE.wait(5)
        if self.path == "/close":
            return  # closes the connection without a status line
        if self.path == "/garbage":
            self.wfile.write(b"hello\r\n")
            return
        if self.path == "/trickle":
            self._trickle()
            return
        code, body, extra = ANSWERS.get(self.path, (404, b"no such page\n", {}))
        self._answer(code, body, extra)

    def do_PUT(self) -> None:  # the name http.server calls
        length = int(self.headers.get("Content-Length", "0"))
        received = self.rfile.read(length)
        self._answer(200, b"PUT " + received + b" " + self.headers["X-Test"].encode(), {})

    def _answer(self, code: int, body: bytes, extra: dict[str, str]) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the hanging handler): nothing to tell it

    def _trickle(self) -> None:
        body = b"slow!"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(TRICKLE)

    def log_message(self, format: str, *args: object) -> None:
        pass


ANSWERS: dict[str, tuple[int, bytes, dict[str, str]]] = {
    "/ok": (200, b"g:a 1.2.3\n", {"X-Node": "web1"}),
    "/hang": (200, b"g:a 1.2.3\n", {}),
    "/error": (500, b"<h1>Internal Server Error</h1>\n", {}),
    "/moved": (302, b"", {"Location": "/ok"}),
    "/big": (200, bytes(range(256)) * (BIG // 256) + b"x" * (BIG % 256), {}),
    "/manager/text/list": (200, b"OK - Listed applications\n/:running:3:ROOT\n", {}),
}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    RELEASE.clear()
    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        RELEASE.set()
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(
    port: int, path: str, max_body: int | None = None, headers: dict[str, str] | None = None
) -> client.Response:
    """GET ``path`` with a long connect timeout and the short read timeout."""
    url = f"http://127.0.0.1:{port}{path}"
    return client.request(
        "GET", url, headers=headers, connect_timeout=5, read_timeout=TIMEOUT, max_body=max_body
    )


def failure(port: int, path: str) -> client.HttpError:
    with pytest.raises(client.HttpError) as caught:
        get(port, path)
    return caught.value


# -- answers ------------------------------------------------------------------------


def test_a_good_answer_has_status_headers_body_and_time(port: int) -> None:
    response = get(port, "/ok", max_body=4096)
    assert (response.status, response.body, response.text) == (200, b"g:a 1.2.3\n", "g:a 1.2.3\n")
    assert response.header("x-node") == "web1"
    assert response.header("Content-Length") == "10"
    assert response.header("X-Nothing") == ""
    assert 0 < response.elapsed < TIMEOUT


def test_the_headers_given_are_sent(port: int) -> None:
    get(port, "/ok", headers={"Connection": "close", "X-Mine": "yes"})
    assert (SEEN["/ok"]["Connection"], SEEN["/ok"]["X-Mine"]) == ("close", "yes")
    get(port, "/ok")
    assert "X-Mine" not in SEEN["/ok"]


@pytest.mark.parametrize(
    ("path", "asked"), [("/ok?x=1&y=2", "/ok?x=1&y=2"), ("/ok#top", "/ok"), ("", "/")]
)
def test_the_path_and_query_are_asked_never_the_fragment(port: int, path: str, asked: str) -> None:
    SEEN.pop(asked, None)
    get(port, path)
    assert asked in SEEN


def test_a_body_is_sent_with_the_method_given(port: int) -> None:
    url = f"http://127.0.0.1:{port}/echo"
    response = client.request(
        "PUT", url, headers={"X-Test": "t"}, body=b"war bytes", connect_timeout=5, read_timeout=1
    )
    assert (response.status, response.body) == (200, b"PUT war bytes t")


@pytest.mark.parametrize(("path", "code"), [("/error", 500), ("/nowhere", 404)])
def test_a_status_other_than_200_is_an_answer_not_an_error(port: int, path: str, code: int) -> None:
    response = get(port, path)
    assert response.status == code
    assert response.text in ("<h1>Internal Server Error</h1>\n", "no such page\n")


def test_a_redirect_is_not_followed(port: int) -> None:
    SEEN.pop("/ok", None)
    response = get(port, "/moved")
    assert (response.status, response.header("Location"), response.body) == (302, "/ok", b"")
    assert "/ok" not in SEEN  # where it points was never asked


def test_a_body_over_max_body_is_cut_there(port: int) -> None:
    whole = ANSWERS["/big"][1]
    assert len(get(port, "/big").body) == BIG  # no cap: all of it
    assert get(port, "/big", max_body=4096).body == whole[:4096]
    assert get(port, "/big", max_body=BIG + 1).body == whole


def test_a_body_cut_inside_a_character_still_reads_as_text(port: int) -> None:
    response = get(port, "/big", max_body=200)
    assert len(response.text) == 200  # bytes 128..199 are each replaced, not refused
    assert response.text.count("\ufffd") == 72


# -- failures -------------------------------------------------------------------------


def test_a_server_that_hangs_times_out_after_the_read_timeout(port: int) -> None:
    started = time.monotonic()
    error = failure(port, "/hang")
    elapsed = time.monotonic() - started
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 0.5  # the read timeout, not the connect one (5)
    assert (error.failure, error.reason) == (client.Failure.TIMEOUT, "timed out")
    assert isinstance(error.cause, TimeoutError)
    assert str(error) == f"GET http://127.0.0.1:{port}/hang: timed out"


def test_the_read_timeout_bounds_each_wait_not_the_whole_answer(port: int) -> None:
    """As every caller had it: a socket timeout, so bytes that keep coming keep it alive."""
    started = time.monotonic()
    response = get(port, "/trickle")
    elapsed = time.monotonic() - started
    assert response.body == b"slow!"
    assert elapsed > TIMEOUT  # longer than the read timeout, and no error


def test_a_refused_port_is_connection_refused(port: int) -> None:
    closed = closed_port()
    error = failure(closed, "/status")
    assert (error.failure, error.reason) == (client.Failure.REFUSED, "connection refused")
    assert isinstance(error.cause, ConnectionRefusedError)
    assert str(error) == f"GET http://127.0.0.1:{closed}/status: connection refused"
    assert isinstance(error, NodeError)  # one family: the CLI edge can show it


def test_a_server_that_closes_without_answering(port: int) -> None:
    error = failure(port, "/close")
    assert (error.failure, error.reason) == (
        client.Failure.CLOSED,
        "connection closed without an answer",
    )


def test_an_answer_that_is_not_http(port: int) -> None:
    error = failure(port, "/garbage")
    assert error.failure is client.Failure.OTHER
    assert error.reason == "cannot connect (BadStatusLine: hello\r\n)"


# -- the callers, through the one _open ----------------------------------------------


def test_probe_warmup_and_manager_all_open_through_the_one_function(
    tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real = client._open

    def recording(parts: urllib.parse.SplitResult, timeout: float, way: client.Way) -> object:
        opened.append(parts.path)
        return real(parts, timeout, way)

    monkeypatch.setattr(client, "_open", recording)
    node = manager_node(tmp_path, port)
    assert probe.probe(node).describe() == "200 g:a 1.2.3"
    assert warmup.fetch(node) == [f"http://127.0.0.1:{port}/missing: HTTP 404"]
    assert Manager(Secret("pw", "test")).count(node) == 3
    assert opened == ["/ok", "/ok", "/missing", "/manager/text/list"]
    sent = SEEN["/manager/text/list"]["Authorization"]
    assert sent == "Basic " + base64.b64encode(b"deploy:pw").decode()


def manager_node(tmp_path: Path, port: int) -> NodeConfig:
    return node_configs(
        tmp_path,
        "hosts = 127.0.0.1",
        "user = u",
        f"status_url = http://{{host}}:{port}/ok",
        "warmup_urls = /ok, /missing",
        "strategy = parallel",
        "manager_user = deploy",
        "war_path = /t/webapps/ROOT.war",
        "connect_timeout = 1",
        f"status_timeout = {TIMEOUT}",
    )[0]


def test_the_callers_say_a_refused_port_in_their_own_words(tmp_path: Path) -> None:
    closed = closed_port()
    node = manager_node(tmp_path, closed)
    assert probe.probe(node).reason == "connection refused"
    problems = warmup.fetch(node)
    assert problems == [
        f"http://127.0.0.1:{closed}{path}: [Errno 111] Connection refused"
        for path in ("/ok", "/missing")
    ]
    with pytest.raises(NodeError) as caught:
        Manager(Secret("pw", "test")).count(node)
    assert str(caught.value) == (
        f"127.0.0.1: the Tomcat manager at http://127.0.0.1:{closed}/manager/text "
        "does not answer (Connection refused)"
    )


def test_no_other_module_speaks_http() -> None:
    """Everything HTTP goes through fabfile.cluster.http, so SSH forwarding has one place."""
    banned = {"http", "http.client", "urllib.request", "requests", "urllib3"}
    root = Path(__file__).resolve().parents[2] / "fabfile"
    speaking = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "cluster" / "http.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            speaking += [f"{path.relative_to(root)}: {name}" for name in names if name in banned]
    assert speaking == []

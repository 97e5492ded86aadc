"""Asking ``/status`` over real HTTP on loopback: answers, failures and waiting for a version."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.cluster import probe
from fabfile.cluster.probe import Status
from tests.fakes import node_configs

TIMEOUT = 0.3  # status_timeout and ready_timeout: keeps the file fast
SLOW = 1.0  # how long the slow handler sleeps, well over TIMEOUT


class Handler(http.server.BaseHTTPRequestHandler):
    """One canned answer per path."""

    def do_GET(self) -> None:  # the name http.server calls
        if self.path.startswith("/slow"):
            time.sleep(SLOW)
        HITS[self.path] = HITS.get(self.path, 0) + 1
        if self.path == "/down-then-up" and HITS[self.path] == 1:
            code, body = 503, b"restarting\n"
        else:
            code, body = ANSWERS.get(self.path, (404, b"no such page\n"))
        try:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the slow handler): nothing to tell it

    def log_message(self, format: str, *args: object) -> None:
        pass


ANSWERS = {
    "/ok": (200, b"g:a 1.2.3\n"),
    "/error": (500, b"<h1>Internal Server Error</h1>\n  java.lang.OutOfMemoryError:\n heap\n"),
    "/empty-error": (503, b""),
    "/garbage": (200, b"<html>It works!</html>\n"),
    "/facts": (200, b"g:a 1.2.3\npid: 42\nLog-Level: DEBUG \nnot a fact\n"),
    "/slow": (200, b"g:a 1.2.3\n"),
    "/slow-too": (200, b"g:a 1.2.3\n"),
    "/down-then-up": (200, b"g:a 1.2.3\n"),
}
HITS: dict[str, int] = {}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback must be reached directly, whatever the developer's proxy settings."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


def loopback(port: int, path: str, ready_timeout: float = TIMEOUT) -> tuple[str, ...]:
    """``.config`` lines of one node on loopback whose /status is ``path``; short timeouts."""
    return (
        "hosts = 127.0.0.1",
        "user = deployer",
        f"status_url = http://{{host}}:{port}{path}",
        "connect_timeout = 1",
        f"status_timeout = {TIMEOUT}",
        f"ready_timeout = {ready_timeout}",
        "poll_interval = 0.05",
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_good_answer_is_ok(tmp_path: Path, port: int) -> None:
    status = probe.probe(node_configs(tmp_path, *loopback(port, "/ok"))[0])
    assert status.ok
    assert (status.host, status.url) == ("127.0.0.1", f"http://127.0.0.1:{port}/ok")
    assert (status.code, status.coordinates, status.version) == (200, "g:a", "1.2.3")
    assert status.reason == ""
    assert 0 < status.seconds < TIMEOUT
    assert status.describe() == "200 g:a 1.2.3"


def test_a_server_error_shows_the_code_and_a_body_excerpt(tmp_path: Path, port: int) -> None:
    status = probe.probe(node_configs(tmp_path, *loopback(port, "/error"))[0])
    assert not status.ok
    assert status.code == 500
    assert status.reason == (
        "HTTP 500: <h1>Internal Server Error</h1> java.lang.OutOfMemoryError: heap"
    )
    assert status.describe() == status.reason
    assert (status.coordinates, status.version) == ("", "")


def test_an_error_without_a_body_shows_the_code(tmp_path: Path, port: int) -> None:
    status = probe.probe(node_configs(tmp_path, *loopback(port, "/empty-error"))[0])
    assert (status.ok, status.code, status.reason) == (False, 503, "HTTP 503")


def test_a_200_that_is_not_a_status_line_is_not_ok(tmp_path: Path, port: int) -> None:
    status = probe.probe(node_configs(tmp_path, *loopback(port, "/garbage"))[0])
    assert not status.ok
    assert status.code == 200
    assert status.reason.startswith("200 but not 'groupId:artifactId version'")


def test_lines_after_the_status_line_are_facts(tmp_path: Path, port: int) -> None:
    status = probe.probe(node_configs(tmp_path, *loopback(port, "/facts"))[0])
    assert (status.ok, status.coordinates, status.version) == (True, "g:a", "1.2.3")
    assert (status.fact("pid"), status.fact("log-level"), status.fact("started")) == (
        "42",
        "DEBUG",
        "",
    )


def test_a_slow_answer_times_out(tmp_path: Path, port: int) -> None:
    started = time.monotonic()
    status = probe.probe(node_configs(tmp_path, *loopback(port, "/slow"))[0])
    elapsed = time.monotonic() - started
    assert not status.ok
    assert status.reason == "timed out"
    assert status.code is None
    assert TIMEOUT * 0.9 <= elapsed < SLOW


def test_a_probe_the_pool_reached_late_has_that_much_less_time(
    tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounds the probe asks for are what was left (at least 0.05 s), not a whole
    timeout. Read from the request itself: a wall-clock bound this tight fails on a
    loaded machine whatever the probe does."""
    asked: list[tuple[float, float]] = []
    real = probe.http.request

    def request(*args: object, connect_timeout: float, read_timeout: float, **kw: object) -> object:
        asked.append((connect_timeout, read_timeout))
        return real(*args, connect_timeout=connect_timeout, read_timeout=read_timeout, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(probe.http, "request", request)
    node = node_configs(tmp_path, *loopback(port, "/slow"))[0]
    started = time.monotonic()
    status = probe.probe(node, since=started - TIMEOUT * 0.9)  # the fleet's probes began then
    elapsed = time.monotonic() - started
    assert status.reason == "timed out"
    ((connect, read),) = asked
    assert read == pytest.approx(0.05) and connect < 1 - TIMEOUT * 0.8  # connect_timeout 1
    assert elapsed >= 0.04  # it did wait what was left
    unhurried = probe.probe(node)  # reached at once: the whole timeout
    assert unhurried.reason == "timed out" and asked[1][1] == pytest.approx(TIMEOUT)


def test_a_closed_port_is_connection_refused(tmp_path: Path) -> None:
    status = probe.probe(node_configs(tmp_path, *loopback(closed_port(), "/status"))[0])
    assert (status.ok, status.reason, status.code) == (False, "connection refused", None)


def test_probe_all_asks_every_node_at_once(tmp_path: Path, port: int) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    nodes = [
        node_configs(tmp_path / "one", *loopback(port, "/slow"))[0],
        node_configs(tmp_path / "two", *loopback(port, "/slow-too"))[0],
    ]
    started = time.monotonic()
    statuses = probe.probe_all(nodes)
    elapsed = time.monotonic() - started
    assert [s.url.rsplit("/", 1)[1] for s in statuses] == ["slow", "slow-too"]
    assert all(s.reason == "timed out" for s in statuses)
    assert elapsed < 2 * TIMEOUT  # in parallel: the slowest bounds the wait, not the sum


def test_probe_all_says_a_failure_as_soon_as_it_is_seen(tmp_path: Path, port: int) -> None:
    paths = ("/slow", "/error", "/ok")
    for name in paths:
        (tmp_path / name[1:]).mkdir()
    nodes = [node_configs(tmp_path / p[1:], *loopback(port, p))[0] for p in paths]
    started = time.monotonic()
    failures: list[float] = []
    statuses = probe.probe_all(nodes, lambda: failures.append(time.monotonic() - started))
    assert [s.ok for s in statuses] == [False, False, True]
    assert len(failures) == 2  # the 500 and the timeout, not the answer
    assert failures[0] < TIMEOUT / 2  # the 500, while the slow one still runs


def test_probe_all_of_nothing_is_nothing() -> None:
    assert probe.probe_all([]) == []


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> list[Status]:
    """Every status `wait_ready` saw, in order."""
    seen: list[Status] = []
    real = probe.probe

    def recording(*args: object, **kwargs: object) -> Status:
        status = real(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(status)
        return status

    monkeypatch.setattr(probe, "probe", recording)
    return seen


def test_wait_ready_returns_at_once_when_the_version_answers(
    tmp_path: Path, port: int, polls: list[Status]
) -> None:
    started = time.monotonic()
    ready, status, _ = probe.wait_ready(
        node_configs(tmp_path, *loopback(port, "/ok"))[0], "g:a", "1.2.3"
    )
    assert ready
    assert status.version == "1.2.3"
    assert polls == [status]
    assert time.monotonic() - started < TIMEOUT


def test_wait_ready_gives_up_with_the_last_status_when_the_version_never_comes(
    tmp_path: Path, port: int, polls: list[Status]
) -> None:
    started = time.monotonic()
    ready, status, _ = probe.wait_ready(
        node_configs(tmp_path, *loopback(port, "/ok"))[0], "g:a", "1.2.4"
    )
    elapsed = time.monotonic() - started
    assert not ready
    assert status.ok and status.version == "1.2.3"  # the old version still answering
    assert status is polls[-1]
    assert len(polls) >= 2  # it polled, not gave up after one look
    assert TIMEOUT <= elapsed < TIMEOUT + 0.5


def test_wait_ready_that_must_see_the_node_go_down_ignores_the_old_jvm(
    tmp_path: Path, port: int, polls: list[Status]
) -> None:
    ready, status, _ = probe.wait_ready(
        node_configs(tmp_path, *loopback(port, "/ok"))[0], "g:a", "1.2.3", must_go_down=True
    )
    assert not ready  # the right version, but never seen down: may be the old JVM
    assert status.ok and len(polls) >= 2


def test_wait_ready_after_the_node_went_down_accepts_the_version(
    tmp_path: Path, port: int, polls: list[Status]
) -> None:
    ready, status, _ = probe.wait_ready(
        node_configs(tmp_path, *loopback(port, "/down-then-up"))[0],
        "g:a",
        "1.2.3",
        must_go_down=True,
    )
    assert ready and status.version == "1.2.3"
    assert [s.code for s in polls] == [503, 200]


def test_wait_ready_is_bounded_even_when_every_probe_times_out(tmp_path: Path, port: int) -> None:
    started = time.monotonic()
    ready, status, _ = probe.wait_ready(
        node_configs(tmp_path, *loopback(port, "/slow"))[0], "g:a", "1.2.3"
    )
    elapsed = time.monotonic() - started
    assert (ready, status.reason) == (False, "timed out")
    assert elapsed < TIMEOUT + TIMEOUT + 0.5  # ready_timeout plus at most one more probe


def test_wait_ready_against_a_closed_port_says_connection_refused(tmp_path: Path) -> None:
    ready, status, _ = probe.wait_ready(
        node_configs(tmp_path, *loopback(closed_port(), "/status"))[0], "g:a", "1.2.3"
    )
    assert (ready, status.reason) == (False, "connection refused")


def test_wait_ready_gives_up_on_steady_server_errors_after_the_grace_window(
    tmp_path: Path, port: int, polls: list[Status]
) -> None:
    lines = loopback(port, "/error", ready_timeout=30)
    config = node_configs(tmp_path, *lines, "error_grace = 0.3")[0]
    started = time.monotonic()
    ready, status, steady = probe.wait_ready(config, "g:a", "1.2.3")
    elapsed = time.monotonic() - started
    assert (ready, steady, status.code) == (False, True, 500)
    assert 0.3 <= elapsed < 1.5  # the grace window, not the 30 s ready_timeout
    assert len(polls) >= 3


def test_one_server_error_inside_the_grace_window_is_not_a_failure(
    tmp_path: Path, port: int, polls: list[Status]
) -> None:
    config = node_configs(tmp_path, *loopback(port, "/down-then-up"), "error_grace = 5")[0]
    HITS.pop("/down-then-up", None)
    ready, _, steady = probe.wait_ready(config, "g:a", "1.2.3", must_go_down=True)
    assert (ready, steady) == (True, False)
    assert [s.code for s in polls] == [503, 200]

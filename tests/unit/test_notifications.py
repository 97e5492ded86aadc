"""Notifications: the body, its signature, the Slack form, and deliveries that fail."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.app.config import AppConfig
from fabfile.engine import notifications
from fabfile.engine.events import Event, Events, Kind, Verdict
from fabfile.errors import ConfigError
from tests.unit.test_hooks import FACTS


def app_config(
    tmp_path: Path, notify_url: str, notify_timeout: float = 5.0, notify_secret_file: str = ""
) -> AppConfig:
    return dataclasses.replace(
        AppConfig(tmp_path / ".config", "shop", (), "rolling"),
        notify_url=notify_url,
        notify_timeout=notify_timeout,
        notify_secret_file=notify_secret_file,
    )


def test_the_signature_is_githubs() -> None:
    body = b'{"event": "started"}'
    expected = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert notifications.sign("key", body) == f"sha256={expected}"


def test_the_event_as_json() -> None:
    said = Verdict(1, "Failed", "3 of 40 requests failed", ("web1",))
    data = Event(Kind.BATCH, FACTS, verdict=said).to_dict()
    assert data["event"] == "batch" and data["hosts"] == ["web1", "web2"]
    assert data["batch"] == {
        "batch": 1,
        "verdict": "Failed",
        "reasons": "3 of 40 requests failed",
        "hosts": ["web1"],
        "window": "batch",
    }
    json.dumps(data)


def test_the_slack_form_says_it_in_one_line() -> None:
    said = Verdict(1, "Successful", "no errors", ("web1",))
    assert notifications.text(Event(Kind.BATCH, FACTS, verdict=said)) == {
        "text": "shop: batch 1 verdict on 2 node(s) (run 7, by alice): Successful: no errors"
    }
    failed = notifications.text(Event(Kind.FAILED, FACTS, "interrupted", "Ctrl-C"))
    assert (
        failed["text"]
        == "shop: deploy of 1.0.126 interrupted on 2 node(s) (run 7, by alice)\nCtrl-C"
    )


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("hush\n")
    secret.chmod(0o640)
    config = app_config(tmp_path, notify_url="http://127.0.0.1:9/", notify_secret_file=str(secret))
    with pytest.raises(ConfigError, match="chmod 600"):
        notifications.Notifier(config, print)


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback server that accepts and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    finally:
        server.close()


def test_no_answer_within_the_timeout_is_a_warning(tmp_path: Path, silent: str) -> None:
    said: list[str] = []
    config = app_config(tmp_path, notify_url=silent, notify_timeout=0.3)
    events = Events([notifications.Notifier(config, said.append)])
    started = time.monotonic()
    events.emit(Event(Kind.STARTED, FACTS))
    assert time.monotonic() - started < 3
    where = silent.rstrip("/")  # scheme and host: the path is not shown
    assert said == [
        f"warning: notification 'started' to {where} (notify_url) not delivered: timed out "
        "(0.3 s, notify_timeout)"
    ]
    assert events.notes == []


def test_a_secret_in_the_environment_signs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[tuple[str, bytes]] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(body) < length:
                body += conn.recv(65536)
            sig = next(
                line.split(b": ", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"x-deploy-signature")
            )
            got.append((sig.decode(), body))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    monkeypatch.setenv("DEPLOY_SECRET_NOTIFY", "hush")
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    said: list[str] = []
    notifications.Notifier(app_config(tmp_path, notify_url=url), said.append)(
        Event(Kind.FINISHED, FACTS, "ok")
    )
    thread.join(5)
    server.close()
    assert said == []
    sig, body = got[0]
    assert sig == notifications.sign("hush", body)
    assert b"hush" not in body

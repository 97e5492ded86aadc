"""Hooks and notifications on the real sandbox: a real deploy runs the app's [hooks] with
the run's facts in their environment and POSTs its events, signed, to a real local HTTP
receiver."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import cluster
from tests import cli
from tests.real.conftest import BROKEN
from tests.real.helpers import all_on, history, kill_when, override, versions

pytestmark = pytest.mark.real
SECRET = "s3cret-for-the-test"
# each hook writes its environment to HOOK.env in the app directory, and says hello
DUMP = 'env > "$WARDEPLOY_APP_DIR/$WARDEPLOY_HOOK.env"; echo "hello from $WARDEPLOY_HOOK"'
HOOKS = ("pre_deploy", "post_deploy", "on_failure", "post_rollback")


def with_hooks(app_dir: Path, hooks: dict[str, str]) -> None:
    """Add a [hooks] section to the app's .config."""
    config = app_dir / ".config"
    lines = "".join(f"{name} = {command}\n" for name, command in hooks.items())
    config.write_text(config.read_text() + "\n[hooks]\n" + lines)


def with_deploy_keys(app_dir: Path, **keys: str) -> None:
    config = app_dir / ".config"
    lines = "".join(f"{key} = {value}\n" for key, value in keys.items())
    config.write_text(config.read_text().replace("[deploy]\n", "[deploy]\n" + lines, 1))


def broken_release(app_dir: Path, wars: dict[str, Path], sandbox: cluster.Cluster) -> str:
    """The broken WAR in the app directory; it fails on the first node within 2 s."""
    shutil.copy(wars[BROKEN], app_dir)
    override(app_dir, sandbox.addresses[0], error_grace="2")
    return f"search-web-frontend-{BROKEN}.war"


def env_of(app_dir: Path, hook: str) -> dict[str, str]:
    text = (app_dir / f"{hook}.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on loopback: keeps every request (headers, body); answers
    ``status``."""

    def __init__(self, status: int = 204) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/deploy"

    def events(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, body in self.received]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_hooks_get_the_runs_facts_and_their_output_is_shown(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with_hooks(on_125, dict.fromkeys(HOOKS, DUMP))
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 0, result.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert "hook pre_deploy: hello from pre_deploy" in result.out
    assert "hook post_deploy: hello from post_deploy" in result.out
    assert not (on_125 / "on_failure.env").exists()
    assert not (on_125 / "post_rollback.env").exists()
    record = history(on_125)[-1]
    pre, post = env_of(on_125, "pre_deploy"), env_of(on_125, "post_deploy")
    for env in (pre, post):
        assert env["WARDEPLOY_APP"] == "search-web-frontend"
        assert env["WARDEPLOY_ACTION"] == "deploy"
        assert env["WARDEPLOY_VERSION"] == "1.0.126"
        assert env["WARDEPLOY_SHA256"] == record["sha256"]
        assert env["WARDEPLOY_HOSTS"] == ",".join(sandbox.addresses)
        assert env["WARDEPLOY_STRATEGY"] == "rolling"
        assert env["WARDEPLOY_RUN"] == str(len(history(on_125)))
        assert env["WARDEPLOY_PERFORMER"] == record["user"]
    assert (pre["WARDEPLOY_OUTCOME"], post["WARDEPLOY_OUTCOME"]) == ("running", "ok")
    assert float(post["WARDEPLOY_RUNTIME"]) > 0
    assert record["hooks"].startswith("pre_deploy: ok (")
    assert "post_deploy: ok (" in record["hooks"]

    rolled = cli.run(["rollback"], on_125, capsys)
    assert rolled.code == 0, rolled.text
    back = env_of(on_125, "post_rollback")
    assert (back["WARDEPLOY_ACTION"], back["WARDEPLOY_VERSION"]) == ("rollback", "1.0.125")


def test_a_failing_pre_deploy_hook_changes_no_node(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with_hooks(
        on_125,
        {"pre_deploy": 'echo "change freeze until Monday"; exit 3', "on_failure": DUMP},
    )
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 4, result.text
    assert "hook pre_deploy: change freeze until Monday" in result.out
    assert "[hooks] pre_deploy: the hook exited with 3; the run stops, nothing was changed" in (
        result.err
    )
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert not (on_125 / "on_failure.env").exists()  # nothing started, nothing failed
    refused = history(on_125)[-1]
    assert refused["outcome"] == "refused"
    assert "pre_deploy: the hook exited with 3; the run stops" in refused["message"]
    listed = cli.run(["history"], on_125, capsys)
    assert listed.code == 0 and "refused" in listed.out.splitlines()[-1], listed.text
    # the locks were released: the same deploy without the hook goes through at once
    config = on_125 / ".config"
    config.write_text(config.read_text().replace("exit 3", "exit 0"))
    again = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert again.code == 0, again.text


def test_a_hook_past_its_timeout_is_killed(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with_hooks(on_125, {"pre_deploy": "echo waiting; sleep 60", "timeout": "1"})
    started = time.monotonic()
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 4, result.text
    assert time.monotonic() - started < 20
    assert "did not finish within 1 s, [hooks] timeout: killed" in result.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_a_failing_post_deploy_hook_does_not_undo_the_deploy(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with_hooks(on_125, {"post_deploy": "echo tracker down >&2; exit 1", "on_failure": DUMP})
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 0, result.text
    assert "hook post_deploy: tracker down" in result.out
    assert "warning:" in result.out and "the hook exited with 1; the run's outcome" in result.out
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert not (on_125 / "on_failure.env").exists()
    record = history(on_125)[-1]
    assert record["outcome"] == "ok"
    assert "post_deploy: exited with 1" in record["hooks"]


def test_on_failure_hears_a_failed_deploy(
    on_125: Path,
    sandbox: cluster.Cluster,
    wars: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with_hooks(on_125, {"on_failure": DUMP})
    result = cli.run([broken_release(on_125, wars, sandbox)], on_125, capsys)
    assert result.code == 1, result.text
    env = env_of(on_125, "on_failure")
    assert (env["WARDEPLOY_OUTCOME"], env["WARDEPLOY_VERSION"]) == ("failed", BROKEN)
    assert sandbox.addresses[0] in env["WARDEPLOY_MESSAGE"]
    restored = cli.run(["rollback"], on_125, capsys)
    assert restored.code == 0, restored.text


def test_hooks_in_a_config_others_may_write_are_refused(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with_hooks(on_125, {"pre_deploy": DUMP})
    config = on_125 / ".config"
    config.chmod(0o666)
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 3, result.text
    assert f"{config} holds [hooks]" in result.err
    assert "writable by group and others (mode 666)" in result.err
    assert f"chmod go-w {config}" in result.err
    assert not (on_125 / "pre_deploy.env").exists()
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    refused = history(on_125)[-1]  # recorded, with why, as every refusal is
    assert (refused["action"], refused["outcome"]) == ("deploy", "refused")
    assert refused["artifact"] == "search-web-frontend-1.0.126.war"
    assert "writable by group and others (mode 666)" in refused["message"]
    listed = cli.run(["history"], on_125, capsys)
    assert listed.code == 0 and "refused" in listed.out.splitlines()[-1], listed.text


def test_events_are_posted_and_signed(
    on_125: Path,
    sandbox: cluster.Cluster,
    wars: dict[str, Path],
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_file = on_125 / "notify.secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    with_deploy_keys(
        on_125,
        notify_url=receiver.url,
        notify_secret_file=str(secret_file),
        canary="1",
        canary_wait="1",
        canary_min_requests="0",
    )
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 0, result.text
    assert SECRET not in result.text
    events = receiver.events()
    assert [event["event"] for event in events] == ["started", "batch", "batch", "finished"]
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Deploy-Signature"], expected)
        assert headers["Content-Type"] == "application/json"
    started, batch, later, finished = events
    assert started["version"] == "1.0.126" and started["hosts"] == list(sandbox.addresses)
    assert started["run"] == len(history(on_125)) and started["strategy"] == "rolling"
    assert batch["batch"]["verdict"] == "Successful"  # type: ignore[index]
    assert batch["batch"]["hosts"] == [sandbox.addresses[0]]  # type: ignore[index]
    assert batch["batch"]["window"] == "canary"  # type: ignore[index]
    # batch 2/3 judged over its warm-up: every node on the release so far (none after 3/3)
    assert later["batch"]["window"] == "batch" and later["batch"]["batch"] == 2  # type: ignore[index]
    assert later["batch"]["hosts"] == list(sandbox.addresses[:2])  # type: ignore[index]
    assert finished["outcome"] == "ok" and finished["sha256"] == history(on_125)[-1]["sha256"]
    assert SECRET.encode() not in b"".join(body for _, body in receiver.received)
    assert SECRET not in (on_125 / ".config").read_text()

    receiver.received.clear()
    failed = cli.run([broken_release(on_125, wars, sandbox)], on_125, capsys)
    assert failed.code == 1, failed.text
    last = receiver.events()[-1]
    assert (last["event"], last["outcome"], last["version"]) == ("failed", "failed", BROKEN)
    receiver.received.clear()
    rolled = cli.run(["rollback"], on_125, capsys)
    assert rolled.code == 0, rolled.text
    assert receiver.events()[-1]["event"] == "rolled back"


def test_slack_form_and_a_secret_file_others_can_read(
    on_125: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = on_125 / "notify.secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o644)
    with_deploy_keys(
        on_125, notify_url=receiver.url, notify_format="slack", notify_secret_file=str(secret_file)
    )
    refused = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert refused.code == 3, refused.text
    assert f"chmod 600 {secret_file}" in refused.err and not receiver.received
    secret_file.chmod(0o600)
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 0, result.text
    texts = [str(event["text"]) for event in receiver.events()]
    assert texts[0].startswith("search-web-frontend: deploy of 1.0.126 started on 3 node(s)")
    assert texts[-1].startswith("search-web-frontend: deploy of 1.0.126 finished")


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dead_notify_url_does_not_fail_the_deploy(
    on_125: Path, sandbox: cluster.Cluster, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    where = f"http://127.0.0.1:{_dead_port()}"
    url = f"{where}/hooks/T0KEN-IN-THE-PATH"  # as Slack's webhooks carry their secret
    with_deploy_keys(on_125, notify_url=url)
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 0, result.text
    assert (
        f"warning: notification 'started' to {where} (notify_url) not delivered: connection "
        "refused" in result.out
    )
    assert f"warning: notification 'finished' to {where} (notify_url) not delivered" in result.out
    assert "T0KEN-IN-THE-PATH" not in result.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")

    receiver.status = 500  # an answer that is no 2xx: said, not fatal
    config = on_125 / ".config"
    config.write_text(config.read_text().replace(url, receiver.url))
    again = cli.run(["search-web-frontend-1.0.125.war"], on_125, capsys)
    assert again.code == 0, again.text
    assert "not delivered: HTTP 500" in again.out
    assert os.environ.get("DEPLOY_SECRET_NOTIFY") is None  # unsigned: no secret given
    assert all("X-Deploy-Signature" not in headers for headers, _ in receiver.received)


def test_the_outcome_is_recorded_before_a_slow_post_hook_runs(
    on_125: Path, sandbox: cluster.Cluster
) -> None:
    """A coordinator killed while post_deploy runs has recorded its deploy already."""
    pid_file = on_125 / "post_deploy.pid"
    with_hooks(on_125, {"post_deploy": 'echo "$$" > post_deploy.pid; echo sleeping; exec sleep 60'})
    try:
        said = kill_when(
            ["deploy", "search-web-frontend-1.0.126.war"],
            on_125,
            lambda line: "hook post_deploy: sleeping" in line,
        )
    finally:  # the hook outlives the coordinator (its own process group): end it here
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert "hook post_deploy: running" in said
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    record = history(on_125)[-1]
    assert (record["action"], record["outcome"], record["version"]) == ("deploy", "ok", "1.0.126")

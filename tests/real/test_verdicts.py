"""Verdicts after every batch and in the watch window, on the real sandbox under load.

A flaky release (`sandbox.sample`, mode ``flaky``) answers ``/status`` well, so every
node verifies, and fails every fifth request to ``/`` with its own 500 ``flaky build``:
only haproxy's counters show it. The load goes through haproxy to ``/`` and sorts what
it gets: 200, the release's own 500s, and anything else (a refused connection, haproxy's
503 for a server with no room), which would be the tool's fault.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests

from sandbox import cluster, haproxy
from sandbox.sample import build_war
from tests import cli
from tests.real.helpers import all_on, history, versions
from tests.real.test_batches import set_keys

pytestmark = pytest.mark.real
FLAKY = "1.0.190"
SLOW = "1.0.191"


class Load:
    """Two clients through haproxy to ``url`` (its ``/``), each a request every 5 ms at
    most, no cookie kept (so no server is stuck to)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.flaky = 0  # the release's own 500s
        self.tools: list[str] = []  # anything else: what the tool would have caused
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(2)]

    def _client(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                session.cookies.clear()
                try:
                    response = session.get(self.url, timeout=5)
                except requests.RequestException as error:
                    self.tools.append(type(error).__name__)
                else:
                    if response.status_code == 200:
                        self.ok += 1
                    elif response.status_code == 500 and response.text.startswith("flaky build"):
                        self.flaky += 1
                    else:
                        self.tools.append(f"HTTP {response.status_code}")
                time.sleep(0.005)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


@pytest.fixture
def flaky(on_125: Path, tmp_path: Path) -> str:
    """A flaky release's WAR in the app directory (nodes on 1.0.125); its file name."""
    war = build_war(FLAKY, tmp_path / "flaky", artifact_id="search-web-frontend", mode="flaky")
    shutil.copy(war, on_125 / war.name)
    return war.name


def test_a_batch_that_fails_its_users_is_caught_and_rolled_back_in_the_same_run(
    on_125: Path, flaky: str, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(on_125, warmup="4", on_failure="rollback", canary_min_requests="10")
    with Load(haproxy.url(sandbox, "/")) as load:
        result = cli.run([flaky], on_125, capsys)
    assert result.code == 1, result.text
    first = sandbox.addresses[0]
    assert "batch 1/3: Failed: " in result.text and "above max_error_rate (1.0%)" in result.text
    assert "on_failure = rollback; rolled back to the release before" in result.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    deployed, rolled_back = history(on_125)[-2:]
    assert deployed["action"] == "deploy" and deployed["outcome"] == "failed"
    assert deployed["canary"].startswith("batch 1/3: Failed: ")
    assert deployed["hosts"][first]["outcome"] == "deployed"  # verified: /status saw nothing
    assert rolled_back["action"] == "rollback" and rolled_back["outcome"] == "ok"
    assert load.flaky > 0  # the release did fail its users while it served
    assert load.tools == []  # and the tool itself failed no request
    assert load.ok > 100


def test_the_watch_window_catches_what_the_batches_did_not_and_stops(
    on_125: Path, flaky: str, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(on_125, batch="3", watch="8", canary_min_requests="10")  # one batch: no verdict
    with Load(haproxy.url(sandbox, "/")) as load:
        result = cli.run([flaky], on_125, capsys)
    assert result.code == 1, result.text
    assert f"watch: {', '.join(sandbox.addresses)} for 8 s" in result.text
    assert "watch: Failed: " in result.text and "stopped, and they keep serving" in result.text
    assert "deploy rollback" in result.text  # what to run next
    assert versions(sandbox) == all_on(sandbox, FLAKY)  # stop keeps what is there
    last = history(on_125)[-1]
    assert last["outcome"] == "failed" and last["canary"].startswith("watch: Failed: ")
    assert load.flaky > 0
    report = cli.run(["report", "--json"], on_125, capsys)  # the verdict on the timeline
    assert report.code == 0, report.text
    (verdict,) = json.loads(report.out)["verdicts"]
    assert verdict["verdict"].startswith("watch: Failed: ")
    restarted = max(at for _, at in last["hosts"][sandbox.addresses[0]]["phases"])
    assert verdict["at"] >= restarted  # judged after the last batch, not before

    with Load(haproxy.url(sandbox, "/")) as load:
        back = cli.run(["rollback", "--batch", "1"], on_125, capsys)  # batch 3: all out at once
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert load.tools == []


def test_a_batch_that_answers_slowly_is_caught_by_haproxys_response_times(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    war = build_war(SLOW, tmp_path / "slow", artifact_id="search-web-frontend", mode="slow")
    shutil.copy(war, on_125 / war.name)
    set_keys(on_125, warmup="4", canary_min_requests="5")  # on_failure = stop
    with Load(haproxy.url(sandbox, "/")) as load:
        result = cli.run([war.name], on_125, capsys)
    assert result.code == 1, result.text
    first, second, third = sandbox.addresses
    assert "batch 1/3: Failed: " in result.text and "above max_slowdown (3)" in result.text
    assert "stopped, the nodes on it left rotation" in result.text
    assert versions(sandbox) == {first: SLOW, second: "1.0.125", third: "1.0.125"}
    assert load.tools == [] and load.flaky == 0  # slow, not failing: no request failed

    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")

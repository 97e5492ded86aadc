"""Parallel deployment's verdicts on the real stack: after every batch, in the watch
window, and what ``on_failure`` does (two Tomcats behind haproxy, as in test_parallel.py).

A flaky release (`sandbox.sample`, mode ``flaky``) answers ``/status`` well, so every host
verifies it, and fails every fifth request to ``/`` with its own 500 ``flaky build``:
only haproxy's counters show it. The load (`tests.real.test_verdicts.Load`) keeps no
cookie, so every request is a new session: Tomcat sends it to the newest version.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox import app, haproxy
from sandbox.sample import build_war
from tests import cli
from tests.real.helpers import TomcatSandbox as Sandbox
from tests.real.helpers import all_on, history, server_states, verdicts, versions
from tests.real.test_parallel import NEW, OLD, fresh_app, par, set_keys
from tests.real.test_verdicts import Load

pytestmark = pytest.mark.real
FLAKY = "1.0.192"
__all__ = ["par"]  # the Tomcat cluster's fixture, from test_parallel


@pytest.fixture
def app_dir(par: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A parallel app directory with haproxy in its .config; every host runs OLD only."""
    return fresh_app(par, tmp_path, capsys, str(haproxy.socket_path(par.tomcats.cluster)))


@pytest.fixture
def flaky(app_dir: Path, tmp_path: Path) -> str:
    """A flaky release's WAR in the app directory; its file name."""
    war = build_war(
        FLAKY, tmp_path / "flaky", artifact_id=app.APP, container="tomcat", mode="flaky"
    )
    shutil.copy(war, app_dir / war.name)
    return war.name


def test_a_flaky_release_is_caught_and_rolled_back_in_the_same_run(
    par: Sandbox, app_dir: Path, flaky: str, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(app_dir, watch="4", on_failure="rollback", canary_min_requests="10")
    with Load(par.url("/")) as load:
        result = cli.run([flaky], app_dir, capsys)
    assert result.code == 1, result.text
    caught = "batch 1/2: Failed: " in result.text or "watch: Failed: " in result.text
    assert caught and "above max_error_rate (1.0%)" in result.text, result.text
    assert "on_failure = rollback; rolled back to the release before" in result.text
    assert versions(par.tomcats.cluster) == all_on(par.tomcats.cluster, OLD)  # new sessions
    deployed, rolled_back = history(app_dir)[-2:]
    assert deployed["action"] == "deploy" and deployed["outcome"] == "failed"
    assert "Failed: " in verdicts(deployed)
    assert rolled_back["action"] == "rollback" and rolled_back["outcome"] == "ok"
    assert load.flaky > 0  # the release did fail its users while it served
    assert load.tools == []  # and the tool itself failed no request
    assert load.ok > 100


def test_a_good_release_passes_every_verdict_and_they_are_in_the_history(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(app_dir, watch="4", canary_min_requests="10")
    plan = cli.run([par.wars[NEW].name, "--dry-run"], app_dir, capsys)
    assert plan.code == 0, plan.text
    assert (
        "stops at the first failure; after every batch but the last, the nodes on the "
        "release are judged over that batch, from its start to its end" in plan.out
    )
    assert "then every node on the release is watched for 4 s" in plan.out
    with Load(par.url("/")) as load:
        result = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert result.code == 0, result.text
    assert f"watch: {', '.join(par.addresses)} for 4 s" in result.text
    assert versions(par.tomcats.cluster) == all_on(par.tomcats.cluster, NEW)
    said = [text for _, text in history(app_dir)[-1]["verdicts"]]
    assert [text.partition(":")[0] for text in said] == ["batch 1/2", "watch"], said
    for text in said:  # each judged over its own window; too few requests only goes on
        assert text.partition(": ")[2].startswith(("Successful: ", "Inconclusive: ")), said
    assert load.tools == [] and load.flaky == 0


def test_a_failed_canary_has_its_version_undeployed_and_its_host_keeps_serving(
    par: Sandbox, app_dir: Path, flaky: str, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(app_dir, canary="1", canary_wait="4", canary_min_requests="10")  # on_failure = stop
    first = par.addresses[0]
    with Load(par.url("/")) as load:
        result = cli.run([flaky], app_dir, capsys)
    assert result.code == 1, result.text
    assert f"canary {first}: Failed: " in result.text, result.text
    assert f"{first}: ##" in result.text and f"undeployed; {OLD} (##" in result.text
    assert versions(par.tomcats.cluster) == all_on(par.tomcats.cluster, OLD)
    in_pool = [admin for _, _, admin in server_states(par.tomcats.cluster)]
    assert in_pool == ["0", "0"]  # no host was taken out of haproxy: both serve OLD
    assert load.flaky > 0 and load.tools == []

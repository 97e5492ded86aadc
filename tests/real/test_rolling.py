"""The rolling deploy on the real sandbox: status, deploy, rollback, partial, lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fabfile.records.lock import Holder
from sandbox import cluster
from tests import cli
from tests.real.conftest import BROKEN
from tests.real.helpers import all_on, history, override, versions

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parents[2]


def jetty_pid(sandbox: cluster.Cluster, address: str) -> str:
    return (sandbox.home(address) / "run" / "jetty.pid").read_text().strip()


def test_status_lists_every_node(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli.run([], on_125, capsys)
    assert result.code == 0, result.text
    for address in sandbox.addresses:
        line = next(line for line in result.out.splitlines() if address in line)
        assert "Ok" in line
        assert "com.example.search:search-web-frontend" in line
        assert "1.0.125" in line
        assert line.rstrip().endswith("ms")


def test_status_json_for_scripts(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli.run(["--json"], on_125, capsys)
    rows = json.loads(result.out)
    assert [row["host"] for row in rows] == list(sandbox.addresses)
    assert {row["version"] for row in rows} == {"1.0.125"}
    assert all(row["ok"] and not row["drifted"] for row in rows)


def test_status_with_a_node_down(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    down = sandbox.addresses[1]
    cluster.stop_jetty(sandbox, down)
    try:
        started = time.monotonic()
        result = cli.run([], on_125, capsys)
        elapsed = time.monotonic() - started
        assert result.code == 1
        line = next(line for line in result.out.splitlines() if down in line)
        assert "Fail" in line and "connection refused" in line
        others = [a for a in sandbox.addresses if a != down]
        assert all("Ok" in next(x for x in result.out.splitlines() if a in x) for a in others)
        assert elapsed < 5
    finally:
        restored = cli.run(
            ["search-web-frontend-1.0.125.war", "--force", "--hosts", down], on_125, capsys
        )
        assert restored.code == 0, restored.text


def test_deploy_rolls_node_by_node_and_verifies(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 0, result.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    lines = result.out.splitlines()

    def at(address: str, phase: str) -> int:
        return next(i for i, line in enumerate(lines) if address in line and phase in line)

    first, second, third = sandbox.addresses
    assert (
        at(first, "done") < at(second, "installing") < at(second, "done") < at(third, "installing")
    )
    assert max(at(a, "staged") for a in sandbox.addresses) < at(first, "installing")
    entry = history(on_125)[-1]
    assert entry["outcome"] == "ok" and entry["version"] == "1.0.126"
    assert {h["outcome"] for h in entry["hosts"].values()} == {"deployed"}
    # the copies made before the first node's turn (`Node.prepare`) were all taken
    assert not hidden_copies(sandbox)


def hidden_copies(sandbox: cluster.Cluster) -> list[Path]:
    """The temporary copies (`layout.hidden_beside`) left beside the nodes' files."""
    found: list[Path] = []
    for address in sandbox.addresses:
        home = sandbox.home(address)
        for where in (home, home / "jetty-base" / "webapps", home / "jetty-base" / "resources"):
            found += where.glob(".*deploy-new")
    return found


def test_deploy_latest_then_a_noop_redeploy(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(["--latest"], on_125, capsys).code == 0
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    pids = {a: jetty_pid(sandbox, a) for a in sandbox.addresses}
    again = cli.run(["deploy", "--latest"], on_125, capsys)
    assert again.code == 0, again.text
    assert {a: jetty_pid(sandbox, a) for a in sandbox.addresses} == pids
    entry = history(on_125)[-1]
    assert {h["outcome"] for h in entry["hosts"].values()} == {"unchanged"}
    assert sum(h["bytes_sent"] for h in entry["hosts"].values()) == 0


def test_force_restarts_a_node_already_on_the_release(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    node = sandbox.addresses[0]
    before = jetty_pid(sandbox, node)
    result = cli.run(
        ["search-web-frontend-1.0.125.war", "--force", "--hosts", node], on_125, capsys
    )
    assert result.code == 0, result.text
    assert jetty_pid(sandbox, node) != before


def test_broken_war_stops_at_the_first_node(
    on_125: Path,
    sandbox: cluster.Cluster,
    wars: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second, third = sandbox.addresses
    shutil.copy(wars[BROKEN], on_125)
    # A broken release answers 500 for good: it fails after error_grace, not ready_timeout.
    override(on_125, first, ready_timeout="600", error_grace="2")
    result = cli.run([f"search-web-frontend-{BROKEN}.war"], on_125, capsys)
    assert result.code == 1
    assert f"{first}: not verified: " in result.err
    assert f"answered 'HTTP 500: broken build {BROKEN}' steadily for 2 s" in result.err
    assert f"Untouched (still on their old release): {second}, {third}" in result.err
    assert "To roll back: deploy rollback --app-dir" in result.err
    assert versions(sandbox) == {first: "", second: "1.0.125", third: "1.0.125"}
    assert history(on_125)[-1]["outcome"] == "failed"
    assert not hidden_copies(sandbox)  # the copies made for the nodes it did not reach

    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert history(on_125)[-1]["hosts"][first]["bytes_sent"] == 0


def test_without_an_earlier_release_no_rollback_command_is_printed(
    app_dir: Path,
    sandbox: cluster.Cluster,
    wars: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = sandbox.addresses[0]
    for war in app_dir.glob("*.war"):
        war.unlink()
    shutil.copy(wars[BROKEN], app_dir)
    result = cli.run([f"search-web-frontend-{BROKEN}.war", "--hosts", first], app_dir, capsys)
    assert result.code == 1
    assert "There is no earlier release to roll back to" in result.err
    assert "To roll back" not in result.err
    assert cli.run(["rollback"], app_dir, capsys).code != 0  # as the message said
    shutil.copy(wars["1.0.125"], app_dir)
    restored = cli.run(["search-web-frontend-1.0.125.war", "--hosts", first], app_dir, capsys)
    assert restored.code == 0, restored.text


def test_old_version_still_answering_is_a_failed_deploy(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sandbox.addresses[0]
    override(on_125, first, restart="true", ready_timeout="2")
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 1
    assert f"{first}: not verified within 2 s" in result.err
    assert "200 com.example.search:search-web-frontend 1.0.125" in result.err
    assert "expected 200 'com.example.search:search-web-frontend 1.0.126'" in result.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_rollback_sends_no_bytes(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys).code == 0
    result = cli.run(["rollback"], on_125, capsys)
    assert result.code == 0, result.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    entry = history(on_125)[-1]
    assert entry["action"] == "rollback" and entry["version"] == "1.0.125"
    assert [h["bytes_sent"] for h in entry["hosts"].values()] == [0, 0, 0]
    shown = cli.run(["history"], on_125, capsys)
    assert "Version" in shown.out.splitlines()[0]
    rows = [line.split() for line in shown.out.splitlines()[1:]]
    assert [row[2:5] for row in rows[-2:]] == [  # after the run's number and when
        ["deploy", "search-web-frontend-1.0.126.war", "1.0.126"],
        ["rollback", "search-web-frontend-1.0.125.war", "1.0.125"],
    ]
    assert [int(row[0]) for row in rows[-2:]] == [len(history(on_125)) - 1, len(history(on_125))]
    as_json = json.loads(cli.run(["history", "--json", "--limit", "2"], on_125, capsys).out)
    assert [(e["action"], e["version"]) for e in as_json] == [
        ("deploy", "1.0.126"),
        ("rollback", "1.0.125"),
    ]


def test_rollback_without_history_goes_one_version_down(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    (on_125 / ".deploy-history.jsonl").unlink()
    result = cli.run(["rollback"], on_125, capsys)
    assert result.code == 0, result.text
    assert versions(sandbox) == all_on(sandbox, "1.0.124")


def test_partial_deploy_touches_only_the_named_nodes(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    result = cli.run(["search-web-frontend-1.0.126.war", "--hosts", second], on_125, capsys)
    assert result.code == 0, result.text
    assert versions(sandbox) == {first: "1.0.125", second: "1.0.126", third: "1.0.125"}
    status = cli.run(["--hosts", f"{first},{second}"], on_125, capsys)
    assert third not in status.out
    assert "1.0.125 (last deployed: 1.0.126)" in status.out


def test_a_second_deploy_is_refused_while_one_runs(
    on_125: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = Holder.me("deploy other.war")
        lock = Holder(
            holder.pid,
            "alice",
            lock.host,
            "2026-01-01T10:00:00+00:00",
            _start(holder.pid),
            "deploy other.war",
        )
        (on_125 / ".deploy.lock").write_text(json.dumps(lock.__dict__))
        result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
        assert result.code == 5
        assert f"alice@{lock.host} (pid {holder.pid}" in result.err
        assert "since 2026-01-01T10:00:00+00:00" in result.err
    finally:
        holder.kill()
        holder.wait()
    stale = cli.run(["search-web-frontend-1.0.125.war"], on_125, capsys)
    assert stale.code == 0, stale.text
    assert not (on_125 / ".deploy.lock").exists()


def _start(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]


def test_bad_config_is_reported_with_file_line_and_key(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = app_dir / ".config"
    lines = config.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("warmup"))
    lines[number - 1] = "warmup = soon"
    config.write_text("\n".join(lines) + "\n")
    result = cli.run(["search-web-frontend-1.0.126.war"], app_dir, capsys)
    assert result.code == 3
    assert f"{config}:{number}: [deploy] warmup = 'soon': expected a number" in result.err
    refusal = history(app_dir)[-1]
    assert refusal["outcome"] == "refused" and refusal["hosts"] == {}
    assert "warmup" in refusal["message"]


def test_a_strategy_these_settings_cannot_run_is_refused_before_any_node_is_contacted(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    config = on_125 / ".config"  # parallel deploys through Tomcat's manager: no user here
    config.write_text(config.read_text().replace("[deploy]\n", "[deploy]\nstrategy = parallel\n"))
    number = config.read_text().splitlines().index("strategy = parallel") + 1
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 3
    expected = f"{config}:{number}: [deploy] strategy = parallel deploys through the Tomcat manager"
    assert expected in result.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_inv_and_fab_list_the_tasks() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    listed = subprocess.run(["inv", "-l"], cwd=REPO, env=env, capture_output=True, text=True)
    for name in ("status", "deploy", "rollback", "history", "sandbox.up", "sandbox.down"):
        assert f"  {name}" in listed.stdout, listed.stdout + listed.stderr
    fab = subprocess.run(["fab", "-l"], cwd=REPO, env=env, capture_output=True, text=True)
    for name in ("status", "deploy", "rollback", "history"):
        assert f"  {name}" in fab.stdout, fab.stdout + fab.stderr


def test_a_config_change_alone_restarts_and_is_delivered(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    properties = on_125 / "config.properties"
    properties.write_text(properties.read_text().replace("Hello from the sandbox", "Bonjour"))
    pids = {a: jetty_pid(sandbox, a) for a in sandbox.addresses}
    result = cli.run(["search-web-frontend-1.0.125.war"], on_125, capsys)
    assert result.code == 0, result.text
    for address in sandbox.addresses:
        assert jetty_pid(sandbox, address) != pids[address]
        page = requests.get(sandbox.url(address, "/"), timeout=2).text
        assert "Bonjour" in page and "1.0.125" in page


def test_force_with_a_restart_command_that_waits_for_the_new_jvm(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    node = sandbox.addresses[0]
    override(on_125, node, restart="~/bin/jetty-wait restart")
    before = jetty_pid(sandbox, node)
    result = cli.run(
        ["search-web-frontend-1.0.125.war", "--force", "--hosts", node], on_125, capsys
    )
    assert result.code == 0, result.text
    assert jetty_pid(sandbox, node) != before
    assert versions(sandbox)[node] == "1.0.125"


def test_an_install_that_fails_leaves_the_node_as_it_was(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sandbox.addresses[0]
    home = sandbox.home(first)
    properties = (home / "jetty-base" / "resources" / "config.properties").read_text()
    current = (home / "releases" / "search-web-frontend" / "current").read_text()
    override(on_125, first, war_path="/proc/no-such-dir/root.war")
    (on_125 / "config.properties").write_text("greeting=changed\n")
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 1
    # found while staging, before any node's turn, every node still serving (`Node.prepare`):
    # there is nothing to roll back
    assert "preparing the release's files failed; no node was restarted" in result.err
    assert f"{first}: preparing the release's files failed" in result.err
    assert "To roll back" not in result.err
    assert (home / "jetty-base" / "resources" / "config.properties").read_text() == properties
    assert (home / "releases" / "search-web-frontend" / "current").read_text() == current
    assert not hidden_copies(sandbox)
    assert versions(sandbox) == all_on(sandbox, "1.0.125")

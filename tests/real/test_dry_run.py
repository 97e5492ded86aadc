"""Dry runs on the real Jetty cluster: on nodes never deployed to, and of a rollback."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from sandbox import cluster
from tests import cli
from tests.real.helpers import all_on, history, server_states, versions
from tests.real.test_faults import set_key

pytestmark = pytest.mark.real
APP = "search-web-frontend"


def test_a_dry_run_on_nodes_never_deployed_to_reads_their_free_space(
    app_dir: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new user's first command on a cluster: no node has the releases directory yet
    (nor its parent), and the dry run makes none; the space it will be made in counts."""
    fresh = f"fresh-{uuid.uuid4().hex[:8]}"
    set_key(app_dir, "releases_dir", f"~/{fresh}/releases/{{app}}")
    before = versions(sandbox)
    plan = cli.run([f"{APP}-1.0.126.war", "--dry-run"], app_dir, capsys)
    assert plan.code == 0, plan.text
    assert "MiB free" not in plan.text
    for address in sandbox.addresses:
        assert re.search(rf"{re.escape(address)}: install \+ restart; send \d+ file", plan.out)
        assert not (sandbox.home(address) / fresh).exists()  # the dry run made nothing
    assert versions(sandbox) == before and history(app_dir) == []

    deployed = cli.run([f"{APP}-1.0.126.war"], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")


def node_files(sandbox: cluster.Cluster) -> dict[str, list[tuple[str, float]]]:
    """Every file under each node's releases directory, with its mtime."""
    return {
        address: sorted(
            (str(path), path.stat().st_mtime)
            for path in (sandbox.home(address) / "releases").rglob("*")
        )
        for address in sandbox.addresses
    }


def test_a_rollback_dry_run_prints_its_plan_and_changes_nothing(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = cli.run([f"{APP}-1.0.126.war"], on_125, capsys)
    assert deployed.code == 0, deployed.text
    records, states, files = len(history(on_125)), server_states(sandbox), node_files(sandbox)

    plan = cli.run(["rollback", "--dry-run", "--batch", "2"], on_125, capsys)
    assert plan.code == 0, plan.text
    assert (
        f"dry run: rollback from {APP}-1.0.126.war (1.0.126) to {APP}-1.0.125.war (1.0.125) "
        "on 3 node(s), strategy rolling; nothing is changed, no lock is taken" in plan.out
    )
    assert "lock: free" in plan.out
    for address in sandbox.addresses:  # the nodes kept 1.0.125: nothing to send
        assert re.search(
            rf"{re.escape(address)}: install \+ restart; send nothing; now .*1\.0\.126", plan.out
        )
    assert "order: 2 nodes at a time (batch = 2); stops at the first failure" in plan.out
    assert "haproxy: each node that restarts is drained first" in plan.out
    assert "plan: 3 of 3 node(s) change, 3 restart, 0 bytes to send" in plan.out
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert len(history(on_125)) == records and not (on_125 / ".deploy.lock").exists()
    assert server_states(sandbox) == states and node_files(sandbox) == files  # no lock, no mark

    back = cli.run(["rollback"], on_125, capsys)  # the release the plan named
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_a_rollback_dry_run_with_nothing_to_go_back_to_says_so(
    app_dir: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    for war in app_dir.glob("*.war"):  # no history, and no WAR below what the nodes run
        if "1.0.125" not in war.name:
            war.unlink()
    plan = cli.run(["rollback", "--dry-run"], app_dir, capsys)
    assert plan.code != 0 and "no history and no WAR below" in plan.err, plan.text

"""A restart command that exits non-zero releases its claim at once, in a real ``sh``:
the next run does not wait for a restart that never happened."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from fabfile.cluster import restartclaim
from fabfile.cluster.layout import Layout
from fabfile.errors import NodeError
from fabfile.records.lock import Holder
from tests.fakes import node_configs
from tests.unit.helpers import LocalNode, sh

SUDO = "echo 'sudo: a password is required' >&2; exit 1"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "releases" / "shop").mkdir(parents=True)
    return tmp_path


def claim_file(home: Path) -> Path:
    return home / Layout("releases/shop").claim


def record(run: str) -> str:
    return restartclaim.record(Holder.me("deploy shop-1.0.2.war"), run)


def take(home: Path, run: str, restart: str) -> subprocess.CompletedProcess[str]:
    return sh(
        restartclaim.claim_and_restart("~/releases/shop", record(run), 120, "", restart), home
    )


def test_a_restart_that_fails_releases_its_claim_and_keeps_its_exit_code(home: Path) -> None:
    done = take(home, "run-1", SUDO)
    assert done.returncode == 1
    assert done.stderr.strip() == "sudo: a password is required"
    assert not claim_file(home).exists()
    assert restartclaim.released(done.stdout)
    assert restartclaim.own_output(done.stdout) == ""


def test_an_exit_inside_the_restart_command_still_releases_the_claim(home: Path) -> None:
    done = take(home, "run-1", "exit 3")
    assert done.returncode == 3
    assert not claim_file(home).exists() and restartclaim.released(done.stdout)


def test_a_restart_that_succeeds_keeps_its_claim_until_the_jvm_is_verified(home: Path) -> None:
    done = take(home, "run-1", "echo restarting")
    assert done.returncode == 0 and not restartclaim.released(done.stdout)
    assert claim_file(home).exists()
    assert restartclaim.own_output(done.stdout) == "restarting"


def test_a_failing_restart_leaves_a_claim_that_is_no_longer_its_own(home: Path) -> None:
    """Another run took the claim over meanwhile (judged stale): not ours to remove."""
    theirs = f"1.00 999.00 {record('run-2')}"
    done = take(home, "run-1", f"printf '%s\\n' '{theirs}' > releases/shop/restart.claim; exit 1")
    assert done.returncode == 1
    assert claim_file(home).read_text().strip() == theirs


def test_the_node_reports_the_commands_own_stderr_and_the_next_run_does_not_wait(
    tmp_path: Path, home: Path
) -> None:
    config = node_configs(tmp_path, "hosts = web1", "releases_dir = ~/releases/shop")[0]
    node = LocalNode(dataclasses.replace(config, restart=SUDO, ready_timeout=5), home)
    with pytest.raises(NodeError) as caught:
        node.restart(record("run-1"), "run-1")
    message = str(caught.value)
    assert message.startswith("web1: the restart command failed (exit 1): ")
    assert "sudo: a password is required" in message
    assert "restart-claim" not in message  # the claim's own words are not the command's
    assert "its restart claim was released" in message
    found, _ = node.restart_claim()
    assert found is None
    fixed = LocalNode(dataclasses.replace(config, restart="true", ready_timeout=5), home)
    blocked, at = fixed.restart(record("run-2"), "run-2")
    assert blocked is None and at > 0

"""Start-up on the real sandbox: the status table of a calm cluster (real Jetty nodes,
haproxy) loads no SSH and no Invoke, and reads no lock; its fast path prints what the
Invoke program prints; a run that holds the deploy lock, from this
coordinator or another one (a second copy of the app directory), is shown once it has
changed a node; one caught before it changed any is not, and the deploy it blocks says so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fabfile.app import config
from fabfile.cluster.balancer import Admin, Balancer
from sandbox import app, cluster, haproxy
from sandbox.sample import build_war
from tests import cli
from tests.real.helpers import kill_when, second_copy

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parents[2]
WAR = "search-web-frontend-{}.war"
SSH = ("paramiko", "fabric")
# what a calm cluster's table (probes, haproxy, the history) has no use for: thread pools
# of concurrent.futures and their logging, the delivery metrics' statistics, tempfile's
# shutil, rich (piped, as here), difflib, the lock file's secrets and hmac
# (tests/unit/test_startup.py says the same of a test node)
NOT_FOR_STATUS = {
    "concurrent",
    "logging",
    "statistics",
    "tempfile",
    "shutil",
    "rich",
    "difflib",
    "secrets",
    "hmac",
}


def imported(argv: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``deploy ARGV`` as the entry point runs it, under ``python -X importtime``: its
    result and the top-level packages it imported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from fabfile.cli import main; main()", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    return done, {row.split(".")[0] for row in rows}


def test_the_status_of_a_calm_cluster_loads_no_ssh(on_125: Path, sandbox: cluster.Cluster) -> None:
    done, packages = imported([], on_125)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("http://")]
    assert len(rows) == len(sandbox.addresses), done.stdout
    assert all(" Ok " in row and " UP " in row and "1.0.125" in row for row in rows), rows
    assert "lock:" not in done.stdout
    assert not packages & {*SSH, "matplotlib", "invoke"}, sorted(packages)  # the fast path
    assert not packages & NOT_FOR_STATUS, sorted(packages)
    for argv in (["--version"], ["--help"]):
        done, packages = imported(argv, on_125)
        assert done.returncode == 0, done.stderr
        assert not packages & {*SSH, "matplotlib"}, (argv, sorted(packages))


def _steady(text: str) -> str:
    """What differs between two runs: the response times (and so the width of their
    column, the last one)."""
    text = re.sub(r"\b\d+ ms\b", "N ms", text)
    text = re.sub(r'"seconds": [0-9.e-]+', '"seconds": N', text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def test_the_fast_path_prints_what_the_program_prints(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    second = sandbox.addresses[1]
    node = next(n for n in config.load(on_125 / ".config").nodes if n.host == second)
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    argvs: tuple[list[str], ...] = (
        [],
        ["--json"],
        ["status", "-H", second],
        ["--hosts", "nope"],
        ["--lb", "x"],
    )
    seen = []
    for out_of_rotation in (False, True):
        if out_of_rotation:  # exit 1, and who took it out is read over SSH
            balancer.set_state(node, Admin.MAINT)
        try:
            for argv in argvs:
                fast = cli.run(argv, on_125, capsys)
                program = cli.run(argv, on_125, capsys, program=True)
                shown = (fast.code, _steady(fast.out), _steady(fast.err))
                assert shown == (program.code, _steady(program.out), _steady(program.err))
                seen.append(shown)
        finally:
            balancer.ready(node)
    assert [code for code, _, _ in seen] == [0, 0, 0, 2, 2, 1, 1, 1, 2, 2], seen
    assert "MAINT in haproxy, not taken out by deploy" in seen[5][1], seen[5]


def test_status_shows_the_lock_of_another_coordinators_run_once_it_changed_a_node(
    on_125: Path, sandbox: cluster.Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = second_copy(on_125, tmp_path)
    second = sandbox.addresses[1]
    kill_when(
        ["deploy", WAR.format("1.0.126")], on_125, lambda t: second in t and "restarting" in t
    )
    shown = cli.run([], other, capsys)  # its history knows nothing of that run
    held = f"lock: held on {', '.join(sandbox.addresses)} by "
    assert held in shown.out and "`deploy " in shown.out, shown.text
    assert "1.0.126" in shown.out and "1.0.125" in shown.out, shown.out  # why it was read


def test_a_lock_taken_before_any_node_changed_is_not_read_by_status_but_stops_the_deploy(
    on_125: Path, sandbox: cluster.Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # bytes no node has staged (an earlier test on the session's nodes may have staged
    # the shared 1.0.126), and enough of them that the kill lands while they go
    build_war("1.0.126", on_125, artifact_id=app.APP, pad_mb=16)
    other = second_copy(on_125, tmp_path)
    kill_when(["deploy", WAR.format("1.0.126")], on_125, lambda text: " staging " in text)
    calm = cli.run([], other, capsys)
    assert calm.code == 0 and "lock:" not in calm.out, calm.text  # nothing shows it here
    refused = cli.run([WAR.format("1.0.126")], other, capsys)
    assert refused.code == 5, refused.text
    assert "error: the deploy lock is held on " in refused.err, refused.err
    assert f"`deploy {WAR.format('1.0.126')} " in refused.err, refused.err
    ours = cli.run([], on_125, capsys)  # the coordinator of that run: its history says so
    held = f"lock: held on {', '.join(sandbox.addresses)} by "
    assert held in ours.out and "was cut off in phase" in ours.out, ours.text

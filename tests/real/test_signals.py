"""SIGTERM and SIGHUP sent to a real ``deploy`` process stop it as Ctrl-C does: within
2 s, with the signal's exit code, the run recorded as interrupted by it, status telling
the truth, and the same command run again finishing. On the real sandbox: mid-staging
(a fan-out phase, one node's upload hung by a partition so only the signal can end it)
and mid-restart (the restart command still running on the node); and the SIGHUP of a
terminal that closes under a running deploy.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox import app, cluster
from sandbox.sample import build_war
from tests import cli
from tests.real import helpers
from tests.real.helpers import all_on, history, override, versions
from tests.real.test_faults import wait_all_answer
from tests.real.test_partition import partition

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"
SIGNALS = [(signal.SIGTERM, 143), (signal.SIGHUP, 129)]


def signal_when(
    app_dir: Path, number: int, when: Callable[[str], bool], before: Callable[[], None]
) -> tuple[int, float, str]:
    """Run ``deploy WAR``; at the first output line ``when`` accepts, call ``before`` and
    send ``number``. The exit code, the seconds from the signal to the exit, the output."""
    return helpers.signal_when(["deploy", WAR], app_dir, number, when, before)


@pytest.mark.parametrize(("number", "code"), SIGNALS)
def test_a_signal_mid_staging_ends_the_hung_uploads_within_2_s(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    number: signal.Signals,
    code: int,
) -> None:
    first, silent, third = sandbox.addresses
    build_war("1.0.126", on_125, artifact_id=app.APP, pad_mb=64)  # staging takes a while
    with partition(silent) as cut:
        exited, took, told = signal_when(
            on_125, number, lambda line: silent in line and "  staging  " in line, cut
        )
        assert exited == code, told
        assert took < 2.0, (took, told)
        assert f"in phase 'staging' by {number.name}" in told
        entry = history(on_125)[-1]
        assert entry["outcome"] == "interrupted", entry
        assert f"in phase 'staging' by {number.name}" in entry["message"], entry["message"]
        assert {h["outcome"] for h in entry["hosts"].values()} == {"untouched"}
    status = cli.run([], on_125, capsys)  # truthful: every node on its release, in rotation
    assert status.code == 0, status.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    again = cli.run([WAR], on_125, capsys)
    assert again.code == 0, again.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    for address in (first, silent, third):
        blobs = sandbox.home(address) / "releases" / app.APP / "blobs"
        assert not list(blobs.glob("*.part")), address


def began_in(marker: Path) -> Callable[[], None]:
    """A wait (bounded) until the node's restart command has created ``marker``."""

    def wait() -> None:
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the restart command did not start"

    return wait


@pytest.mark.parametrize(("number", "code"), SIGNALS)
def test_a_signal_mid_restart_stops_within_2_s_and_leaves_the_node_drained(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    number: signal.Signals,
    code: int,
) -> None:
    """The second node's restart command is running (it waits 2 s on the node before
    it restarts Jetty) when the signal comes."""
    first, second, third = sandbox.addresses
    config = (on_125 / ".config").read_text()
    began = sandbox.home(second) / "restart-began"
    began.unlink(missing_ok=True)
    override(on_125, second, restart="touch ~/restart-began; sleep 2; ~/bin/jetty restart")
    exited, took, told = signal_when(
        on_125, number, lambda line: second in line and "  restarting" in line, began_in(began)
    )
    assert exited == code, told
    assert took < 2.0, (took, told)
    entry = history(on_125)[-1]
    assert entry["outcome"] == "interrupted", entry
    message = entry["message"]
    assert f"interrupted at node {second} in phase 'restarting' by {number.name}" in message
    assert f"{second} is left in drain in haproxy" in message
    outcomes = {h: r["outcome"] for h, r in entry["hosts"].items()}
    assert outcomes == {first: "deployed", second: "interrupted", third: "untouched"}
    (on_125 / ".config").write_text(config)
    wait_all_answer(sandbox)  # the restart command goes on on the node, and ends
    status = cli.run([], on_125, capsys)  # truthful: the node is out of rotation
    assert status.code == 1, status.text
    assert " DRAIN " in next(ln for ln in status.out.splitlines() if second in ln), status.out
    again = cli.run([WAR], on_125, capsys)
    assert again.code == 0, again.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert cli.run([], on_125, capsys).code == 0


def test_a_closed_terminal_is_a_sighup_and_the_run_is_recorded(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real thing: ``deploy`` on a terminal (a pty, its controlling terminal) that
    closes mid-restart, as when the SSH session to the coordinator drops. The kernel
    sends SIGHUP; every write to the terminal fails from then on, the last progress
    frame included, and the run must still clean up, be recorded and exit 129."""
    second = sandbox.addresses[1]
    config = (on_125 / ".config").read_text()
    began = sandbox.home(second) / "restart-began"
    began.unlink(missing_ok=True)
    override(on_125, second, restart="touch ~/restart-began; sleep 2; ~/bin/jetty restart")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        ["deploy", WAR],
        cwd=on_125,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,  # a session of its own, the pty its controlling terminal
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(follower)
    try:
        began_in(began)()
        while select.select([leader], [], [], 0.1)[0]:
            os.read(leader, 65536)  # what the terminal showed: the live table
        os.close(leader)  # the terminal is gone
        closed = time.monotonic()
        code = process.wait(timeout=30)
        took = time.monotonic() - closed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (code, took < 2.0) == (129, True), took
    entry = history(on_125)[-1]
    assert entry["outcome"] == "interrupted", entry
    assert f"interrupted at node {second} in phase 'restarting' by SIGHUP" in entry["message"]
    assert f"{second} is left in drain in haproxy" in entry["message"]
    (on_125 / ".config").write_text(config)
    wait_all_answer(sandbox)
    again = cli.run([WAR], on_125, capsys)
    assert again.code == 0, again.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")

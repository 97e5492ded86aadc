"""A node that goes silent mid-step fails within a bounded time, named with what it was
doing; the other nodes keep serving. On the real sandbox, with a real partition: an
iptables rule made by the test drops every packet to one node's sshd (loopback only),
mid-staging and mid-restart, and is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from fabfile.cluster.balancer import Balancer
from fabfile.engine.phase import Phase
from sandbox import app, cluster, haproxy
from sandbox.sample import build_war
from tests import cli
from tests.real.helpers import all_on, history, override, versions
from tests.real.test_faults import _node, fresh_war, on_phase, set_key, wait_all_answer

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"


@contextlib.contextmanager
def partition(address: str, port: int = 22) -> Iterator[Callable[[], None]]:
    """A function that makes ``address:port`` silent (every packet to it and from it
    dropped, as a network partition does), undone when the block ends, failed or not.
    On loopback both directions go through OUTPUT."""
    if shutil.which("iptables") is None:
        pytest.skip("iptables is not installed (scripts/install.sh installs it)")
    assert address.startswith("127."), "partitions stay on loopback"
    rules = [
        ["OUTPUT", "-d", address, "-p", "tcp", "--dport", str(port), "-j", "DROP"],
        ["OUTPUT", "-s", address, "-p", "tcp", "--sport", str(port), "-j", "DROP"],
    ]
    made: list[list[str]] = []

    def cut() -> None:
        for rule in rules:
            subprocess.run(["iptables", "-w", "-I", *rule], check=True)
            made.append(rule)

    try:
        yield cut
    finally:
        for rule in made:
            subprocess.run(["iptables", "-w", "-D", *rule], check=True)
    for rule in rules:
        left = subprocess.run(["iptables", "-w", "-C", *rule], capture_output=True)
        assert left.returncode != 0, f"the partition was not undone: {rule}"


def haproxy_states(sandbox: cluster.Cluster, app_dir: Path) -> dict[str, str]:
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    return {a: balancer.row(_node(app_dir, a))["status"].split()[0] for a in sandbox.addresses}


def test_a_node_silent_as_staging_starts_fails_at_the_transfer_deadline(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cut as its staging starts: the channel for the upload is never opened, and the
    upload's deadline (shorter here than connect_timeout's) ends the wait."""
    silent = sandbox.addresses[1]
    set_key(on_125, "command_timeout", "3")
    set_key(on_125, "connect_timeout", "10")
    war = fresh_war(on_125)
    size = (on_125 / war).stat().st_size
    bound = math.ceil(3 + size / (256 * 1024))  # command_timeout + the WAR at 256 KiB/s
    with partition(silent) as cut:
        on_phase(monkeypatch, silent, Phase.STAGING, cut)
        started = time.monotonic()
        result = cli.run([war], on_125, capsys)
        took = time.monotonic() - started
        assert result.code == 1, result.text
        assert took < bound + 3, (took, result.text)
        assert "staging failed; no node was restarted" in result.err
        assert (
            f"{silent}: no answer within {bound} s (command_timeout + its size at "
            f"min_transfer_kib) while uploading {war} ({size // 1024} KiB); the node or the "
            "network to it went silent"
        ) in result.err
        assert_left_serving(sandbox, on_125)
    monkeypatch.undo()
    assert_finished_again(sandbox, on_125, war, capsys)


def test_a_node_silent_mid_upload_is_dropped_by_its_keepalives(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cut once a MiB of the WAR is on the node: keepalives every 1 s, dead after 3."""
    silent = sandbox.addresses[1]
    set_key(on_125, "ssh_keepalive", "1")
    war = build_war("1.0.126", on_125, artifact_id=app.APP, pad_mb=64).name
    part = sandbox.home(silent) / "releases" / app.APP / "blobs"
    with partition(silent) as cut:
        made: list[float] = []  # when the link was cut
        watcher = threading.Thread(target=lambda: made.extend(cut_when_sent(part, cut)))
        on_phase(monkeypatch, silent, Phase.STAGING, watcher.start)
        result = cli.run([war], on_125, capsys)
        ended = time.monotonic()
        watcher.join()
        assert made, f"the upload ended before the cut: {result.text}"
        assert result.code == 1, result.text
        assert ended - made[0] < 1 + 3 + 2, result.text  # a keepalive, 3 x 1 s, slack
        assert "staging failed; no node was restarted" in result.err
        assert f"{silent}: no answer within " in result.err
        assert (
            "(its connection dropped as dead: nothing acknowledged for 3 x ssh_keepalive = "
            f"3 x 1 s) while uploading {war}"
        ) in result.err
        assert_left_serving(sandbox, on_125)
    monkeypatch.undo()
    assert_finished_again(sandbox, on_125, war, capsys)


def cut_when_sent(blobs: Path, cut: Callable[[], None], at_least: int = 1 << 20) -> list[float]:
    """Cut the link once a partial upload in ``blobs`` holds ``at_least`` bytes; when
    (none: the upload was over first)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # renamed or removed meanwhile
            if any(p.stat().st_size >= at_least for p in blobs.glob("*.part")):
                cut()
                return [time.monotonic()]
        time.sleep(0.002)
    return []


def cut_when_made(marker: Path, cut: Callable[[], None]) -> list[float]:
    """Cut the link once the node has made ``marker``; when (none: it never did)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if marker.exists():
            cut()
            return [time.monotonic()]
        time.sleep(0.002)
    return []


def assert_left_serving(sandbox: cluster.Cluster, app_dir: Path) -> None:
    """Staging failed: every node runs and serves what it ran, the run is recorded."""
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert haproxy_states(sandbox, app_dir) == all_on(sandbox, "UP")
    entry = history(app_dir)[-1]
    assert entry["outcome"] == "failed"
    assert {h["outcome"] for h in entry["hosts"].values()} == {"untouched"}


def assert_finished_again(
    sandbox: cluster.Cluster, app_dir: Path, war: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the node answers again, the same command finishes, leaving no partial file."""
    again = cli.run([war], app_dir, capsys)
    assert again.code == 0, again.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    for address in sandbox.addresses:
        blobs = sandbox.home(address) / "releases" / app.APP / "blobs"
        assert not list(blobs.glob("*.part")), address


def test_a_node_silent_mid_restart_is_dropped_by_its_keepalives(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The restart command is running on the node (it waits 2 s there before it
    restarts Jetty) when the node goes silent: with ready_timeout at 60 s, the
    keepalives (every 1 s, dead after 3) end the step within about 4 s."""
    first, silent, third = sandbox.addresses
    set_key(on_125, "ssh_keepalive", "1")
    set_key(on_125, "ready_timeout", "60")
    config = (on_125 / ".config").read_text()
    began = sandbox.home(silent) / "restart-began"
    began.unlink(missing_ok=True)
    override(on_125, silent, restart="touch ~/restart-began; sleep 2; ~/bin/jetty restart")
    with partition(silent) as cut:
        made: list[float] = []  # when the link was cut
        watcher = threading.Thread(target=lambda: made.extend(cut_when_made(began, cut)))
        on_phase(monkeypatch, silent, Phase.RESTARTING, watcher.start)
        result = cli.run([WAR], on_125, capsys)
        ended = time.monotonic()
        watcher.join()
        assert made, f"the restart command did not start: {result.text}"
        assert result.code == 1, result.text
        assert ended - made[0] < 1 + 3 + 2, result.text  # a keepalive, 3 x 1 s, slack
        assert f"{silent}: no answer within " in result.err
        assert (
            "(its connection dropped as dead: nothing acknowledged for 3 x ssh_keepalive = "
            "3 x 1 s) while running the restart command"
        ) in result.err
        assert f"{silent} is left in maintenance in haproxy" in result.err
        assert f"Untouched (still on their old release): {third}" in result.err
        found = wait_all_answer(sandbox)
        assert (found[first], found[third]) == ("1.0.126", "1.0.125")
        states = haproxy_states(sandbox, on_125)
        assert (states[first], states[silent], states[third]) == ("UP", "MAINT", "UP")
        assert history(on_125)[-1]["hosts"][silent]["outcome"] == "failed"
    monkeypatch.undo()
    (on_125 / ".config").write_text(config)  # its own restart command again
    again = cli.run([WAR], on_125, capsys)
    assert again.code == 0, again.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert haproxy_states(sandbox, on_125) == all_on(sandbox, "UP")


def test_a_session_cut_off_by_a_partition_ends_with_its_sshd(
    sandbox: cluster.Cluster, bastion: tuple[str, str], tmp_path: Path
) -> None:
    """A client that vanished behind a partition (its reset dropped) leaves its sshd
    session waiting for ever, its title no longer naming the sandbox: stopping that
    sshd (`cluster.stop_bastion`, `cluster.down`) must end the session too, or it
    outlives the tests. Here on the bastion, an sshd of its own."""
    address, line = bastion
    log = str(sandbox.home(address) / "sshd.log")
    before = _writing_to(log)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(line)
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.connect(
        address, username="root", key_filename=str(sandbox.key), look_for_keys=False,
        allow_agent=False, timeout=10,
    )  # fmt: skip
    _, out, _ = client.exec_command("echo up")
    assert out.read() == b"up\n" and out.channel.recv_exit_status() == 0
    time.sleep(0.5)  # the channel's close, sent and acknowledged: nothing is in flight
    transport = client.get_transport()
    assert transport is not None and transport.sock is not None
    with partition(address) as cut:
        cut()
        linger = struct.pack("ii", 1, 0)  # close with a reset, which the partition drops
        transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)  # type: ignore[union-attr]
        client.close()
        transport.join(5)  # its reader thread holds the socket until it ends: then the reset
        assert not transport.is_alive()
    time.sleep(1)
    sessions = [pid for pid in _writing_to(log) if pid not in before]
    assert sessions, "the cut-off session ended by itself: this test no longer tests it"
    stopped = cluster.stop_bastion(sandbox, address)
    assert set(sessions) <= set(stopped)
    assert not [pid for pid in sessions if cluster.alive(pid)], sessions


def _writing_to(log: str) -> list[int]:
    """PIDs whose stderr is ``log``: an sshd's tini, listener and sessions."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "fd" / "2") == log:
                    found.append(int(entry.name))
    return found

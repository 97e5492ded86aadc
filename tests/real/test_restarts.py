"""One restart at a time per node, and a stray JVM named when it holds the port.

Both on the real sandbox: the sandbox's restart command returns at once
(``setsid jetty.sh restart &``), like many real ones, so a deploy interrupted
right after it leaves a restart under way on the node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fabfile.engine.phase import Phase
from sandbox import cluster
from sandbox.cluster import JETTY_HOME
from tests import cli
from tests.real.helpers import versions
from tests.real.test_faults import on_phase

pytestmark = pytest.mark.real
WARS = ("search-web-frontend-1.0.126.war", "search-web-frontend-1.0.125.war")


def jetty_log(sandbox: cluster.Cluster, address: str) -> str:
    """The end of what jetty.sh printed on the node: when each stop and start ran."""
    log = sandbox.home(address) / "jetty-base" / "logs" / "jetty-sh.log"
    return "\n".join(log.read_text(errors="replace").splitlines()[-12:])


def settled_jvms(sandbox: cluster.Cluster, address: str, timeout: float = 15) -> list[int]:
    """The node's JVMs once no jetty.sh is between stop and start (bounded)."""
    deadline = time.monotonic() + timeout
    found = cluster.jvms(sandbox, address)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = cluster.jvms(sandbox, address)
        if again == found and len(found) == 1:
            return found
        found = again
    return found


class Overlaps(threading.Thread):
    """Samples one node every 20 ms: the most ``jetty.sh stop`` runs and JVMs at once."""

    def __init__(self, sandbox: cluster.Cluster, address: str) -> None:
        super().__init__(daemon=True)
        self.sandbox, self.address = sandbox, address
        self.stops: list[int] = []
        self.jvms: list[int] = []
        self.seen: list[str] = []  # what each overlap looked like, for the failure message
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            stops = cluster.jetty_stops(self.sandbox, self.address)
            jvms = cluster.jvms(self.sandbox, self.address)
            if len(stops) > 1 or len(jvms) > 1:
                self.seen.append(f"{time.strftime('%T')} {_describe(stops + jvms)}")
            self.stops = max(self.stops, stops, key=len)
            self.jvms = max(self.jvms, jvms, key=len)
            time.sleep(0.02)

    def __enter__(self) -> Overlaps:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def _describe(pids: list[int]) -> str:
    """Each process's state, parent and start (seconds since boot), from /proc."""
    parts = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            parts.append(f"{pid}:{fields[0]} ppid {fields[1]} start {int(fields[19]) / 100:.2f}")
        except (OSError, IndexError, ValueError):
            parts.append(f"{pid}:gone")
    return ", ".join(parts)


def test_a_deploy_interrupted_after_its_restart_then_run_again_never_overlaps(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = sandbox.addresses[0]
    pid_file = sandbox.home(host) / "run" / "jetty.pid"
    for attempt in range(10):
        war = WARS[attempt % 2]
        with Overlaps(sandbox, host) as seen:
            on_phase(monkeypatch, host, Phase.WAITING, lambda: os.kill(os.getpid(), signal.SIGINT))
            interrupted = cli.run([war, "--hosts", host, "--force"], on_125, capsys)
            assert interrupted.code == 130, interrupted.text
            monkeypatch.undo()
            again = cli.run([war, "--hosts", host, "--force"], on_125, capsys)
            assert again.code == 0, (attempt, again.text)
            jvms = settled_jvms(sandbox, host)
        told = f"{interrupted.text}\n{again.text}\n{jetty_log(sandbox, host)}\n" + "\n".join(
            seen.seen
        )
        if len(seen.stops) > 1 or len(seen.jvms) > 1:
            print(told)  # in full: pytest shortens the assertion's message
        assert len(seen.stops) <= 1, (attempt, "restarts overlapped", seen.stops, told)
        assert len(seen.jvms) <= 1, (attempt, "two JVMs at once", seen.jvms, told)
        assert jvms == [int(pid_file.read_text())], (attempt, jvms)
        assert versions(sandbox)[host] == war.rsplit("-", 1)[1].removesuffix(".war")


def test_a_restart_under_way_is_waited_for_and_said(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = sandbox.addresses[1]
    on_phase(monkeypatch, host, Phase.WAITING, lambda: os.kill(os.getpid(), signal.SIGINT))
    assert cli.run([WARS[0], "--hosts", host], on_125, capsys).code == 130
    monkeypatch.undo()
    again = cli.run([WARS[0], "--hosts", host], on_125, capsys)
    assert again.code == 0, again.text
    assert f"{host}: a restart started " in again.out
    assert "is still under way; waiting until it is over" in again.out
    claim = sandbox.home(host) / "releases" / "search-web-frontend" / "restart.claim"
    assert not claim.exists()  # judged over and cleared, or released after verification
    assert settled_jvms(sandbox, host) == [int((sandbox.home(host) / "run/jetty.pid").read_text())]


def start_stray(sandbox: cluster.Cluster, address: str, run_dir: Path) -> int:
    """A Jetty for the node that its PID file does not know (its own run directory)."""
    home = sandbox.home(address)
    run_dir.mkdir()
    environment = {
        **os.environ,
        "HOME": str(home),
        "JETTY_HOME": str(JETTY_HOME),
        "JETTY_BASE": str(home / "jetty-base"),
        "JETTY_RUN": str(run_dir),
    }
    subprocess.run(
        ["setsid", f"{JETTY_HOME}/bin/jetty.sh", "start"],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    pid = int((run_dir / "jetty.pid").read_text())
    deadline = time.monotonic() + 20
    while versions(sandbox)[address] != "1.0.125" and time.monotonic() < deadline:
        time.sleep(0.1)
    return pid


def test_a_stray_jvm_holding_the_status_port_is_named_with_what_to_do(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    host = sandbox.addresses[2]
    cluster.stop_jetty(sandbox, host)
    stray = start_stray(sandbox, host, tmp_path / "stray-run")
    try:
        result = cli.run([WARS[0], "--hosts", host], on_125, capsys)
        assert result.code == 1
        assert "answered '200 com.example.search:search-web-frontend 1.0.125'" in result.err
        assert f"port 8080 on {host} is held by java pid {stray}, started " in result.err
        assert "which the container's PID file ~/run/jetty.pid does not know" in result.err
        assert f"stop it (kill {stray}), then run: deploy {WARS[0]} --app-dir " in result.err
    finally:
        cluster.stop_pid_file(tmp_path / "stray-run" / "jetty.pid", settle=0)
    fixed = cli.run([WARS[0], "--hosts", host, "--force"], on_125, capsys)
    assert fixed.code == 0, fixed.text
    assert settled_jvms(sandbox, host) == [int((sandbox.home(host) / "run/jetty.pid").read_text())]

"""Who holds a node's status port: the script in a real sh, the parsing, the words."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fabfile.cluster import portowner
from fabfile.cluster.portowner import Listener, PortReport

SS = """listener [::ffff:127.0.0.3]:8080 4711 1000.50 java
listener [::ffff:127.0.0.4]:8080 4800 1200.00 java
listener *:8080 4900 900.00 java
listener 127.0.0.9:8080 garbage
pidfile 4800
uptime 1300.00
clock 1800000000
"""


def test_parse_keeps_the_nodes_own_and_wildcard_listeners() -> None:
    report = portowner.parse(SS, 8080, "~/run/jetty.pid", "127.0.0.3")
    assert [(item.address, item.pid) for item in report.listeners] == [
        ("127.0.0.3", 4711),
        ("*", 4900),
    ]
    assert report.pid_file_names == 4800
    assert (report.uptime, report.clock) == (1300.0, 1_800_000_000.0)


def test_an_unknown_jvm_is_named_with_what_to_do() -> None:
    report = portowner.parse(SS, 8080, "~/run/jetty.pid", "127.0.0.3")
    text = portowner.explain(report, "web3", None, "deploy app-2.war")
    first = text.split("; ")[0]
    wall = report.wall(1000.5)
    assert first == (
        f"port 8080 on web3 is held by java pid 4711, started {wall}, which the container's "
        "PID file ~/run/jetty.pid does not know (it names 4800)"
    )
    assert "stop it (kill 4711), then run: deploy app-2.war" in text


def test_the_managed_jvm_that_outlived_its_restart_is_named_too() -> None:
    known = PortReport(8080, (Listener("*", 4800, 50.0, "java"),), "/run/j.pid", 4800, 300, 1e9)
    text = portowner.explain(known, "web3", 120.0, "deploy x.war")
    assert "before the restart at" in text and "check 'restart' in .config" in text


def test_nothing_listening_says_so() -> None:
    empty = PortReport(8080, (), "", None, 10.0, 1e9)
    assert "nothing on web3 was seen listening on port 8080" in portowner.explain(
        empty, "web3", None, "deploy"
    )


def test_the_script_runs_in_a_real_sh(tmp_path: Path) -> None:
    (tmp_path / "jetty.pid").write_text("12345\n")
    script = portowner.script(1, "~/jetty.pid")  # port 1: nothing listens there
    done = subprocess.run(
        ["sh", "-c", script],
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    report = portowner.parse(done.stdout, 1, "~/jetty.pid", "127.0.0.1")
    assert report.listeners == ()
    assert report.pid_file_names == 12345
    assert report.uptime > 0 and report.clock > 1_600_000_000

"""A no-op redeploy (every node runs the WAR already) on the real stack: nothing sent,
nothing restarted, one SSH login per node, and every connection sending its packets at
once (TCP_NODELAY: without it each command waited 40 ms for a delayed ACK,
`fabfile.cluster.connection._prompt_transport`)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fabfile.cluster import connection
from sandbox import cluster
from tests import cli
from tests.real.helpers import history

REPO = Path(__file__).resolve().parents[2]
RUN = """
import json, sys
from fabfile.cli import run  # what main runs, without ending the process at once
try:
    run(["deploy", *sys.argv[1:]])
finally:
    sys.stdout.flush()
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "rich")), file=sys.stderr)
"""


def logins(sandbox: cluster.Cluster, address: str) -> int:
    log = sandbox.home(address) / "sshd.log"
    return log.read_text(errors="replace").count("Accepted publickey")


def test_a_noop_redeploy_logs_in_once_per_node_with_prompt_packets(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = connection._prompt_transport
    delays: list[int] = []

    def recording(sock: Any, **kwargs: Any) -> Any:
        transport = made(sock, **kwargs)
        delays.append(transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return transport

    monkeypatch.setattr(connection, "_prompt_transport", recording)
    before = {a: logins(sandbox, a) for a in sandbox.addresses}
    again = cli.run(["search-web-frontend-1.0.125.war"], on_125, capsys)
    assert again.code == 0, again.text
    entry = history(on_125)[-1]
    assert {h["outcome"] for h in entry["hosts"].values()} == {"unchanged"}
    assert sum(h["bytes_sent"] for h in entry["hosts"].values()) == 0
    assert {a: logins(sandbox, a) - before[a] for a in sandbox.addresses} == dict.fromkeys(
        sandbox.addresses, 1
    )
    assert delays == [1] * len(sandbox.addresses)


def _piped(app_dir: Path, **env: str) -> tuple[str, list[str]]:
    """``deploy`` of the WAR every node runs, as the entry point runs it, stdout a pipe:
    what it printed (the times since the start made equal) and the rich modules it loaded."""
    clean = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-c", RUN, "search-web-frontend-1.0.125.war"],
        cwd=app_dir,
        env={**clean, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    *_, modules = done.stderr.rstrip("\n").split("\n")
    assert done.returncode == 0, done.stdout + done.stderr
    return re.sub(r"^ *\d+\.\d\ds  ", "T  ", done.stdout, flags=re.M), json.loads(modules)


def test_a_noop_redeploy_piped_prints_what_rich_printed_without_loading_it(
    on_125: Path,
) -> None:
    """Piped, the plain lines are written without rich (`fabfile.view.console.Plain`);
    with TTY_COMPATIBLE=0 rich's console prints them, as it did before: the same bytes."""
    plain, loaded = _piped(on_125)
    assert loaded == []
    by_rich, loaded = _piped(on_125, TTY_COMPATIBLE="0")
    assert "rich.console" in loaded
    assert sorted(plain.splitlines()) == sorted(by_rich.splitlines())  # nodes run at once
    assert "unchanged" in plain and plain.count("\n") >= 4, plain

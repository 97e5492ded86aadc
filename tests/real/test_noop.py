"""A no-op redeploy (every node runs the WAR already) on the real stack: nothing sent,
nothing restarted, one SSH login per node, and every connection sending its packets at
once (TCP_NODELAY: without it each command waited 40 ms for a delayed ACK,
`fabfile.cluster.connection._prompt_transport`)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from fabfile.cluster import connection
from sandbox import cluster
from tests import cli
from tests.real.helpers import history


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

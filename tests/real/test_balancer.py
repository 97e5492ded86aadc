"""haproxy in front of the sandbox: drain before restart, ready after, maint on failure."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests

from fabfile.cluster.balancer import Admin, Balancer
from sandbox import app, cluster, haproxy
from tests import cli
from tests.real.conftest import BROKEN
from tests.real.helpers import all_on, versions

pytestmark = pytest.mark.real


class Watcher(threading.Thread):
    """Records haproxy's view of every server, and a paced load's failures."""

    def __init__(self, sandbox: cluster.Cluster) -> None:
        super().__init__(daemon=True)
        self.balancer = Balancer(str(haproxy.socket_path(sandbox)))
        self.url = haproxy.url(sandbox, "/status")
        self.seen: list[tuple[str, str]] = []
        self.served = 0
        self.failed: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                self._sample()
                self._request(session)
                time.sleep(0.01)

    def _sample(self) -> None:
        text = self.balancer.command("show stat").lstrip("# ")
        for row in csv.DictReader(io.StringIO(text)):
            if row["svname"].startswith("node"):
                self.seen.append((row["svname"], row["status"]))

    def _request(self, session: requests.Session) -> None:
        try:
            response = session.get(self.url, timeout=5)
            ok = response.status_code == 200
            detail = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            ok, detail = False, type(error).__name__
        self.served += 1
        if not ok:
            self.failed.append(detail)

    def states(self, server: str) -> list[str]:
        states: list[str] = []
        for name, status in self.seen:
            if name == server and (not states or states[-1] != status):
                states.append(status)
        return states

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()
        self._sample()  # the state the deploy left, after its last step


def test_each_node_is_drained_then_back_and_no_request_fails(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with Watcher(sandbox) as watcher:
        result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 0, result.text
    assert "no load balancer" not in result.out
    lines = result.out.splitlines()
    for index, address in enumerate(sandbox.addresses, start=1):
        drained = next(i for i, x in enumerate(lines) if address in x and "draining" in x)
        installing = next(i for i, x in enumerate(lines) if address in x and "installing" in x)
        assert drained < installing
        states = watcher.states(f"node{index}")
        assert "DRAIN" in states, states
        assert states[-1] == "UP", states
    assert watcher.served > 50
    assert watcher.failed == []


def test_a_failed_node_stays_in_maintenance(
    on_125: Path,
    sandbox: cluster.Cluster,
    wars: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(wars[BROKEN], on_125)
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    result = cli.run([f"search-web-frontend-{BROKEN}.war"], on_125, capsys)
    assert result.code == 1
    first = sandbox.addresses[0]
    assert f"{first} is left in maintenance in haproxy (web/node1)" in result.err
    nodes = {f"node{i}": a for i, a in enumerate(sandbox.addresses, start=1)}
    statuses = {name: balancer.row(_node(on_125, a)).get("status") for name, a in nodes.items()}
    assert statuses == {"node1": "MAINT", "node2": "UP", "node3": "UP"}

    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert balancer.row(_node(on_125, first)).get("status") == "UP"
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_swapped_server_names_are_refused_before_anything_changes(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, _ = sandbox.addresses
    config = on_125 / ".config"
    text = config.read_text()
    swapped = text.replace("lb_server = node1", "lb_server = X").replace(
        "lb_server = node2", "lb_server = node1"
    )
    config.write_text(swapped.replace("lb_server = X", "lb_server = node2"))
    result = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert result.code == 4, result.text
    assert (
        f"{first}: haproxy server web/node2 sends traffic to {second}:8080, not to this node "
        f"({first}:8080)"
    ) in result.err
    assert "nothing was changed" in result.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125")

    config.write_text(text.replace("lb_server = node3", "lb_server = node9"))
    missing = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert missing.code == 4
    assert "haproxy has no server web/node9 (servers in web: node1, node2, node3)" in missing.err


def test_status_shows_each_nodes_haproxy_state_and_fails_when_one_is_out(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    second = sandbox.addresses[1]
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    balancer.set_state(_node(on_125, second), Admin.MAINT)
    try:
        table = cli.run([], on_125, capsys)
        as_json = cli.run(["--json"], on_125, capsys)
    finally:
        balancer.ready(_node(on_125, second))
    assert table.code == 1
    row = next(line for line in table.out.splitlines() if second in line)
    assert "Ok" in row and "MAINT" in row
    assert table.out.count(" UP ") == 2
    states = {r["host"]: r["haproxy"] for r in json.loads(as_json.out)}
    assert as_json.code == 1
    assert states == {a: ("MAINT" if a == second else "UP") for a in sandbox.addresses}
    assert cli.run([], on_125, capsys).code == 0


def _node(app_dir: Path, address: str):  # type: ignore[no-untyped-def]
    from fabfile.app import config

    return next(n for n in config.load(app_dir / ".config").nodes if n.host == address)


def test_without_a_balancer_the_tool_warns_once(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    (on_125 / ".config").write_text(app.config_text(sandbox, warmup=0, ready_timeout=10))
    result = cli.run(
        ["search-web-frontend-1.0.126.war", "--hosts", sandbox.addresses[0]], on_125, capsys
    )
    assert result.code == 0, result.text
    assert result.out.count("warning: no load balancer in .config (lb_socket)") == 1

"""haproxy's server for a node pointing elsewhere: which key of ``.config`` to fix, said by
pre-flight and by status (which exits non-zero), and never the wrong key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabfile.app.config import NodeConfig
from fabfile.cluster import probe
from fabfile.cluster.balancer import Balancer, State
from fabfile.cluster.mismatch import mismatch
from fabfile.cluster.probe import Status
from tests import cli
from tests.fakes import node_configs

HOST = "127.0.0.1"  # resolves without a network: the address haproxy's table names


def colours(tmp_path: Path, blue: int, green: int) -> tuple[NodeConfig, ...]:
    return node_configs(
        tmp_path,
        f"hosts = {HOST}",
        "user = u",
        "strategy = blue-green",
        "instances = blue, green",
        "war_path = /srv/{instance}/ROOT.war",
        "lb_socket = /nowhere/haproxy.sock",
        "lb_backend = web",
        "[instance:blue]",
        f"status_url = http://{{host}}:{blue}/status",
        "[instance:green]",
        f"status_url = http://{{host}}:{green}/status",
    )


# haproxy's servers, named as lb_server defaults: blue on 8080, green on 8081
SERVERS = {f"{HOST}-blue": (HOST, 8080), f"{HOST}-green": (HOST, 8081)}


def test_swapped_colour_ports_name_status_url_not_lb_server(tmp_path: Path) -> None:
    blue, green = colours(tmp_path, 8081, 8080)  # the ports written the wrong way round
    said = mismatch(blue, SERVERS, (blue, green))
    assert said.startswith(
        f"{HOST}/blue: haproxy server web/{HOST}-blue sends traffic to {HOST}:8080, not to "
        f"this node ({HOST}:8081)"
    )
    assert f"fix status_url for {HOST}/blue in .config" in said
    assert f"which is {HOST}/green's status_url: the two look swapped" in said
    assert "lb_server" not in said
    assert mismatch(blue, SERVERS, (blue,)).endswith(f"to {HOST}:8080)")  # no swap to name


def test_ports_as_haproxy_has_them_are_no_mismatch(tmp_path: Path) -> None:
    blue, green = colours(tmp_path, 8080, 8081)
    assert mismatch(blue, SERVERS, (blue, green)) == mismatch(green, SERVERS) == ""


def test_a_server_named_otherwise_is_the_likelier_mistake(tmp_path: Path) -> None:
    (node,) = node_configs(
        tmp_path,
        f"hosts = {HOST}",
        "user = u",
        "lb_socket = /nowhere/haproxy.sock",
        "lb_backend = web",
        "lb_server = node2",
    )
    said = mismatch(node, {"node1": (HOST, 8080), "node2": ("127.0.0.9", 8080)})
    assert said == (
        f"{HOST}: haproxy server web/node2 sends traffic to 127.0.0.9:8080, not to this node "
        f"({HOST}:8080); draining it would not protect this node: fix lb_server in .config "
        f"(or status_url, if {HOST} does answer on 127.0.0.9:8080)"
    )
    missing = mismatch(node, {"node1": (HOST, 8080)})
    assert missing.endswith("(servers in web: node1); fix lb_backend / lb_server in .config")


def write_app(tmp_path: Path, blue: int, green: int) -> Path:
    app = tmp_path / "shop"
    app.mkdir()
    colours(app, blue, green)  # writes app/.config
    (app / "config.properties").write_text("")
    (app / ".jettyrc").write_text("")
    return app


@pytest.fixture
def haproxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blue live, green idle, haproxy's servers as `SERVERS`; every /status answers."""

    def states(self: Balancer, nodes: tuple[NodeConfig, ...]) -> dict[str, State]:
        return {n.label: State.UP if n.instance == "blue" else State.MAINT for n in nodes}

    def status(node: NodeConfig, since: float | None = None) -> Status:
        version = "1.0.1" if node.url.endswith(":8080/status") else "1.0.2"
        return Status(node.label, node.url, True, "", 200, "com.example:shop", version)

    monkeypatch.setattr(Balancer, "states", states)
    monkeypatch.setattr(Balancer, "_servers", lambda self, backend: SERVERS)
    monkeypatch.setattr(probe, "probe", status)


@pytest.mark.usefixtures("haproxy")
def test_status_with_swapped_colour_ports_exits_non_zero_naming_status_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = write_app(tmp_path, 8081, 8080)
    table = cli.run([], app, capsys)
    assert table.code == 1, table.text
    assert f"error: {HOST}/blue: haproxy server web/{HOST}-blue sends traffic to" in table.out
    assert f"fix status_url for {HOST}/green in .config" in table.out
    as_json = cli.run(["--json"], app, capsys)
    assert as_json.code == 1
    assert len(json.loads(as_json.out)) == 2  # the rows stay data; the errors go to stderr
    assert f"fix status_url for {HOST}/blue in .config" in as_json.err
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    assert cli.run([], write_app(fixed, 8080, 8081), capsys).code == 0

"""Pre-flight costs each node one login and one SSH round trip, whatever the node count:
the deploy lock, the holdings of every instance, the sudo check, the owner record, the
restart claim and the config files' checksums all come back in one script (the first
host by name takes its lock alone first, `fabfile.engine.clusterlock`). Counted on
nodes that run their scripts in a real ``sh`` (`tests.unit.test_clusterlock.ShNode`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.app.appdir import AppDir
from fabfile.app.config import NodeConfig
from fabfile.cluster import probe
from fabfile.engine.clusterlock import ClusterLock
from fabfile.engine.plan import Plan
from fabfile.engine.preflight import preflight
from fabfile.engine.rollout import Rollout
from fabfile.engine.strategies.contract import Setup
from fabfile.engine.strategies.rolling import Rolling
from fabfile.records.history import Action
from tests.fakes import node_configs
from tests.unit.helpers import release
from tests.unit.test_clusterlock import Quiet, ShNode

HOSTS = [f"web{i:02}" for i in range(1, 13)]


@pytest.fixture
def nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[NodeConfig, ...]:
    homes = tmp_path / "homes"
    homes.mkdir()
    monkeypatch.setattr(ShNode, "homes", homes, raising=False)
    monkeypatch.setattr(ShNode, "down", set())
    monkeypatch.setattr(ShNode, "events", [])
    monkeypatch.setattr(probe, "probe", lambda node: None)  # /status is HTTP, not SSH
    return node_configs(tmp_path, f"hosts = {', '.join(HOSTS)}", "user = u")


def _preflight(nodes: tuple[NodeConfig, ...], app: AppDir) -> list[tuple[str, str]]:
    """One pre-flight under a fresh lock; what it did on the nodes (the lock's release
    at the end not counted)."""
    aimed = release(2)
    sources = {}
    for sha in aimed.blobs:  # the coordinator's copies, so that room is only counted
        sources[sha] = app.path / sha
        sources[sha].write_bytes(b"x")
    plan = Plan(Action.DEPLOY, aimed, sources, nodes)
    with ClusterLock(nodes, "deploy shop-1.0.2.war", node=ShNode) as lock:
        rollout = Rollout(app, plan, Rolling(Setup()), Quiet(), lock.node, lock)
        start = len(ShNode.events)
        preflight(rollout)
        return ShNode.events[start:]


def test_preflight_logs_in_once_and_runs_one_command_per_node(
    nodes: tuple[NodeConfig, ...], tmp_path: Path
) -> None:
    app = AppDir(tmp_path)
    _preflight(nodes, app)  # the first names the app in each releases directory
    done = _preflight(nodes, app)
    opened = [host for what, host in done if what == "open"]  # the first: by its try
    assert len(set(opened)) == len(opened) and set(opened) <= set(HOSTS)
    runs = sorted(host for what, host in done if what == "run")
    # one each; the first host by name takes its lock alone before (two runs meet there)
    assert runs == sorted([*HOSTS, HOSTS[0]])


def test_the_first_preflight_adds_only_the_owner_record(
    nodes: tuple[NodeConfig, ...], tmp_path: Path
) -> None:
    done = _preflight(nodes, AppDir(tmp_path))
    runs = [host for what, host in done if what == "run"]
    assert sorted(runs) == sorted([*HOSTS * 2, HOSTS[0]])  # and the app named there
    assert all((ShNode.homes / host / "releases" / "shop" / "owner").exists() for host in HOSTS)

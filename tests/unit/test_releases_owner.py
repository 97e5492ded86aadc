"""Two apps with one releases_dir are refused with file and line: the node names the app
its releases directory belongs to (a real sh), pre-flight compares (the fake cluster)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabfile.cluster.layout import Layout
from fabfile.cluster.ownership import Owner
from fabfile.errors import PreflightError
from fabfile.view import preview
from tests.fakes import node_configs
from tests.unit.test_claim_release import LocalNode
from tests.unit.test_contract import HOSTS, NEW, OLD, World

THEIRS = Owner("com.example:search-api", "search-api", "coord2:/srv/apps/search-api/.config")


def test_the_first_app_names_itself_and_a_second_cannot_take_it(tmp_path: Path) -> None:
    home, canary = tmp_path / "home", tmp_path / "pwned"
    home.mkdir()
    config = node_configs(tmp_path, "hosts = web1", f"releases_dir = ~/r d/$(touch {canary})")[0]
    node = LocalNode(config, home)
    assert node.holdings().owner is None
    ours = Owner("com.example:shop", "shop", "coord1:/apps/shop/.config'$(touch x)")
    assert node.claim_owner(ours) == ours
    assert node.claim_owner(THEIRS) == ours  # named once: the second is told who it is
    assert node.holdings().owner == ours
    root = home / Layout.of(config).root.removeprefix("~/")
    assert sorted(p.name for p in root.iterdir()) == ["blobs", "owner"]  # no temporary left
    assert not canary.exists()


def test_a_damaged_owner_record_reads_as_none() -> None:
    assert Owner.parse("not json") is None
    assert Owner.parse('{"app": "x"}') is None
    assert Owner.parse(THEIRS.to_json()) == THEIRS


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, "rolling", monkeypatch)


def test_another_apps_releases_dir_is_refused_with_file_and_line(world: World) -> None:
    world.cluster.owners[HOSTS[1]] = THEIRS
    with pytest.raises(PreflightError) as caught:
        world.run()
    message = str(caught.value)
    config = world.app.path / ".config"
    assert (
        f"{HOSTS[1]}: releases_dir ~/releases/shop belongs to another app on this "
        "node, com.example:search-api (app search-api, .config at "
        "coord2:/srv/apps/search-api/.config)"
    ) in message
    assert f"({config}:1: [deploy] releases_dir, not set: the default is ~/releases/{{app}};" in (
        message
    )
    assert "nothing was changed" in message
    assert not [e for e in world.cluster.events if e[1].startswith(("install", "upload", "lb"))]


def test_the_line_named_is_where_releases_dir_is_set_for_that_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(
        tmp_path,
        "rolling",
        monkeypatch,
        sections=(f"[host:{HOSTS[2]}]", "releases_dir = /srv/shared"),
    )
    world.cluster.owners[HOSTS[2]] = THEIRS
    with pytest.raises(PreflightError) as caught:
        world.run()
    text = (world.app.path / ".config").read_text().splitlines()
    line = text.index("releases_dir = /srv/shared") + 1
    assert f".config:{line}: [host:{HOSTS[2]}] releases_dir" in str(caught.value)
    assert "not set" not in str(caught.value)


def test_a_releases_dir_that_names_no_app_is_named_for_this_one(world: World) -> None:
    world.run()
    assert {host: owner.artifact for host, owner in world.cluster.owners.items()} == dict.fromkeys(
        HOSTS, NEW.coordinates
    )
    assert world.cluster.owners[HOSTS[0]].app == world.app.name


def test_a_copy_of_the_app_directory_is_the_same_app(world: World) -> None:
    """Two coordinators, or two people with a copy each: the WAR's coordinates decide."""
    world.cluster.owners[HOSTS[0]] = Owner(NEW.coordinates, "shop", "coord2:/home/bob/shop/.config")
    world.run()
    assert world.running()[HOSTS[0]] == NEW.version


def test_a_releases_dir_named_by_nobody_but_running_another_app_is_refused(world: World) -> None:
    other = dataclasses.replace(OLD, coordinates="com.example:search-api")
    world.cluster.hosts[HOSTS[0]].installed = other
    with pytest.raises(PreflightError, match=r"belongs to another app on this node, com\.example:"):
        world.run()
    assert HOSTS[0] not in world.cluster.owners  # not named for this app either


def test_the_dry_run_says_so_and_names_nothing(world: World) -> None:
    world.cluster.owners[HOSTS[1]] = THEIRS
    files = world.app.overrides()
    merged = {host: files.files(host) for host in world.app.config.hosts}
    steps = preview.steps(world.rollout(), merged)
    errors = {step.node: step.error for step in steps}
    assert "belongs to another app on this node" in errors[HOSTS[1]]
    assert errors[HOSTS[0]] == errors[HOSTS[2]] == ""
    assert set(world.cluster.owners) == {HOSTS[1]}

"""Temporary names on a node are each run's own, and pre-flight removes only those of
runs long gone: two runs in a real ``sh`` never rename or delete each other's files."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from fabfile.app.config import NodeConfig
from fabfile.cluster.holdings import Holdings
from fabfile.cluster.layout import STALE_MINUTES, Layout, hidden_beside
from tests.fakes import node_configs
from tests.unit.helpers import release, staged
from tests.unit.test_claim_release import LocalNode, sh

A, B = "a1b2c3", "d4e5f6"  # two runs


def age(path: Path, minutes: float) -> None:
    then = time.time() - minutes * 60
    os.utime(path, (then, then))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    (path / "releases" / "shop" / "blobs").mkdir(parents=True)
    return path


@pytest.fixture
def config(tmp_path: Path, home: Path) -> NodeConfig:
    nodes = node_configs(
        tmp_path,
        "hosts = web1",
        "releases_dir = ~/releases/shop",
        f"war_path = {home}/web*apps/RO[O]T.war",  # glob characters in the target's name
        f"config_path = {home}/conf/config.properties",
        f"jettyrc_path = {home}/conf/.jettyrc",
    )
    return dataclasses.replace(nodes[0], instance="b1")


def test_every_temporary_name_carries_the_run() -> None:
    layout = Layout("~/releases/shop")
    assert layout.part("ab12", A) == f"~/releases/shop/blobs/ab12.{A}.part"
    assert layout.current_new("b1", A) == f"~/releases/shop/current.b1.{A}.new"
    assert layout.current_new("", A) == f"~/releases/shop/current.{A}.new"
    assert hidden_beside("/srv/app/ROOT.war", A) == f"/srv/app/.ROOT.war.{A}.deploy-new"
    assert layout.part("ab12", A) != layout.part("ab12", B)
    with pytest.raises(ValueError, match="run id"):
        layout.part("ab12", "x/../y")


def test_an_install_never_touches_another_runs_temporary_copy(
    config: NodeConfig, home: Path
) -> None:
    layout = Layout.of(config)
    war = Path(config.war_path)
    war.parent.mkdir(parents=True)
    theirs = Path(hidden_beside(config.war_path, A))
    theirs.write_text("run A is still copying this")
    node = LocalNode(config, home)
    node.run_id = B
    target = staged(release(2), home / "releases" / "shop" / "blobs")
    node.install(target)
    assert war.read_text() == "content of " + release(2).war[-4:]
    assert theirs.read_text() == "run A is still copying this"
    assert not Path(hidden_beside(config.war_path, B)).exists()
    assert (home / layout.current_new("b1", B).removeprefix("~/")).exists() is False


def test_pre_flight_removes_only_what_runs_long_gone_left(config: NodeConfig, home: Path) -> None:
    root = home / "releases" / "shop"
    war = Path(config.war_path)
    war.parent.mkdir(parents=True)
    (home / "conf").mkdir()
    old = [
        root / "blobs" / f"{'1' * 64}.{A}.part",
        root / "blobs" / f"{'2' * 64}.part",  # before runs named them
        Path(hidden_beside(config.war_path, A)),
        Path(hidden_beside(config.config_path, A)),
        root / f"current.b1.{A}.new",
        root / f"taken-out.b1.{A}.new",
    ]
    young = [
        root / "blobs" / f"{'3' * 64}.{B}.part",
        Path(hidden_beside(config.war_path, B)),
        root / f"current.{B}.new",
    ]
    kept = [
        root / "current.b1",  # an instance's record, however old
        root / "current.new",  # (an instance named "new" would have this record)
        root / "blobs" / ("4" * 64),
        war.parent / ".ROOT.war.zz.deploy-new",  # not the target's: its [O] is no glob
        war,
    ]
    for path in [*old, *young, *kept]:
        path.write_text("x")
    for path in [*old, *kept]:
        age(path, STALE_MINUTES + 5)
    for path in young:
        age(path, STALE_MINUTES - 5)
    held = LocalNode(config, home).holdings()
    assert [p for p in old if p.exists()] == []
    assert [p for p in [*young, *kept] if not p.exists()] == []
    assert held.blobs == frozenset({"4" * 64})  # another run's upload is not a blob yet


def test_pruning_never_deletes_an_upload_still_arriving(config: NodeConfig, home: Path) -> None:
    blobs = home / "releases" / "shop" / "blobs"
    arriving = blobs / f"{'5' * 64}.{A}.part"
    arriving.write_text("half")
    (blobs / ("6" * 64)).write_text("old release")
    node = LocalNode(config, home)
    node.prune(node.holdings(), frozenset())
    assert arriving.exists() and not (blobs / ("6" * 64)).exists()


def test_a_dry_run_tidies_nothing(config: NodeConfig, home: Path) -> None:
    part = home / "releases" / "shop" / "blobs" / f"{'1' * 64}.{A}.part"
    part.write_text("x")
    age(part, STALE_MINUTES * 3)
    LocalNode(config, home).holdings(tidy=False)
    assert part.exists()


def test_under_the_deploy_lock_every_other_runs_temporary_file_is_removed(
    config: NodeConfig, home: Path
) -> None:
    """A run holding the node's deploy lock is the only one alive there: what another run
    left (it was cut off a moment ago) goes, however young; without the lock it stays."""
    blobs = home / "releases" / "shop" / "blobs"
    young = blobs / f"{'7' * 64}.{B}.part"
    young.write_text("half")
    age(young, 1)
    sh(Holdings.script(config, tidy=True), home)
    assert young.exists()
    sh(Holdings.script(config, tidy=True, locked=True), home)
    assert not young.exists()


@pytest.mark.parametrize("releases_dir", ["~/releases/shop", "~/new/deep/releases/shop"])
def test_a_fresh_node_reads_the_free_space_of_the_nearest_existing_parent(
    tmp_path: Path, releases_dir: str
) -> None:
    """A node never deployed to has no releases directory yet, and a dry run makes none:
    the space it will be made in counts, not 0 KiB (the dry run said "0 MiB free" on
    every node of a cluster the deploy then went to)."""
    home = tmp_path / "fresh"
    home.mkdir()
    config = node_configs(tmp_path, "hosts = web1", f"releases_dir = {releases_dir}")[0]
    holdings = LocalNode(config, home).holdings(tidy=False)
    disk = os.statvfs(home)
    free_kib = disk.f_bavail * disk.f_frsize // 1024  # others write here meanwhile: about
    assert holdings.free_kib > 0 and abs(holdings.free_kib - free_kib) < 64 * 1024
    assert list(home.iterdir()) == []  # a dry run makes no directory


def test_the_tidying_runs_one_find_per_directory_and_each_removes_every_name(
    config: NodeConfig, home: Path
) -> None:
    """config.properties and .jettyrc share a directory, current/taken-out/owner records the
    releases directory: one ``find`` each (every one is a fork on the node), and each
    still removes every name given to it, and only what runs long gone left."""
    layout = Layout.of(config)
    script = layout.stale_temporaries((config.war_path, config.config_path, config.jettyrc_path))
    assert script.count("find ") == 4  # blobs, the releases directory, the WAR's, conf
    (home / "conf").mkdir()
    root = home / "releases" / "shop"
    old = [
        Path(hidden_beside(config.config_path, A)),
        Path(hidden_beside(config.jettyrc_path, A)),
        root / f"owner.{A}.new",
        root / f"current.b1.{A}.new",
    ]
    young = [Path(hidden_beside(config.jettyrc_path, B)), root / f"taken-out.b1.{B}.new"]
    for path in [*old, *young]:
        path.write_text("x")
        age(path, STALE_MINUTES + 5 if path in old else 1)
    sh(f"{layout.assign()}; {script}", home)
    assert [p for p in old if p.exists()] == []
    assert [p for p in young if not p.exists()] == []


def test_under_the_lock_the_shells_globs_remove_every_name_and_fork_no_find(
    tmp_path: Path,
) -> None:
    """Under the run's lock age does not matter, so the shell's own globs find the
    temporary files (a ``find`` per directory forked five times a node in every
    pre-flight): every kind goes, in directories whose names are hostile too, and
    nothing that only looks like one."""
    home = tmp_path / "node"
    root = home / "rel dir" / "it's $(x) *"
    (root / "blobs").mkdir(parents=True)
    (home / "web apps").mkdir()
    config = node_configs(
        tmp_path,
        "hosts = web1",
        "releases_dir = ~/rel dir/it's $(x) *",
        "war_path = ~/web apps/ro*t.war",
    )[0]
    layout = Layout.of(config)
    script = layout.stale_temporaries((config.war_path,), locked=True)
    assert "find " not in script
    gone = [
        root / "blobs" / f"{'5' * 64}.{A}.part",
        root / f"owner.{A}.new",
        root / f"current.b1.{A}.new",
        root / f"taken-out.b1.{B}.new",
        Path(str(home) + hidden_beside(config.war_path, A)[1:]),
    ]
    kept = [
        root / "blobs" / ("6" * 64),
        root / "current.b1",
        root / "owner",
        home / "web apps" / f".rozt.war.{A}.deploy-new",  # the name's * is a literal one
        home / "web apps" / "ro*t.war",
    ]
    for path in [*gone, *kept]:
        path.write_text("x")
    done = sh(f"set -e; {layout.assign()}; {script}; echo finished", home)
    assert done.stdout == "finished\n", done.stderr
    assert [p for p in gone if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []

"""The node's directory layout: the names existing nodes hold, quoted for any releases_dir,
and the scripts of `Node`, the parallel runtime and drift finding things where it says."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import cast

import pytest

from fabfile.app.config import NodeConfig
from fabfile.app.overrides import File, HostFiles
from fabfile.app.release import Release
from fabfile.cluster import drift
from fabfile.cluster.layout import VERSION_CONFIG, Layout, beside, hidden_beside
from fabfile.cluster.manager import Deployed, Manager
from fabfile.cluster.shell import sh_path
from fabfile.engine.plan import Plan
from fabfile.engine.runtimes.parallel import ParallelVersions
from fabfile.engine.steps import Steps
from fabfile.engine.strategies.parallel import Parallel
from fabfile.engine.target import Target
from fabfile.records.history import Action
from tests.fakes import node_configs
from tests.unit.helpers import LocalNode, release, sh, staged

# A releases directory no script may split, expand or run: spaces, both quotes, $( ),
# backquotes, a glob and a leading dash in a component. (No braces: .config templates.)
HOSTILE = 'rel dir/it\'s "here"/$(touch {canary})/`touch {canary}`/*/-x'


def local(path: str, home: Path) -> Path:
    """Where a node path (``~/`` is HOME) is on this machine, the node being ``home``."""
    return Path(str(home) + path[1:]) if path.startswith("~/") else Path(path)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "node home"
    path.mkdir()
    return path


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


@pytest.fixture
def config(tmp_path: Path, canary: Path) -> NodeConfig:
    """A node whose releases_dir and files are hostile names under its HOME."""
    nodes = node_configs(
        tmp_path,
        "hosts = web1",
        "user = u",
        f"releases_dir = ~/{HOSTILE.format(canary=canary)}",
        "war_path = ~/web apps/RO'OT.war",
        "config_path = ~/conf dir/config.properties",
        "jettyrc_path = ~/conf dir/.jettyrc",
        "logback_path = ~/conf dir/logback.xml",
    )
    return dataclasses.replace(nodes[0], instance="b1")


# -- the names ------------------------------------------------------------------------


def test_the_names_are_those_existing_nodes_hold() -> None:
    """Renaming any of these would make every node look empty to the next run."""
    layout = Layout("~/releases/shop")
    assert layout.blobs == "~/releases/shop/blobs"
    assert layout.blob("ab12") == "~/releases/shop/blobs/ab12"
    assert layout.part("ab12") == "~/releases/shop/blobs/ab12.part"
    assert layout.current() == "~/releases/shop/current"
    assert layout.current("b1") == "~/releases/shop/current.b1"
    assert layout.current_new("b1") == "~/releases/shop/current.b1.new"
    assert layout.log == "~/releases/shop/releases.log"
    assert layout.claim == "~/releases/shop/restart.claim"
    assert layout.claim_lock == "~/releases/shop/restart.claim.lock"
    assert layout.claim_new == "~/releases/shop/restart.claim.new"
    assert layout.versions == "~/releases/shop/versions"
    assert layout.version("000002-1.1") == "~/releases/shop/versions/000002-1.1"
    assert layout.version_war("000002-1.1") == "~/releases/shop/versions/000002-1.1.war"
    assert layout.version_xml("000002-1.1") == "~/releases/shop/versions/000002-1.1.xml"
    assert VERSION_CONFIG == "WEB-INF/classes/config.properties"
    assert hidden_beside("/srv/app/ROOT.war") == "/srv/app/.ROOT.war.deploy-new"
    assert hidden_beside("/ROOT.war") == "/.ROOT.war.deploy-new"
    assert beside("/etc/app/logback.xml") == "/etc/app/logback.xml.deploy-new"


def test_layout_of_a_node_is_its_releases_dir(config: NodeConfig) -> None:
    assert Layout.of(config).root == config.releases_dir
    assert Layout.of(config).log == config.releases_dir + "/releases.log"


@pytest.mark.parametrize("root", ['~/rel dir/it\'s "here"', "/srv/a b/'q'", "~", "rel"])
def test_every_path_is_one_inert_word_for_a_real_shell(home: Path, canary: Path, root: str) -> None:
    layout = Layout(f"{root}/$(touch {canary})/`touch {canary}`")
    odd = f"x y'$(touch {canary})"  # checksums and instance names are safe; the words need not be
    paths = [layout.blob("ab12"), layout.current("b1"), layout.log, layout.claim_lock]
    for path in [*paths, layout.blob(odd), layout.current(odd), layout.version(odd)]:
        expected = str(local(path, home))
        assert sh(f"printf %s {sh_path(path)}", home).stdout == expected
        words = f"{layout.assign()}; printf %s {layout.word(path)}"
        assert sh(words, home).stdout == expected
    assert sh(f"{layout.assign()}; printf %s {layout.word(layout.root)}", home).stdout == str(
        local(layout.root, home)
    )
    assert not canary.exists()


def test_a_word_is_only_for_a_path_of_the_layout() -> None:
    with pytest.raises(ValueError, match="not under"):
        Layout("~/releases/shop").word("~/releases/shopping/current")


# -- the scripts use it ---------------------------------------------------------------


def test_the_holdings_script_reads_each_thing_where_the_layout_puts_it(
    config: NodeConfig, home: Path, canary: Path
) -> None:
    layout, old, new = Layout.of(config), release(1), release(2)
    local(layout.blobs, home).mkdir(parents=True)
    for sha in (old.war, new.war):
        local(layout.blob(sha), home).write_text("x")
    local(layout.part("ab12"), home).write_text("half")
    stale = time.time() - 2 * 3600  # left by a run long gone: tidied (a younger one stays)
    os.utime(local(layout.part("ab12"), home), (stale, stale))
    local(layout.current("b1"), home).write_text(new.to_json() + "\n")
    local(layout.current("b2"), home).write_text(old.to_json() + "\n")
    local(layout.log, home).write_text(f"{old.to_json()}\n{new.to_json()}\n")
    local(layout.claim, home).write_text("1.5 99.5 damaged\n")
    held = LocalNode(config, home).holdings()
    assert held.home == str(home)
    assert held.blobs == frozenset({old.war, new.war})
    assert not local(layout.part("ab12"), home).exists()  # tidied
    assert held.current == new
    assert set(held.held) == {old, new}
    assert held.installed == (old, new)
    assert held.claim is not None and held.claim.at == 1.5
    assert not canary.exists()


def test_install_record_and_prune_write_where_the_layout_says(
    config: NodeConfig, home: Path, canary: Path
) -> None:
    layout, node, fake = Layout.of(config), LocalNode(config, home), release(7)
    local(layout.blobs, home).mkdir(parents=True)
    target = staged(fake, local(layout.blobs, home), "0" * 64)  # true checksums: each is checked
    node.install(target)
    assert Release.from_json(local(layout.current("b1"), home).read_text()) == target
    assert not local(layout.current_new("b1"), home).exists()
    node.record(target)
    assert len(local(layout.log, home).read_text().splitlines()) == 2
    assert (home / "web apps" / "RO'OT.war").read_text() == f"content of {fake.war[-4:]}"
    node.prune(node.holdings(), target.blobs)
    assert sorted(p.name for p in local(layout.blobs, home).iterdir()) == sorted(target.blobs)
    assert not canary.exists()


def test_the_restart_claim_is_the_layouts(config: NodeConfig, home: Path, canary: Path) -> None:
    layout, node = Layout.of(config), LocalNode(config, home)
    local(layout.root, home).mkdir(parents=True)
    node.config = dataclasses.replace(config, restart="true", ready_timeout=5)
    blocked, _ = node.restart('{"token": "run-1"}', "run-1")
    assert blocked is None
    assert local(layout.claim, home).read_text().endswith(' {"token": "run-1"}\n')
    assert local(layout.claim_lock, home).exists() and not local(layout.claim_new, home).exists()
    node.release_restart("run-1")
    assert not local(layout.claim, home).exists()
    assert not canary.exists()


def test_parallel_versions_are_laid_out_and_forgotten_where_the_layout_says(
    config: NodeConfig, home: Path, canary: Path
) -> None:
    layout, node, fake = Layout.of(config), LocalNode(config, home), release(2)
    node.home = str(home)
    local(layout.blobs, home).mkdir(parents=True)
    wanted = staged(fake, local(layout.blobs, home))  # true checksums: each copy is checked
    plan = Plan(Action.DEPLOY, wanted, {}, (config,))
    versions = ParallelVersions(plan, cast(Steps, None), cast(Manager, None))
    target = Target(node)
    war, context = versions._lay_out(target, "000002-1.0.2")
    assert (war, context) == (
        str(local(layout.version_war("000002-1.0.2"), home)),
        str(local(layout.version_xml("000002-1.0.2"), home)),
    )
    tree = local(layout.version("000002-1.0.2"), home)
    assert (tree / VERSION_CONFIG).read_text() == f"content of {fake.config[-4:]}"
    assert Path(context).read_text().startswith("<Context>")
    local(layout.version("000001-1.0.1"), home).mkdir()
    local(layout.version_war("000001-1.0.1"), home).write_text("old")
    versions._forget_retired(target, [Deployed("000002-1.0.2", "running", 0)])
    left = sorted(p.name for p in local(layout.versions, home).iterdir())
    assert left == ["000002-1.0.2", "000002-1.0.2.war", "000002-1.0.2.xml"]
    found = drift.compare(node, _files(f"content of {fake.config[-4:]}"), Parallel.versioned)
    assert found[0].diff == ""  # read from the newest version's own config.properties
    assert found[0].path == layout.version("NEWEST") + "/" + VERSION_CONFIG
    assert not canary.exists()


def _files(config: str) -> HostFiles:
    return HostFiles(File("config.properties", config.encode()), File(".jettyrc", b""), None)

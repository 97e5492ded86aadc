"""A staged blob is hashed again before it goes live: one that changed on the node is
sent again, never installed. The node's scripts run in a real ``sh``; staging's
re-check runs on the fake cluster."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from fabfile.app.config import NodeConfig
from fabfile.app.release import Release
from fabfile.cluster.layout import Layout
from fabfile.cluster.manager import Manager
from fabfile.engine.plan import Plan
from fabfile.engine.runtimes.parallel import ParallelVersions
from fabfile.engine.steps import Steps
from fabfile.engine.target import Target
from fabfile.errors import NodeError, RolloutError
from fabfile.records.history import Action
from tests.fakes import FakeNode, node_configs
from tests.unit.helpers import LocalNode, release, staged
from tests.unit.test_contract import HOSTS, NEW, World


class SendingNode(LocalNode):
    """A local node whose uploads are a local copy (then checked on the 'node' as usual)."""

    def send_part(self, local: Path, sha256: str) -> str:
        part = self.absolute(self.layout.part(sha256, self.run_id))
        shutil.copyfile(local, part)
        return part


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    (path / "releases" / "shop" / "blobs").mkdir(parents=True)
    return path


@pytest.fixture
def config(tmp_path: Path, home: Path) -> NodeConfig:
    return node_configs(
        tmp_path,
        "hosts = web1",
        "releases_dir = ~/releases/shop",
        f"war_path = {home}/webapps/root.war",
        f"config_path = {home}/conf/config.properties",
        f"jettyrc_path = {home}/conf/.jettyrc",
    )[0]


def node_of(config: NodeConfig, home: Path) -> SendingNode:
    node = SendingNode(config, home)
    node.home = str(home)
    return node


def sources(tmp_path: Path, blobs: Path, *shas: str) -> dict[str, Path]:
    """The coordinator's copies of ``shas``, as the node had them when staged."""
    local = tmp_path / "coordinator"
    local.mkdir(exist_ok=True)
    for sha in shas:
        shutil.copyfile(blobs / sha, local / sha)
    return {sha: local / sha for sha in shas}


def test_checking_names_and_removes_only_the_blobs_that_changed(
    config: NodeConfig, home: Path
) -> None:
    blobs = home / "releases" / "shop" / "blobs"
    target = staged(release(1), blobs)
    (blobs / target.war).write_text("edited in place")
    changed = node_of(config, home).changed_blobs(target.blobs | {"9" * 64})  # 9...: not held
    assert changed == {target.war: hashlib.sha256(b"edited in place").hexdigest()}
    assert sorted(p.name for p in blobs.iterdir()) == sorted({target.config, target.jettyrc})


def test_a_blob_changed_since_staging_is_sent_again_never_installed(
    tmp_path: Path, config: NodeConfig, home: Path
) -> None:
    blobs = home / "releases" / "shop" / "blobs"
    fake = release(2)
    target = staged(fake, blobs)
    local = sources(tmp_path, blobs, *target.blobs)
    (blobs / target.war).write_text("a hard link to it was edited")
    node = node_of(config, home)
    resent = node.install(target, sources=local)
    assert resent == local[target.war].stat().st_size
    assert (home / "webapps" / "root.war").read_text() == f"content of {fake.war[-4:]}"
    assert (blobs / target.war).read_text() == f"content of {fake.war[-4:]}"
    assert [p.name for p in (home / "webapps").iterdir()] == ["root.war"]  # no copy left


def test_without_a_local_copy_a_changed_blob_is_refused_and_nothing_installed(
    config: NodeConfig, home: Path
) -> None:
    blobs = home / "releases" / "shop" / "blobs"
    before, fake = staged(release(1), blobs), release(2)
    node = node_of(config, home)
    node.install(before)
    target = staged(fake, blobs)
    (blobs / target.config).write_text("damaged")
    with pytest.raises(NodeError) as caught:
        node.install(target)  # a rollback whose WAR the coordinator no longer has
    message = str(caught.value)
    assert message.startswith(f"web1: staged file(s) {target.config[:12]} (now ")
    assert "deploy the WAR of that release explicitly" in message
    assert (home / "webapps" / "root.war").read_text() == f"content of {release(1).war[-4:]}"
    assert (home / "conf" / "config.properties").read_text().startswith("content of")
    layout = Layout.of(config)
    assert node.holdings().current == before  # the record was not changed either
    assert not (blobs / target.config).exists()  # nothing trusts it by its name again
    assert not (home / layout.current_new("", node.run_id).removeprefix("~/")).exists()


def test_parallel_versions_are_copies_checked_against_their_checksum(
    tmp_path: Path, config: NodeConfig, home: Path
) -> None:
    """Not hard links: an edit of a live version's file never reaches the staged blob that
    a later deploy or rollback would install."""
    blobs = home / "releases" / "shop" / "blobs"
    fake = release(3)
    wanted = staged(fake, blobs)
    node = node_of(config, home)
    plan = Plan(Action.DEPLOY, wanted, sources(tmp_path, blobs, *wanted.blobs), (config,))
    notes: list[str] = []
    steps = cast(Steps, SimpleNamespace(note=notes.append))
    versions = ParallelVersions(plan, steps, cast(Manager, None))
    war, _ = versions._lay_out(Target(node), "000003-1.0.3")
    assert notes == []
    assert Path(war).stat().st_ino != (blobs / wanted.war).stat().st_ino
    Path(war).write_text("edited on the node")
    assert (blobs / wanted.war).read_text() == f"content of {fake.war[-4:]}"
    (blobs / wanted.war).write_text("damaged")  # the next version is laid out from a good copy
    versions._lay_out(Target(node), "000004-1.0.3")
    assert Path(war.replace("000003", "000004")).read_text() == f"content of {fake.war[-4:]}"
    assert notes and "was sent again" in notes[0]


def test_a_held_file_that_changed_is_sent_again_before_anything_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    world.cluster.blobs[HOSTS[1]] |= NEW.blobs  # staged ahead (deploy stage) ...
    world.cluster.changed[HOSTS[1]] = {NEW.war}  # ... then changed there
    world.run()
    events = world.cluster.of(HOSTS[1])
    resent = events.index(f"upload {NEW.war[:8]}")
    assert resent < events.index("lb DRAIN")
    assert world.running()[HOSTS[1]] == NEW.version
    assert any("had changed on the node; it was sent again" in n for n in world.reporter.notes)
    assert "checked staged files" not in events  # the copies check them: hashed once


def test_staging_checks_nothing_where_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    for host in world.cluster.hosts.values():
        host.installed = host.running = NEW
    for blobs in world.cluster.blobs.values():
        blobs |= NEW.blobs
    world.run()
    assert not [e for e in world.cluster.events if e[1] == "checked staged files"]


def test_a_changed_file_with_no_copy_is_refused_before_anything_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    for blobs in world.cluster.blobs.values():
        blobs |= NEW.blobs
    world.cluster.changed[HOSTS[0]] = {NEW.war}
    rollout = world.rollout()
    rollout.plan = dataclasses.replace(rollout.plan, sources={})  # a rollback: no WAR at hand
    with pytest.raises(
        RolloutError, match="preparing the release's files failed; no node was restarted"
    ) as caught:
        rollout.run()
    assert f"{HOSTS[0]}: staged file(s) changed" in str(caught.value)
    assert not [e for e in world.cluster.events if e[1].startswith(("lb", "install", "restart"))]


def test_a_prepared_copy_is_what_the_node_s_turn_installs(
    tmp_path: Path, config: NodeConfig, home: Path
) -> None:
    """`Node.prepare` makes the checked copies beside their targets before the node's
    turn; the install then only renames them (the blob itself is not read again), and
    leaves no copy behind."""
    blobs = home / "releases" / "shop" / "blobs"
    fake = release(4)
    target = staged(fake, blobs)
    node = node_of(config, home)
    assert node.prepare(target) == 0
    assert (home / "webapps" / "root.war").exists() is False  # nothing live changed
    copies = sorted(p.name for p in (home / "webapps").iterdir())
    assert copies == [f".root.war.{node.run_id}-{target.war[:16]}.deploy-new"]
    (blobs / target.war).write_text("damaged after the copy was checked")
    assert node.install(target) == 0
    assert (home / "webapps" / "root.war").read_text() == f"content of {fake.war[-4:]}"
    assert [p.name for p in (home / "webapps").iterdir()] == ["root.war"]
    assert node.holdings().current == target


def _sent_unchecked(
    tmp_path: Path, home: Path, node: SendingNode, n: int
) -> tuple[Release, dict[str, Path]]:
    """A release staged as a rolling run's staging sends it: each file left as its part
    (`Session.upload` without ``check``), the coordinator's copies beside."""
    blobs = home / "releases" / "shop" / "blobs"
    target = staged(release(n), blobs)
    local = sources(tmp_path, blobs, *target.blobs)
    for sha in target.blobs:
        (blobs / sha).unlink()
        assert node.upload(local[sha], sha, check=False) == local[sha].stat().st_size
    return target, local


def test_a_part_sent_unchecked_becomes_a_blob_only_through_its_checked_copy(
    tmp_path: Path, config: NodeConfig, home: Path
) -> None:
    """One hash and one command less a node: the part is checked by the copy made from
    it, then renamed a blob."""
    node = node_of(config, home)
    target, local = _sent_unchecked(tmp_path, home, node, 8)
    blobs = home / "releases" / "shop" / "blobs"
    assert sorted(p.name for p in blobs.iterdir()) == sorted(
        f"{sha}.{node.run_id}.part" for sha in target.blobs
    )
    assert node.prepare(target, local, fresh=target.blobs) == 0
    assert sorted(p.name for p in blobs.iterdir()) == sorted(target.blobs)
    for sha in target.blobs:
        assert (blobs / sha).read_bytes() == local[sha].read_bytes()
    assert node.install(target) == 0
    assert (home / "webapps" / "root.war").read_bytes() == local[target.war].read_bytes()


def test_a_part_damaged_on_the_way_is_sent_again_and_never_named_a_blob(
    tmp_path: Path, config: NodeConfig, home: Path
) -> None:
    node = node_of(config, home)
    target, local = _sent_unchecked(tmp_path, home, node, 9)
    blobs = home / "releases" / "shop" / "blobs"
    part = blobs / f"{target.war}.{node.run_id}.part"
    part.write_text("damaged on the way")
    sent = node.prepare(target, local, fresh=target.blobs)
    assert sent == local[target.war].stat().st_size  # sent again, checked, then copied
    assert sorted(p.name for p in blobs.iterdir()) == sorted(target.blobs)
    assert (blobs / target.war).read_bytes() == local[target.war].read_bytes()

    second = node_of(config, home)
    again, _ = _sent_unchecked(tmp_path, home, second, 10)
    (blobs / f"{again.war}.{second.run_id}.part").write_text("damaged on the way")
    with pytest.raises(NodeError, match="the coordinator has no copy"):
        second.prepare(again, {}, fresh=again.blobs)  # a copy to send again: none
    assert not (blobs / again.war).exists()
    assert not (blobs / f"{again.war}.{second.run_id}.part").exists()


def test_a_copy_is_prepared_only_from_a_blob_that_checks(
    tmp_path: Path, config: NodeConfig, home: Path
) -> None:
    blobs = home / "releases" / "shop" / "blobs"
    fake = release(5)
    target = staged(fake, blobs)
    local = sources(tmp_path, blobs, *target.blobs)
    (blobs / target.war).write_text("changed on the node")
    node = node_of(config, home)
    assert node.prepare(target, local) == local[target.war].stat().st_size  # sent again
    assert (blobs / target.war).read_text() == f"content of {fake.war[-4:]}"
    node.discard(target)  # a run that stopped before this node's turn
    assert list((home / "webapps").iterdir()) == []
    assert not [p for p in (home / "conf").iterdir() if p.name.endswith(".deploy-new")]


def test_a_copy_prepared_for_another_file_is_not_taken(
    tmp_path: Path, config: NodeConfig, home: Path
) -> None:
    blobs = home / "releases" / "shop" / "blobs"
    one, other = release(6), release(7)
    first, second = staged(one, blobs), staged(other, blobs)
    node = node_of(config, home)
    node.prepare(first)
    node.install(second)
    assert (home / "webapps" / "root.war").read_text() == f"content of {other.war[-4:]}"


def test_every_node_is_prepared_before_the_first_one_s_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    world.run()
    order = [what for _, what in world.cluster.events if what.startswith(("prepare", "install"))]
    assert order == [f"prepare {NEW.version}"] * len(HOSTS) + [f"install {NEW.version}"] * len(
        HOSTS
    )


def test_each_host_is_prepared_once_its_own_files_are_there_and_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging makes a host's copies as soon as its files arrived (no host waits for the
    slowest upload); the rollout then prepares none of them a second time."""
    world = World(tmp_path, "rolling", monkeypatch)
    sending, preparing = FakeNode.upload, FakeNode.prepare
    first_prepared, waited = threading.Event(), list[bool]()

    def upload(node: FakeNode, local: Path, sha256: str, check: bool = True) -> int:
        if node.host == HOSTS[-1] and not waited:  # the slowest upload, until HOSTS[0] is done
            waited.append(first_prepared.wait(timeout=5))
        return sending(node, local, sha256, check)

    def prepare(node: FakeNode, *args: Any) -> int:
        done = preparing(node, *args)
        if node.host == HOSTS[0]:
            first_prepared.set()
        return done

    monkeypatch.setattr(FakeNode, "upload", upload)
    monkeypatch.setattr(FakeNode, "prepare", prepare)
    world.run()
    assert waited == [True], "the first host waited for the last one's upload"
    for host in HOSTS:
        mine = [what for label, what in world.cluster.events if label == host]
        steps = [what.split()[0] for what in mine if what.startswith(("upload", "prepare"))]
        assert steps == ["upload"] * len(NEW.blobs) + ["prepare"], (host, mine)


def test_a_host_whose_staging_failed_leaves_no_copies_on_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    sending = FakeNode.upload

    def upload(node: FakeNode, local: Path, sha256: str, check: bool = True) -> int:
        if node.host == HOSTS[-1]:
            raise NodeError(f"{node.host}: disk full")
        return sending(node, local, sha256, check)

    monkeypatch.setattr(FakeNode, "upload", upload)
    with pytest.raises(RolloutError, match="staging failed; no node was restarted"):
        world.run()
    events = world.cluster.events
    prepared = sorted(host for host, what in events if what.startswith("prepare"))
    assert prepared == sorted(HOSTS[:-1])
    assert sorted(host for host, what in events if what.startswith("discard")) == prepared
    assert not [e for e in events if e[1].startswith(("lb", "install", "restart"))]


def test_a_host_whose_copies_failed_half_way_has_them_removed_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node whose copying failed after some of its files (a full disk at the WAR) has
    those copies removed with everyone else's."""
    world = World(tmp_path, "rolling", monkeypatch)
    preparing = FakeNode.prepare

    def prepare(node: FakeNode, *args: Any, **kw: Any) -> int:
        if node.host == HOSTS[1]:
            raise NodeError(f"{node.host}: preparing the release's files failed: disk full")
        return preparing(node, *args, **kw)

    monkeypatch.setattr(FakeNode, "prepare", prepare)
    with pytest.raises(RolloutError, match="preparing the release's files failed; no node"):
        world.run()
    discarded = sorted(host for host, what in world.cluster.events if what.startswith("discard"))
    assert discarded == sorted(HOSTS)
    assert not [e for e in world.cluster.events if e[1].startswith(("lb", "install", "restart"))]


def test_a_stopped_rollout_discards_the_copies_of_the_nodes_it_did_not_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, "rolling", monkeypatch)
    world.cluster.hosts[HOSTS[0]].broken = True
    with pytest.raises(RolloutError):
        world.run()
    discarded = [host for host, what in world.cluster.events if what.startswith("discard")]
    assert discarded == list(HOSTS[1:])

"""Planning a rollout: what a node is sent, which node is skipped, what is kept."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import cast

import pytest

from fabfile.app.appdir import AppDir
from fabfile.app.release import Release
from fabfile.cluster.holdings import Holdings
from fabfile.cluster.probe import Status
from fabfile.engine.fanout import each
from fabfile.engine.plan import Plan
from fabfile.engine.pruning import _kept_blobs
from fabfile.engine.rollout import Rollout
from fabfile.engine.strategies.contract import Setup
from fabfile.engine.strategies.rolling import Rolling
from fabfile.engine.target import Target
from fabfile.records.history import Action
from tests.fakes import node_configs
from tests.unit.helpers import release


class Quiet:
    def phase(self, host: str, phase: object, detail: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def ask(self, question: str, keys: str) -> str:
        return ""


def rollout(
    tmp_path: Path, target: Release, sources: dict[str, Path], force: bool = False
) -> Rollout:
    nodes = node_configs(tmp_path, "hosts = web1", "user = u", "keep_releases = 2")
    plan = Plan(Action.DEPLOY, target, sources, nodes, force)
    return Rollout(AppDir(tmp_path), plan, Rolling(Setup()), Quiet())


def holdings(current: Release | None, blobs: frozenset[str], *installed: Release) -> Holdings:
    """What a node holds; the files at its config paths are the current release's."""
    files = (("config", current.config), ("jettyrc", current.jettyrc)) if current else ()
    return Holdings("/home/u", 10**9, blobs, current, installed, files=files)


def answering(target: Release) -> Status:
    return Status("web1", "http://web1/status", True, "", 200, target.coordinates, target.version)


def test_a_node_is_sent_only_the_blobs_it_lacks(tmp_path: Path) -> None:
    new, old = release(2), release(1)
    plan = rollout(tmp_path, new, {})
    target = plan.targets[0]
    target.holdings = holdings(old, old.blobs | {new.config})
    assert plan.missing(target) == sorted({new.war, new.jettyrc})


def test_a_node_on_the_release_that_says_so_is_skipped_unless_forced(tmp_path: Path) -> None:
    current = release(2)
    for force, expected in ((False, True), (True, False)):
        plan = rollout(tmp_path, current, {}, force=force)
        target = plan.targets[0]
        target.holdings = holdings(current, current.blobs)
        target.status = answering(current)
        assert plan.unchanged(target) is expected


@pytest.mark.parametrize(
    ("kind", "name"), [("config", "config.properties"), ("jettyrc", ".jettyrc")]
)
def test_a_node_whose_config_file_was_edited_is_deployed_again(
    tmp_path: Path, kind: str, name: str
) -> None:
    current = release(2)
    plan = rollout(tmp_path, current, {})
    target = plan.targets[0]
    held = holdings(current, current.blobs)
    edited = dataclasses.replace(held, files=(*held.files, (kind, "e" * 64)))
    for found, drift in ((held, []), (edited, [name])):
        target.holdings, target.status = found, answering(current)
        assert (plan.drift(target), plan.unchanged(target)) == (drift, not drift)


@pytest.mark.parametrize(
    "status",
    [
        Status("web1", "u", False, "connection refused"),
        Status("web1", "u", True, "", 200, "com.example:shop", "1.0.1"),
    ],
)
def test_a_node_recorded_on_the_release_but_not_answering_it_is_redeployed(
    tmp_path: Path, status: Status
) -> None:
    current = release(2)
    plan = rollout(tmp_path, current, {})
    target = plan.targets[0]
    target.holdings = holdings(current, current.blobs)
    target.status = status
    assert not plan.unchanged(target)


def test_a_node_lacking_a_blob_the_coordinator_cannot_send_is_refused(tmp_path: Path) -> None:
    wanted = release(2)
    plan = rollout(tmp_path, wanted, {})
    target: Target = plan.targets[0]
    target.holdings = holdings(None, frozenset())
    message = plan.room(target, target.holdings)
    assert "web1: does not hold 3 file(s)" in message and "deploy that WAR explicitly" in message


def test_no_room_is_refused_with_the_figures(tmp_path: Path) -> None:
    wanted = release(2)
    war = tmp_path / "shop.war"
    war.write_bytes(b"x" * 4096)
    plan = rollout(tmp_path, wanted, {sha: war for sha in wanted.blobs})
    target = plan.targets[0]
    target.holdings = Holdings("/home/u", 1024, frozenset(), None, ())
    assert "1 MiB free" in plan.room(target, target.holdings)


def test_pruning_keeps_the_newest_releases_and_the_current(tmp_path: Path) -> None:
    r1, r2, r3 = release(1), release(2), release(3)
    plan = rollout(tmp_path, release(4), {})
    target = plan.targets[0]
    target.holdings = holdings(r3, r1.blobs | r2.blobs | r3.blobs, r1, r2, r3)
    kept = _kept_blobs(target)
    assert r3.blobs <= kept and r2.blobs <= kept and not (r1.blobs & kept)


def test_logging_pushes_do_not_count_against_the_releases_kept(tmp_path: Path) -> None:
    r1, r2 = release(1), release(2)
    pushes = [dataclasses.replace(r2, logback=f"{n:064x}") for n in range(5000, 5006)]
    plan = rollout(tmp_path, release(3), {})
    target = plan.targets[0]
    held = r1.blobs | r2.blobs | {p.logback for p in pushes}
    target.holdings = holdings(pushes[-1], held, r1, r2, *pushes)
    assert r1.blobs <= _kept_blobs(target)  # keep_releases counts r1 and r2, not the pushes


@pytest.mark.parametrize(("scans", "live"), [(True, True), (False, False)])
def test_a_node_on_the_release_but_for_logback_is_unchanged_if_logback_rereads_it(
    tmp_path: Path, scans: bool, live: bool
) -> None:
    scan = ' scan="true"' if scans else ""
    xml = tmp_path / "logback.xml"
    xml.write_text(f"<configuration{scan}><root level='DEBUG'/></configuration>")
    wanted = dataclasses.replace(release(2), logback="d" * 64)
    plan = rollout(tmp_path, wanted, {"d" * 64: xml})
    target = plan.targets[0]
    running = dataclasses.replace(wanted, logback="e" * 64)
    target.holdings = holdings(running, running.blobs)
    target.status = answering(wanted)
    assert plan.unchanged(target) is live
    assert ("web1" in plan.logging_live) is live


def test_a_ctrl_c_during_parallel_work_waits_for_every_call_then_interrupts() -> None:
    """An upload cut off in its thread would go on after the rollout ended: every call
    that began has ended when the interruption is raised (one not yet begun never
    begins: `fabfile.cluster.inflight`)."""
    begun: list[int] = []
    finished: list[int] = []

    def work(target: object) -> int:
        begun.append(cast(int, target))
        if target == 0:
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        finished.append(cast(int, target))
        return 0

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            each(work, cast(list[Target], [0, 1, 2]))
    finally:
        signal.signal(signal.SIGINT, before)
    assert 0 in begun and sorted(finished) == sorted(begun)

"""Retire never blocks a rollback: the wait for sessions holds no lock; the app's lock is
taken only for a round of undeploys, and what a rollback verified meanwhile is read under
it, so the version it made newest is never retired."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from fabfile.app.appdir import AppDir
from fabfile.app.config import NodeConfig
from fabfile.cluster.manager import Deployed
from fabfile.commands import retiring
from fabfile.commands.options import Options
from fabfile.engine import clusterlock, retirement
from fabfile.errors import ExitCode
from fabfile.records.history import Action, History, HostRecord, Record, Result
from fabfile.records.lock import Lock
from tests.unit.test_parallel import FakeManager

A, B, C = "000001-1.0", "000002-1.1", "000003-1.0"  # C: 1.0 again, a rollback's tag


class NodesFree:
    """The nodes' deploy lock (`fabfile.engine.clusterlock`) stood in for: always free, so
    these tests are about the app directory's lock and when retire takes it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> NodesFree:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def hold(self) -> None:
        pass


@pytest.fixture
def options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Options:
    (tmp_path / ".config").write_text(
        "[deploy]\nhosts = web1\nuser = u\nstrategy = parallel\nmanager_user = m\n"
        "retire_timeout = 5\n"
    )
    monkeypatch.setattr(retirement, "POLL", 0.01)
    monkeypatch.setattr(clusterlock, "ClusterLock", NodesFree)  # `locks` loads it when used
    console = Console(file=io.StringIO(), width=200)
    return Options(AppDir(tmp_path), console=console)


def managed(
    monkeypatch: pytest.MonkeyPatch, held: list[Deployed], hook: Callable[[int], None]
) -> FakeManager:
    """A manager holding ``held`` on web1; ``hook(n)`` runs at its n-th listing."""
    manager = FakeManager({"web1": held})
    listed = manager.versions
    looks = 0

    def versions(node: NodeConfig) -> list[Deployed]:
        nonlocal looks
        looks += 1
        hook(looks)
        return listed(node)

    manager.versions = versions  # type: ignore[method-assign]
    monkeypatch.setattr(retiring.Manager, "for_nodes", lambda nodes: manager)
    return manager


def printed(options: Options) -> str:
    file = options.console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_a_rollback_takes_the_lock_while_retire_waits_and_retire_waits_for_it(
    options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollback = Lock(options.app.lock_path, "deploy rollback")
    manager: FakeManager

    def meanwhile(look: int) -> None:
        if look == 1:  # retire waits for A's last session: the lock is free to take
            rollback.acquire()
            manager.held["web1"][0] = Deployed(A, "running", 0)  # the session ended
        if look == 3:  # the rollback is over
            rollback.release()

    manager = managed(
        monkeypatch, [Deployed(A, "running", 1), Deployed(B, "running", 0)], meanwhile
    )
    assert retiring.retire_old(options) == ExitCode.OK
    assert manager.undeployed == [("web1", A)]
    said = printed(options)
    assert "another deploy of this app is running" in said and "`deploy rollback`" in said
    assert "retire undeploys nothing while that runs" in said
    assert not options.app.lock_path.exists()  # retire let go of it too


def test_retire_locked_out_to_the_end_says_so_and_what_to_run(
    options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollback = Lock(options.app.lock_path, "deploy rollback")
    rollback.acquire()
    try:
        managed(
            monkeypatch, [Deployed(A, "running", 0), Deployed(B, "running", 0)], lambda look: None
        )
        assert retiring.retire_old(options, now=True) == ExitCode.NODE_FAILED
    finally:
        rollback.release()
    said = printed(options)
    assert "retire stopped waiting, another run holding the lock" in said
    assert "keeps serving; run deploy retire --now --app-dir" in said


def test_what_a_rollback_verified_meanwhile_is_read_under_the_lock(
    options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy verified B; a rollback then verified C (1.0 again, newest). B's users
    are still on it: B is kept for them, not as the newest verified version."""
    history = History(options.app.history_path)
    history.append(Record(Action.DEPLOY, Result.OK, "", hosts={"web1": verified(B)}))

    def rollback_done(look: int) -> None:
        if look == 1:
            history.append(Record(Action.ROLLBACK, Result.OK, "", hosts={"web1": verified(C)}))

    held = [Deployed(A, "running", 0), Deployed(B, "running", 2), Deployed(C, "running", 0)]
    config = options.app.path / ".config"
    config.write_text(config.read_text().replace("retire_timeout = 5", "retire_timeout = 0.05"))
    options = Options(AppDir(options.app.path), console=options.console)
    manager = managed(monkeypatch, held, rollback_done)
    assert retiring.retire_old(options) == ExitCode.NODE_FAILED  # B holds its 2 sessions
    assert manager.undeployed == [("web1", A)]
    assert "web1: 1.1 (##000002-1.1), 2 session(s)" in printed(options)


def verified(tag: str) -> HostRecord:
    return HostRecord("deployed", tag=tag)

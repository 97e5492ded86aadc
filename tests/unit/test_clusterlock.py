"""The deploy lock on every target: all or nothing, the first host alone, stale locks taken
over, --lock-wait, the heartbeat, release; each node a real ``sh`` with its own HOME."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fabfile.app.appdir import AppDir
from fabfile.app.config import NodeConfig
from fabfile.cluster import node, sshport
from fabfile.cluster.holdings import Holdings
from fabfile.cluster.layout import Layout
from fabfile.cluster.node import Node
from fabfile.cluster.nodelock import NodeLock
from fabfile.commands import locks, unlock
from fabfile.commands.options import Options
from fabfile.engine import clusterlock, pruning
from fabfile.engine.clusterlock import ClusterLock
from fabfile.engine.plan import Plan
from fabfile.engine.rollout import Rollout
from fabfile.engine.strategies.contract import Setup
from fabfile.engine.strategies.rolling import Rolling
from fabfile.engine.target import Target
from fabfile.errors import ExitCode, Interrupted, LockError, NodeError, PreflightError
from fabfile.records.history import Action, History, Result
from fabfile.records.unreleased import Unreleased
from tests.fakes import node_configs
from tests.unit.helpers import release


class ShNode(Node):
    """A `Node` whose scripts run in a local ``sh``, HOME being the host's own directory;
    a host named in ``down`` cannot be reached."""

    homes: Path
    down: set[str] = set()  # noqa: RUF012 - set per test
    events: list[tuple[str, str]] = []  # noqa: RUF012 - (what, host) in order, set per test

    def open(self) -> None:
        if self.host in self.down:
            raise NodeError(f"{self.host}: sshd at {self.host}:22 refused the connection")
        self.events.append(("open", self.host))

    def _exec(
        self, script: str, what: str, timeout: float | None = None, stdin: bytes = b""
    ) -> Any:
        if self.host in self.down:
            raise NodeError(f"{self.host}: sshd at {self.host}:22 refused the connection")
        self.events.append(("run", self.host))
        home = self.homes / self.host
        home.mkdir(exist_ok=True)
        done = subprocess.run(
            ["sh", "-c", script],
            env={"HOME": str(home), "PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            timeout=30,
        )
        return SimpleNamespace(exited=done.returncode, stdout=done.stdout, stderr=done.stderr)

    def beside(self, script: str, what: str, timeout: float) -> str:
        return self.run(script, what)


@pytest.fixture
def nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[NodeConfig, ...]:
    homes = tmp_path / "homes"
    homes.mkdir()
    monkeypatch.setattr(ShNode, "homes", homes, raising=False)
    monkeypatch.setattr(ShNode, "down", set())
    monkeypatch.setattr(ShNode, "events", [])
    return node_configs(tmp_path, "hosts = web3, web1, web2", "user = u")


def lock_of(nodes: tuple[NodeConfig, ...], host: str) -> NodeLock | None:
    path = ShNode.homes / host / Layout.of(nodes[0]).deploy_lock[2:]
    now = float(Path("/proc/uptime").read_text().split()[0])  # the node's clock: this one's
    return NodeLock.parse(path.read_text(), now) if path.exists() else None


def touched(nodes: tuple[NodeConfig, ...], host: str) -> bool:
    return (ShNode.homes / host / Layout.of(nodes[0]).deploy_lock_mutex[2:]).exists()


def cluster_lock(nodes: tuple[NodeConfig, ...], command: str, **kw: Any) -> ClusterLock:
    return ClusterLock(nodes, command, node=ShNode, **kw)


def test_taken_on_every_target_and_released_by_the_context(
    nodes: tuple[NodeConfig, ...],
) -> None:
    with cluster_lock(nodes, "deploy a.war") as lock:
        taken = lock.take(read=True)
        assert lock.held == ["web1", "web2", "web3"]
        assert taken.errors == {}
        assert set(taken.holdings) == {"web1", "web2", "web3"}  # read in the same round trip
        assert taken.holdings["web1"].home == str(ShNode.homes / "web1")
        for host in ("web1", "web2", "web3"):
            held = lock_of(nodes, host)
            assert held is not None and held.token == lock.token
            assert held.holder is not None and held.holder.command == "deploy a.war"
    assert all(lock_of(nodes, host) is None for host in ("web1", "web2", "web3"))


def test_a_node_held_by_another_run_refuses_the_whole_run_naming_the_holder(
    nodes: tuple[NodeConfig, ...],
) -> None:
    with cluster_lock(nodes[2:], "deploy other.war") as other:  # web2 only
        other.hold()
        with cluster_lock(nodes, "deploy mine.war") as mine, pytest.raises(LockError) as caught:
            mine.take(read=True)
        message = str(caught.value)
        assert "the deploy lock is held on web2 by " in message
        assert "(pid " in message and "`deploy other.war`" in message
        assert "nothing was changed" in message and "--lock-wait SECONDS" in message
        assert "`deploy unlock`" in message
        assert lock_of(nodes, "web1") is None and lock_of(nodes, "web3") is None  # let go
        held = lock_of(nodes, "web2")
        assert held is not None and held.token == other.token


def test_the_first_host_is_taken_alone_so_a_run_refused_there_touches_no_other(
    nodes: tuple[NodeConfig, ...],
) -> None:
    first = tuple(node for node in nodes if node.host == "web1")
    with cluster_lock(first, "deploy other.war") as other:
        other.hold()
        with cluster_lock(nodes, "deploy mine.war") as mine, pytest.raises(LockError):
            mine.take()
    assert not touched(nodes, "web2") and not touched(nodes, "web3")


def test_runs_racing_for_the_same_nodes_one_wins(nodes: tuple[NodeConfig, ...]) -> None:
    for _ in range(5):
        runs = [cluster_lock(nodes, f"deploy {n}.war") for n in range(4)]
        outcomes: list[str] = []
        threads = [threading.Thread(target=_race, args=(lock, outcomes)) for lock in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["refused", "refused", "refused", "took"]
        for lock in runs:
            lock.close()


def _race(lock: ClusterLock, outcomes: list[str]) -> None:
    try:
        lock.take()
        outcomes.append("took")
    except LockError:
        outcomes.append("refused")


def test_a_stale_lock_is_taken_over_saying_whose_it_was(nodes: tuple[NodeConfig, ...]) -> None:
    killed = cluster_lock(nodes, "deploy killed.war")
    killed.take()
    killed._stop_renewing()  # as SIGKILL leaves it: nobody renews it, nobody releases it
    for host in ("web1", "web2", "web3"):
        expire(nodes, host)
    said: list[str] = []
    with cluster_lock(nodes, "deploy next.war", say=said.append) as lock:
        lock.take()
        assert lock.held == ["web1", "web2", "web3"]
    assert len(said) == 1
    assert said[0].startswith("took over the deploy lock on web1, web2, web3, left by ")
    assert "`deploy killed.war`" in said[0] and "its lease ended" in said[0]


def expire(nodes: tuple[NodeConfig, ...], host: str) -> None:
    """End the lease of the lock on ``host`` (as the time since its last renewal would)."""
    path = ShNode.homes / host / Layout.of(nodes[0]).deploy_lock[2:]
    taken, renewed, _, rest = path.read_text().split(" ", 3)
    path.write_text(f"{taken} {renewed} {renewed} {rest}")


def test_lock_wait_waits_for_the_holder_saying_whom(nodes: tuple[NodeConfig, ...]) -> None:
    other = cluster_lock(nodes, "deploy other.war")
    other.hold()
    timer = threading.Timer(1.0, other.close)
    timer.start()
    said: list[str] = []
    started = time.monotonic()
    try:
        with cluster_lock(nodes, "deploy mine.war", wait=20, say=said.append) as mine:
            mine.take()
            assert mine.held == ["web1", "web2", "web3"]
    finally:
        timer.join()
    assert 0.9 < time.monotonic() - started < 10
    assert len(said) == 1 and said[0].startswith("waiting up to 20 s for the deploy lock on ")
    assert "`deploy other.war`" in said[0]


def test_lock_wait_gives_up_after_that_time(nodes: tuple[NodeConfig, ...]) -> None:
    with cluster_lock(nodes, "deploy other.war") as other:
        other.hold()
        started = time.monotonic()
        mine = cluster_lock(nodes, "deploy mine.war", wait=1.5)
        with mine, pytest.raises(LockError, match=r"^after waiting 1\.5 s, the deploy lock"):
            mine.take()
        assert 1.4 < time.monotonic() - started < 6


def test_an_unreachable_node_refuses_hold_and_the_others_are_let_go(
    nodes: tuple[NodeConfig, ...],
) -> None:
    ShNode.down.add("web2")
    with cluster_lock(nodes, "deploy rollback") as lock:
        assert lock.take().errors == {
            "web2": "web2: sshd at web2:22 refused the connection"
        }  # pre-flight refuses with it
        lock.release()
        with pytest.raises(PreflightError, match="could not be taken on 1 of 3 node"):
            lock.hold()
    assert lock_of(nodes, "web1") is None and lock_of(nodes, "web3") is None


def test_the_holder_renews_its_lease(
    nodes: tuple[NodeConfig, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clusterlock, "RENEW", 0.2)
    with cluster_lock(nodes, "deploy a.war") as lock:
        lock.hold()
        first = lock_of(nodes, "web1")
        time.sleep(1.0)
        later = lock_of(nodes, "web1")
    assert first is not None and later is not None
    assert later.renewed > first.renewed and later.taken == first.taken


def test_a_lock_lost_to_another_run_is_said_once(
    nodes: tuple[NodeConfig, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clusterlock, "RENEW", 0.2)
    said: list[str] = []
    with cluster_lock(nodes, "deploy a.war", say=said.append) as lock:
        lock.hold()
        path = ShNode.homes / "web2" / Layout.of(nodes[0]).deploy_lock[2:]
        line = path.read_text().replace(lock.token, "someone-else")
        path.write_text(line)
        time.sleep(1.0)
    assert len(said) == 1
    assert said[0].startswith("warning: the deploy lock on web2 is now held by ")
    assert path.read_text() == line  # the end of this run leaves the other's lock alone


def test_status_lines_name_the_holder_once_per_run(nodes: tuple[NodeConfig, ...]) -> None:
    found: dict[str, locks.Found] = {host: None for host in ("web1", "web2", "web3")}
    with cluster_lock(nodes, "deploy a.war") as lock:
        lock.hold()
        for host in found:
            found[host] = lock_of(nodes, host)
    found["web3"] = "web3: sshd at web3:22 refused the connection"
    shown = locks.lines(found)
    assert len(shown) == 2
    assert shown[0].startswith("lock: held on web1, web2 by ")
    assert shown[1] == "lock: not read on web3 (web3: sshd at web3:22 refused the connection)"
    assert locks.lines(dict.fromkeys(found)) == []


def test_unlock_clears_a_stale_lock_and_refuses_a_live_one_unless_forced(
    nodes: tuple[NodeConfig, ...], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(node, "Node", ShNode)  # what `locks` loads when it reads over SSH
    monkeypatch.setattr(sshport, "turned_away", lambda configs: {})  # the hosts are made up
    monkeypatch.setattr(unlock, "Node", ShNode)
    options = Options(_app(tmp_path, monkeypatch, nodes))
    with cluster_lock(nodes, "deploy live.war") as live:
        live.hold()
        with pytest.raises(LockError, match=r"a run renews it, so it was not cleared"):
            unlock.unlock(options)
        assert lock_of(nodes, "web1") is not None
        live._stop_renewing()
        assert unlock.unlock(options, force=True) == 0
        assert all(lock_of(nodes, h) is None for h in ("web1", "web2", "web3"))


def _app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: tuple[NodeConfig, ...]) -> AppDir:
    """An app directory whose nodes are ``nodes`` (its .config was written by the fixture)."""
    monkeypatch.setattr(Options, "nodes", property(lambda self: nodes))
    return AppDir(tmp_path)


class Quiet:
    def phase(self, host: str, phase: object, detail: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def ask(self, question: str, keys: str) -> str:
        return ""


def test_a_rollout_refused_by_the_lock_is_recorded_as_refused(
    nodes: tuple[NodeConfig, ...], tmp_path: Path
) -> None:
    plan = Plan(Action.DEPLOY, release(2), {}, nodes)
    with cluster_lock(nodes[2:], "deploy other.war") as other:  # web2 only
        other.hold()
        with cluster_lock(nodes, "deploy mine.war") as mine:
            run = Rollout(AppDir(tmp_path), plan, Rolling(Setup()), Quiet(), mine.node, mine)
            with pytest.raises(LockError) as caught:
                run.run()
            assert caught.value.exit_code == ExitCode.LOCKED
            # the node another run holds is not tidied (nor read) by this one
            assert not (ShNode.homes / "web2" / "releases" / "shop" / "blobs").exists()
    [record] = History(AppDir(tmp_path).history_path).records()
    assert record.outcome == Result.REFUSED and "`deploy other.war`" in record.message


def test_a_lock_left_on_an_unreachable_node_is_taken_over_by_the_next_run_from_here(
    nodes: tuple[NodeConfig, ...], tmp_path: Path
) -> None:
    unreleased = Unreleased(tmp_path / ".deploy.lock")
    said: list[str] = []
    with cluster_lock(nodes, "deploy a.war", say=said.append, unreleased=unreleased) as first:
        first.hold()
        ShNode.down.add("web2")  # sshd goes down before the run's end
    assert said[-1].startswith("the deploy lock could not be released on web2 (web2: sshd at ")
    assert unreleased.tokens() == {"web2": [first.token]}
    ShNode.down.clear()
    elsewhere = cluster_lock(nodes, "deploy b.war")  # another copy of the app directory
    with elsewhere, pytest.raises(LockError, match="held on web2 by "):
        elsewhere.take()
    said.clear()
    with cluster_lock(nodes, "deploy c.war", say=said.append, unreleased=unreleased) as again:
        again.take()
        assert again.held == ["web1", "web2", "web3"]
    assert said == [
        f"took over the deploy lock on web2, left by {first.holder.describe()}: that run of "
        "this app directory ended without releasing it there (the node could not be reached "
        "at its end)"
    ]
    assert unreleased.tokens() == {} and not unreleased.path.exists()


def test_a_node_that_went_silent_in_the_run_is_not_dialled_again_to_release(
    nodes: tuple[NodeConfig, ...], tmp_path: Path
) -> None:
    """A partitioned node would hold the run's end for connect_timeout: its lock is left
    to the next run from here (or to its lease) and that is said."""
    unreleased = Unreleased(tmp_path / ".deploy.lock")
    said: list[str] = []
    with cluster_lock(nodes, "deploy a.war", say=said.append, unreleased=unreleased) as lock:
        lock.hold()
        silent = lock.node(next(n for n in nodes if n.host == "web2"))
        silent.silent("installing the release", "30 s (command_timeout)")
    assert said == [
        "the deploy lock could not be released on web2 (web2 went silent while installing "
        "the release); the next run from this app directory takes it over, and for others "
        "it goes stale 20 s after its last renewal"
    ]
    assert unreleased.tokens() == {"web2": [lock.token]}
    assert lock_of(nodes, "web2") is not None  # left there: never dialled
    assert lock_of(nodes, "web1") is None and lock_of(nodes, "web3") is None


def test_after_an_interruption_the_lock_is_released_without_a_new_login(
    nodes: tuple[NodeConfig, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partitioned node would hold the interrupted run's end for connect_timeout: only
    connections still open release it; the others note it for the next run from here."""
    unreleased = Unreleased(tmp_path / ".deploy.lock")
    severed = {"web2"}  # its connection cut by the interruption

    def beside(self: ShNode, script: str, what: str, timeout: float) -> str:
        if self.host in severed:
            raise NodeError(f"{self.host}: {what}: not connected")
        return self.run(script, what)

    monkeypatch.setattr(ShNode, "beside", beside)
    logins: list[tuple[str, str]] = []  # every command run over a connection of its own
    run = ShNode._exec

    def recorded(self: ShNode, script: str, what: str, timeout: float | None = None) -> Any:
        logins.append((self.host, what))
        return run(self, script, what, timeout)

    monkeypatch.setattr(ShNode, "_exec", recorded)
    lock = cluster_lock(nodes, "deploy a.war", unreleased=unreleased)
    with pytest.raises(Interrupted), lock:
        lock.hold()
        raise Interrupted("interrupted at node web2 in phase 'staging' by SIGTERM")
    assert ("web2", "releasing the deploy lock") not in logins
    assert unreleased.tokens() == {"web2": [lock.token]}
    assert lock_of(nodes, "web1") is None and lock_of(nodes, "web3") is None


def test_every_other_host_is_dialled_while_the_first_decides_alone(
    nodes: tuple[NodeConfig, ...],
) -> None:
    dialled = threading.Event()

    class Dialling(ShNode):
        def open(self) -> None:
            super().open()
            if {host for what, host in self.events if what == "open"} >= {"web2", "web3"}:
                dialled.set()

        def _exec(
            self, script: str, what: str, timeout: float | None = None, stdin: bytes = b""
        ) -> Any:
            if self.host == "web1" and not dialled.wait(5):  # the first's try waits for them
                self.events.append(("alone", self.host))
            return super()._exec(script, what, timeout, stdin)

    with ClusterLock(nodes, "deploy a.war", node=Dialling) as lock:
        lock.take(read=True)
        assert lock.held == ["web1", "web2", "web3"]
    events = ShNode.events
    assert ("alone", "web1") not in events  # the logins overlapped the first's try
    runs = [host for what, host in events if what == "run"]
    assert runs[0] == "web1"  # still decides alone
    assert sorted(runs[1:4]) == ["web1", "web2", "web3"]  # then its read, beside the others'


def test_a_host_that_cannot_be_dialled_is_said_and_the_run_refused(
    nodes: tuple[NodeConfig, ...],
) -> None:
    ShNode.down = {"web3"}
    with cluster_lock(nodes, "deploy a.war") as lock:
        taken = lock.take(read=True)
        assert set(taken.errors) == {"web3"} and "refused the connection" in taken.errors["web3"]
        assert lock.held == ["web1", "web2"]
    assert ("run", "web3") not in ShNode.events  # not dialled a second time


def test_hold_with_read_keeps_the_holdings_for_the_preflight_take(
    nodes: tuple[NodeConfig, ...],
) -> None:
    with cluster_lock(nodes, "deploy rollback") as lock:
        lock.hold(read=True)
        runs = len(ShNode.events)
        taken = lock.take(read=True)  # the pre-flight's: no second round trip
        assert len(ShNode.events) == runs
        assert set(taken.holdings) == {"web1", "web2", "web3"}
        assert taken.holdings["web2"].home == str(ShNode.homes / "web2")
        again = lock.take(read=True)  # kept once only: a later take reads the nodes again
        assert [w for w, _ in ShNode.events[runs:]] == ["run"] * 3
        assert set(again.holdings) == {"web1", "web2", "web3"}


def test_a_run_that_holds_every_host_tries_them_all_at_once(
    nodes: tuple[NodeConfig, ...],
) -> None:
    others = threading.Event()

    class Together(ShNode):
        def _exec(
            self, script: str, what: str, timeout: float | None = None, stdin: bytes = b""
        ) -> Any:
            if self.host != "web1":
                others.set()
            elif held and not others.wait(5):
                self.events.append(("alone", self.host))
            return super()._exec(script, what, timeout, stdin)

    held = False
    with ClusterLock(nodes, "deploy rollback", node=Together) as lock:
        lock.hold()
        held = True
        others.clear()  # set by hold's own tries
        lock.take(read=True)
        assert lock.held == ["web1", "web2", "web3"]
    assert ("alone", "web1") not in ShNode.events


def test_the_holdings_read_covers_every_instance_of_a_host(
    nodes: tuple[NodeConfig, ...], tmp_path: Path
) -> None:
    where = tmp_path / "blue-green"
    where.mkdir()
    colours = node_configs(
        where,
        "hosts = web1, web2",
        "user = u",
        "strategy = blue-green",
        "instances = blue, green",
        "lb_socket = /s",
        "lb_backend = web",
        "war_path = /w/{instance}.war",
        "[instance:blue]",
        "status_url = http://{host}:8081/status",
        "[instance:green]",
        "status_url = http://{host}:8082/status",
    )
    with cluster_lock(colours, "deploy a.war") as lock:
        taken = lock.take(read=True)
    assert set(taken.holdings) == {"web1/blue", "web1/green", "web2/blue", "web2/green"}
    runs = [host for what, host in ShNode.events if what == "run"]
    assert runs[0] == "web1"  # its lock alone, then one read for both its instances
    assert sorted(runs[1:3]) == ["web1", "web2"]  # ... beside web2's lock and read, in one


class Said(ShNode):
    """Records what each script was for, by host; ``web1``'s read fails with ``failing``."""

    said: list[tuple[str, str]] = []  # noqa: RUF012 - set per test
    failing = False

    def _exec(
        self, script: str, what: str, timeout: float | None = None, stdin: bytes = b""
    ) -> Any:
        self.said.append((what, self.host))
        if self.failing and self.host == "web1" and what == "reading the releases directory":
            raise NodeError("web1: reading the releases directory: connection lost")
        return super()._exec(script, what, timeout, stdin)


def test_the_first_hosts_read_waits_for_its_lock_and_runs_beside_the_others_tries(
    nodes: tuple[NodeConfig, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    others = threading.Event()

    class Beside(Said):
        def _exec(
            self, script: str, what: str, timeout: float | None = None, stdin: bytes = b""
        ) -> Any:
            if self.host != "web1":
                others.set()
            elif what == "reading the releases directory" and not others.wait(5):
                self.events.append(("alone", self.host))
            return super()._exec(script, what, timeout, stdin)

    monkeypatch.setattr(Said, "said", [])
    with ClusterLock(nodes, "deploy switch", node=Beside) as lock:
        taken = lock.take(read=True)
        assert lock.held == ["web1", "web2", "web3"] and taken.errors == {}
        assert taken.holdings["web1"].home == str(ShNode.homes / "web1")
        assert lock.node(nodes[1]).home == str(ShNode.homes / "web1")  # nodes[1] is web1's
    assert Said.said[0] == ("taking the deploy lock", "web1")  # alone, and no read yet
    web1 = [what for what, host in Said.said if host == "web1"]
    assert web1[:2] == ["taking the deploy lock", "reading the releases directory"]
    assert ("alone", "web1") not in ShNode.events  # the read overlapped the others' tries
    both = "taking the deploy lock and reading the releases directory"
    assert {host for what, host in Said.said if what == both} == {"web2", "web3"}


def test_a_first_host_whose_read_fails_refuses_hold_and_its_lock_is_let_go(
    nodes: tuple[NodeConfig, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Said, "said", [])
    monkeypatch.setattr(Said, "failing", True)
    with ClusterLock(nodes, "deploy switch", node=Said) as lock:
        with pytest.raises(PreflightError) as caught:
            lock.hold(read=True)
        assert "web1: reading the releases directory: connection lost" in str(caught.value)
        assert lock.held == []
    assert all(lock_of(nodes, host) is None for host in ("web1", "web2", "web3"))


def test_a_single_host_is_taken_and_read_in_one_round_trip(
    nodes: tuple[NodeConfig, ...],
) -> None:
    first = tuple(node for node in nodes if node.host == "web1")
    with cluster_lock(first, "deploy switch") as lock:
        taken = lock.take(read=True)
        assert set(taken.holdings) == {"web1"}
    assert [host for what, host in ShNode.events if what == "run"][:1] == ["web1"]
    assert len([what for what, _ in ShNode.events if what == "run"]) == 2  # and the release


def test_a_runs_pruning_goes_in_the_command_that_releases_the_lock(
    nodes: tuple[NodeConfig, ...],
) -> None:
    """The run's last round trip to each node both prunes and releases (at 100 nodes, one
    fan-out rather than two); a pruning that fails is not the release's failure, and a
    host whose lock this run does not hold gets no script."""
    plan = Plan(Action.DEPLOY, release(2), {}, nodes)
    old, kept = "0" * 64, release(2).war
    with cluster_lock(nodes, "deploy a.war") as lock:
        lock.hold()
        blobs = {
            host: ShNode.homes / host / "releases" / "shop" / "blobs"
            for host in ("web1", "web2", "web3")
        }
        for directory in blobs.values():
            directory.mkdir(parents=True, exist_ok=True)
            (directory / old).write_text("an old release")
            (directory / kept).write_text("a kept one")
        targets = [Target(lock.node(config)) for config in nodes]
        for target in targets:
            target.holdings = Holdings("", 0, frozenset({old, kept}), None, ())
        targets[0].node.config = dataclasses.replace(targets[0].node.config, releases_dir="/x/y")
        ShNode.events.clear()
        pruning.prune(targets, plan, print, lock)
        lock.part_with("elsewhere", "touch never")
    assert [what for what, _ in ShNode.events] == ["run"] * 3  # one command a host: release
    assert all(lock_of(nodes, host) is None for host in ("web1", "web2", "web3"))
    for host, directory in blobs.items():
        gone = host != nodes[0].host  # its pruning failed (no such directory): kept
        assert (directory / old).exists() is not gone, host
        assert (directory / kept).exists()

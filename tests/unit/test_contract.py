"""The contract every strategy must keep, on a fake cluster that records what was done.

Run for each strategy the registry makes available: a failure stops at the
right place, nothing outside the plan is touched, rollback restores,
an interruption leaves the pool serving. Then rolling's own promises: its
order, skip-if-unchanged, drain/ready/maint, and no warm-up after the last
restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from fabfile.app.appdir import AppDir
from fabfile.app.pace import Pace
from fabfile.engine import strategies
from fabfile.engine.phase import Phase
from fabfile.engine.planning import Plan
from fabfile.engine.rollout import NodeFactory, Rollout
from fabfile.engine.strategies.contract import Rollback, Setup, Strategy
from fabfile.engine.target import Outcome
from fabfile.errors import Interrupted, NodeError, RolloutError, explain
from fabfile.records.history import Action, History
from tests.fakes import FakeBalancer, FakeCluster, FakeNode, node_configs
from tests.unit.helpers import release

HOSTS = ("web1.invalid", "web2.invalid", "web3.invalid")  # never resolve: nothing real is hit
OLD, NEW = release(1), release(2)
# The contract in these terms holds for strategies that restart nodes in rotation;
# blue-green keeps the same promises per host, in its own terms: test_bluegreen.py;
# parallel deploys through the Tomcat manager, not the fake nodes: test_parallel.py.
OWN_TESTS = ("blue-green", "parallel")
AVAILABLE = [n for n in strategies.REGISTRY if n not in OWN_TESTS]


class Recorder:
    """A reporter that keeps the phases and notes."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, Phase]] = []
        self.notes: list[str] = []
        self.answers: list[str] = []  # keys pressed at the questions, in order
        self.questions: list[str] = []

    def phase(self, host: str, phase: Phase, detail: str = "") -> None:
        self.phases.append((host, phase))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def ask(self, question: str, keys: str) -> str:
        self.questions.append(question)
        return self.answers.pop(0) if self.answers else ""


class World:
    """A fake cluster on OLD, its balancer, and a way to run plans through a strategy."""

    def __init__(
        self,
        tmp_path: Path,
        name: str,
        monkeypatch: pytest.MonkeyPatch,
        *extra: str,
        sections: tuple[str, ...] = (),
    ) -> None:
        (tmp_path / "config.properties").write_text("")
        (tmp_path / ".jettyrc").write_text("")
        self.nodes = node_configs(
            tmp_path,
            *extra,
            f"hosts = {', '.join(HOSTS)}",
            "user = u",
            "warmup = 0",
            "ready_timeout = 0.3",
            "error_grace = 0.1",
            "poll_interval = 0.01",
            "lb_socket = /nowhere/haproxy.sock",
            "lb_backend = web",
            *sections,
        )
        self.app = AppDir(tmp_path)
        self.cluster = FakeCluster(self.nodes)
        self.cluster.start_on(OLD)
        self.cluster.install(monkeypatch)
        self.balancer = FakeBalancer(self.cluster)
        self.setup = Setup(self.balancer)
        self.name = name
        self.reporter = Recorder()
        self.warmed: list[str] = []
        monkeypatch.setattr(
            Rollout,
            "warm_up",
            lambda rollout, targets, ramp=None: self.warmed.extend(t.host for t in targets),
        )

    def strategy(self) -> Strategy:
        return strategies.build(self.name, self.setup)

    def run(self, target: object = NEW, hosts: tuple[str, ...] = HOSTS, **kw: object) -> Rollout:
        chosen = tuple(node for node in self.nodes if node.host in hosts)
        sources = {sha: self.app.path / ".jettyrc" for sha in target.blobs}  # type: ignore[attr-defined]
        action = kw.pop("action", Action.DEPLOY)
        pace = cast(Pace, kw.pop("pace", Pace()))
        plan = Plan(action, target, sources, chosen, next_step="To roll back: deploy rollback")  # type: ignore[arg-type]
        plan = dataclasses.replace(plan, pace=pace)
        # FakeNode answers what the rollout asks of a Node; the cast says so to mypy.
        factory = cast(NodeFactory, lambda config: FakeNode(self.cluster, config))
        rollout = Rollout(self.app, plan, self.strategy(), self.reporter, node=factory)
        rollout.run()
        return rollout

    def running(self) -> dict[str, str]:
        return {h: s.running.version if s.running else "" for h, s in self.cluster.hosts.items()}


@pytest.fixture(params=AVAILABLE)
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    yield World(tmp_path, request.param, monkeypatch)


# -- the contract ----------------------------------------------------------------


def test_every_node_ends_on_the_release_and_in_rotation(world: World) -> None:
    world.run()
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    assert world.balancer.now == dict.fromkeys(HOSTS, "UP")
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["outcome"] == "ok"
    assert {h["outcome"] for h in entry["hosts"].values()} == {"deployed"}


def test_a_failure_stops_at_that_node_and_leaves_the_rest_alone(world: World) -> None:
    world.cluster.hosts[HOSTS[1]].broken = True  # unhealthy already: it goes first
    with pytest.raises(RolloutError) as caught:
        world.run()
    text = explain(caught.value)
    assert text.startswith(f"{HOSTS[1]}: not verified")
    assert f"Untouched (still on their old release): {HOSTS[0]}, {HOSTS[2]}." in text
    assert "To roll back: deploy rollback" in text
    for host in (HOSTS[0], HOSTS[2]):
        assert not [e for e in world.cluster.of(host) if e.startswith(("install", "restart", "lb"))]
    assert world.balancer.now[HOSTS[1]] != "UP"  # a failed node takes no traffic
    assert world.balancer.now[HOSTS[0]] == "UP" and world.balancer.now[HOSTS[2]] == "UP"
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["outcome"] == "failed"
    assert [entry["hosts"][h]["outcome"] for h in HOSTS] == ["untouched", "failed", "untouched"]


def test_nothing_outside_the_plan_is_touched(world: World) -> None:
    world.run(hosts=HOSTS[:2])
    assert world.cluster.of(HOSTS[2]) == []
    assert world.running()[HOSTS[2]] == OLD.version


def test_rollback_restores_the_previous_release(world: World) -> None:
    world.run()
    strategy = world.strategy()
    assert strategy.rollback == Rollback.REDEPLOY  # the only meaning available so far
    previous = History(world.app.history_path).previous()
    assert previous is None or previous == OLD  # one deploy recorded: OLD came from outside
    world.run(OLD, action=Action.ROLLBACK)
    assert world.running() == dict.fromkeys(HOSTS, OLD.version)
    assert world.balancer.now == dict.fromkeys(HOSTS, "UP")
    sent = History(world.app.history_path).records()[-1].to_json()["hosts"]
    assert [h["bytes_sent"] for h in sent.values()] == [0, 0, 0]  # the nodes kept OLD


def test_an_interruption_leaves_the_pool_serving(world: World) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    world.cluster.hosts[HOSTS[1]].before["restart"] = interrupt
    with pytest.raises(Interrupted) as caught:
        world.run()
    assert f"interrupted at node {HOSTS[1]}" in str(caught.value)
    assert world.balancer.most_out <= 1
    serving = [h for h in HOSTS if world.balancer.now[h] == "UP" and world.running()[h]]
    assert len(serving) >= len(HOSTS) - 1
    assert History(world.app.history_path).records()[-1].to_json()["outcome"] == "interrupted"


# -- rolling's own promises ----------------------------------------------------


@pytest.fixture
def rolling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, "rolling", monkeypatch)


def test_rolling_drains_makes_live_and_readies_one_node_at_a_time(rolling: World) -> None:
    rolling.run()
    changes = [
        (host, what)
        for host, what in rolling.cluster.events
        if what.startswith(("lb", "install", "restart"))
    ]
    expected = []
    for host in HOSTS:
        expected += [(host, "lb DRAIN"), (host, f"install {NEW.version}"), (host, "restart")]
        expected += [(host, "lb UP")]
    assert changes == expected
    assert rolling.balancer.most_out == 1


def test_rolling_skips_nodes_already_on_the_release_and_warms_up_only_between(
    rolling: World,
) -> None:
    rolling.cluster.hosts[HOSTS[2]].installed = rolling.cluster.hosts[HOSTS[2]].running = NEW
    rolling.cluster.blobs[HOSTS[2]] |= NEW.blobs
    rollout = rolling.run()
    assert [t.outcome for t in rollout.targets] == [
        Outcome.DEPLOYED,
        Outcome.DEPLOYED,
        Outcome.UNCHANGED,
    ]
    assert "restart" not in rolling.cluster.of(HOSTS[2])
    assert rolling.warmed == [HOSTS[0]]  # not after the last restart, nor for a skipped node
    assert (HOSTS[2], Phase.SKIPPED) in rolling.reporter.phases


def test_rolling_leaves_a_failed_node_in_maintenance_and_says_so(rolling: World) -> None:
    rolling.cluster.hosts[HOSTS[0]].broken = True
    with pytest.raises(RolloutError) as caught:
        rolling.run()
    assert rolling.balancer.now[HOSTS[0]] == "MAINT"
    assert f"{HOSTS[0]} is left in maintenance in haproxy (web/{HOSTS[0]})" in explain(caught.value)


def test_rolling_puts_a_node_back_when_its_jvm_was_never_restarted(rolling: World) -> None:
    def disk_full() -> None:
        raise NodeError(f"{HOSTS[0]}: installing the release failed (exit 1): No space left")

    rolling.cluster.hosts[HOSTS[0]].before["install"] = disk_full
    with pytest.raises(RolloutError) as caught:
        rolling.run()
    assert rolling.balancer.now[HOSTS[0]] == "UP"  # still runs its verified release
    assert explain(caught.value).startswith(f"{HOSTS[0]}: installing the release failed")
    assert not [e for e in rolling.cluster.of(HOSTS[1]) if e.startswith(("install", "restart"))]


def test_rolling_leaves_a_node_interrupted_mid_restart_drained(rolling: World) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    rolling.cluster.hosts[HOSTS[0]].before["restart"] = interrupt
    with pytest.raises(Interrupted) as caught:
        rolling.run()
    assert rolling.balancer.now[HOSTS[0]] == "DRAIN"
    assert f"{HOSTS[0]} is left in drain in haproxy" in str(caught.value)


def test_rolling_takes_a_hosts_instances_one_at_a_time_and_stages_each_host_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(
        tmp_path,
        "rolling",
        monkeypatch,
        "instances = 1, 2",
        "status_url = http://{host}:808{instance}/status",
        "war_path = /srv/{instance}/root.war",
    )
    labels = [node.label for node in world.nodes]
    assert labels[:2] == [f"{HOSTS[0]}/1", f"{HOSTS[0]}/2"]
    assert world.nodes[1].url == f"http://{HOSTS[0]}:8082/status"
    world.run()
    assert set(world.running().values()) == {NEW.version}
    uploads = [(where, what) for where, what in world.cluster.events if what.startswith("upload")]
    assert len(uploads) == len(HOSTS) * len(NEW.blobs)  # once per host, not per instance
    prunes = [where for where, what in world.cluster.events if what == "prune"]
    assert sorted(prunes) == sorted(labels[::2])  # once per host too
    restarts = [where for where, what in world.cluster.events if what == "restart"]
    assert restarts == labels
    assert world.balancer.most_out == 1
    entry = History(world.app.history_path).records()[-1].to_json()
    assert list(entry["hosts"]) == labels

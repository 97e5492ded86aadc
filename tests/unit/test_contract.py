"""The contract every strategy must keep, on a fake cluster that records what was done.

It runs for every strategy the registry knows and for a fourth one registered only
here (tests/reverse.py): every host ends on the release and serving it, a failure
stops at the right place, nothing outside the plan is touched, rollback restores,
an interruption leaves the pool serving, and the dry run speaks the strategy's
words and changes nothing. Each strategy keeps these in its own terms (`Terms`):
blue-green per host, the release going to its idle colour; parallel through a
fake Tomcat manager, its nodes never leaving haproxy's pool. Then rolling's own
promises: its order, skip-if-unchanged, drain/ready/maint, and no warm-up after
the last restart. (Blue-green's and parallel's own: test_bluegreen.py, test_parallel.py.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, cast

import pytest

from fabfile.app.appdir import AppDir
from fabfile.app.pace import Pace
from fabfile.cluster.balancer import State
from fabfile.cluster.holdings import Holdings
from fabfile.cluster.manager import Manager
from fabfile.engine import strategies
from fabfile.engine.phase import Phase
from fabfile.engine.plan import Plan
from fabfile.engine.rollout import NodeFactory, Rollout
from fabfile.engine.strategies.contract import Rollback, Setup, Strategy
from fabfile.engine.target import Outcome
from fabfile.errors import Interrupted, NodeError, PreflightError, RolloutError, explain
from fabfile.records.history import Action, History
from fabfile.view import preview
from tests.fakes import FakeBalancer, FakeCluster, FakeManager, FakeNode, node_configs
from tests.reverse import Reverse, register
from tests.unit.helpers import release

HOSTS = ("web1.invalid", "web2.invalid", "web3.invalid")  # never resolve: nothing real is hit
OLD, NEW = release(1), release(2)
# what changes what a node runs, or whether it takes traffic
CHANGES = ("install", "restart", "lb", "deploy", "undeploy")


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
        self.terms = Terms(name)
        self.reporter = Recorder()
        self.warmed: list[str] = []
        monkeypatch.setattr(
            Rollout,
            "warm_up",
            lambda rollout, targets, ramp=None: self.warmed.extend(t.host for t in targets),
        )

    def strategy(self) -> Strategy:
        return strategies.build(self.name, self.setup)

    def rollout(
        self, target: object = NEW, hosts: tuple[str, ...] = HOSTS, **kw: object
    ) -> Rollout:
        """The rollout of ``target`` to ``hosts``, through the strategy, on the fake nodes."""
        chosen = tuple(node for node in self.nodes if node.host in hosts)
        self.cluster.know(target)  # type: ignore[arg-type]
        sources = {sha: self.app.path / ".jettyrc" for sha in target.blobs}  # type: ignore[attr-defined]
        action = kw.pop("action", Action.DEPLOY)
        pace = cast(Pace, kw.pop("pace", Pace()))
        plan = Plan(action, target, sources, chosen, next_step="To roll back: deploy rollback")  # type: ignore[arg-type]
        plan = dataclasses.replace(plan, pace=pace)
        # FakeNode answers what the rollout asks of a Node; the cast says so to mypy.
        factory = cast(NodeFactory, lambda config: FakeNode(self.cluster, config))
        return Rollout(self.app, plan, self.strategy(), self.reporter, node=factory)

    def run(self, target: object = NEW, hosts: tuple[str, ...] = HOSTS, **kw: object) -> Rollout:
        rollout = self.rollout(target, hosts, **kw)
        rollout.run()
        return rollout

    def running(self) -> dict[str, str]:
        return {h: s.running.version if s.running else "" for h, s in self.cluster.hosts.items()}

    def serving(self) -> dict[str, set[str]]:
        """What haproxy sends each host's users to: the releases its nodes in rotation run."""
        reached: dict[str, set[str]] = {host: set() for host in HOSTS}
        for node in self.nodes:
            running = self.cluster.hosts[node.label].running
            if self.balancer.now[node.label] == "UP" and running is not None:
                reached[node.host].add(running.version)
        return reached


# -- each strategy's terms ----------------------------------------------------------


class Terms:
    """How a strategy keeps the contract, in its own words. By default rolling's: the
    release goes to the node that serves, taken out of rotation and restarted, and the
    node that answers no /status goes first."""

    own: ClassVar[tuple[str, ...]] = ()  # .config lines of the strategy's own
    sections: ClassVar[tuple[str, ...]] = ()
    rollback: ClassVar[Rollback] = Rollback.REDEPLOY
    done: ClassVar[frozenset[str]] = frozenset({"deployed"})  # outcomes once a deploy is over
    step: ClassVar[str] = "restart"  # what makes the release live (`FakeHost.before`)
    restarts: ClassVar[bool] = True
    in_version: ClassVar[bool] = False  # config.properties is read inside the newest version

    def __init__(self, name: str) -> None:
        self.name = name

    def world(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
        lines = (f"strategy = {self.name}", *self.own)
        made = World(tmp_path, self.name, monkeypatch, *lines, sections=self.sections)
        made.terms = self
        return made

    def new(self, host: str) -> str:
        """The node of ``host`` the release goes to."""
        return host

    def kept(self, host: str) -> list[str]:
        """The nodes of ``host`` a run leaves as they are."""
        return []

    def untouched(self, failed: str) -> list[str]:
        """The nodes left untouched when the release fails on ``failed``'s node, which
        answered no /status before the run."""
        return [host for host in HOSTS if host != failed]


class Colours(Terms):
    """Blue-green: blue serves, green is idle; the release goes to green, then the switch."""

    own = ("instances = blue, green", "war_path = /srv/{instance}/ROOT.war")
    sections = (
        "[instance:blue]",
        "status_url = http://{host}:8080/status",
        "[instance:green]",
        "status_url = http://{host}:8081/status",
    )
    rollback = Rollback.SWITCH_BACK
    done = frozenset({"live", "standby"})
    # An idle colour once verified stays in phase 'waiting for /status' until the warm-up
    # and the switch, and `Rollout._interruption` names the first node in a phase that
    # changes it: a Ctrl-C while web2's green restarts says "interrupted at node
    # web1.invalid/green in phase 'waiting for /status'". The pool still serves.

    def world(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
        made = super().world(tmp_path, monkeypatch)
        for host in HOSTS:
            made.balancer.now[self.new(host)] = State.MAINT
        return made

    def new(self, host: str) -> str:
        return f"{host}/green"

    def kept(self, host: str) -> list[str]:
        return [f"{host}/blue"]

    def untouched(self, failed: str) -> list[str]:
        """Every live colour: nothing is switched before every idle one is verified, and
        the idle colours all start at once (``idle_starts``' default; with ``idle_starts =
        1``, those after the failed one are untouched too: test_bluegreen.py)."""
        return [f"{h}/blue" for h in HOSTS]


class Versions(Terms):
    """Parallel: the release is a Tomcat version beside the running one; no node leaves
    the pool and none restarts."""

    own = ("manager_user = deploy",)
    rollback = Rollback.ROUTE_BACK
    step = "deploy"
    restarts = False
    in_version = True

    def world(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
        made = super().world(tmp_path, monkeypatch)
        manager = cast(Manager, FakeManager(made.cluster))  # what parallel asks of a Manager
        made.setup = Setup(made.balancer, manager=manager)
        return made


TERMS = {
    "rolling": Terms("rolling"),
    "blue-green": Colours("blue-green"),
    "parallel": Versions("parallel"),
    Reverse.name: Terms(Reverse.name),
}
EVERY = [*strategies.REGISTRY, Reverse.name]  # a strategy registered later is run too


@pytest.fixture(params=EVERY)
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    register(monkeypatch)
    terms = TERMS.get(request.param)
    if terms is None:
        pytest.fail(f"strategy {request.param!r}: add its terms to TERMS in test_contract.py")
    yield terms.world(tmp_path, monkeypatch)


# -- the contract ----------------------------------------------------------------


def test_every_host_ends_on_the_release_and_serves_it(world: World) -> None:
    world.run()
    assert world.serving() == {host: {NEW.version} for host in HOSTS}
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["outcome"] == "ok"
    assert {h["outcome"] for h in entry["hosts"].values()} == world.terms.done


def test_a_failure_stops_at_that_node_and_leaves_the_rest_alone(world: World) -> None:
    failing = world.terms.new(HOSTS[1])
    world.cluster.hosts[failing].broken = True  # unhealthy already: it goes first
    with pytest.raises(RolloutError) as caught:
        world.run()
    text = explain(caught.value)
    assert text.startswith(f"{failing}: not verified")
    untouched = world.terms.untouched(HOSTS[1])
    assert f"Untouched (still on their old release): {', '.join(untouched)}." in text
    assert "To roll back: deploy rollback" in text
    for label in untouched:
        assert not [e for e in world.cluster.of(label) if e.startswith(CHANGES)]
    serving = world.serving()
    assert NEW.version not in serving[HOSTS[1]]  # a failed node takes no traffic on it
    assert serving[HOSTS[0]] == serving[HOSTS[2]] == {OLD.version}
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["outcome"] == "failed"
    assert entry["hosts"][failing]["outcome"] == "failed"
    assert {entry["hosts"][label]["outcome"] for label in untouched} == {"untouched"}


def test_nothing_outside_the_plan_is_touched(world: World) -> None:
    world.run(hosts=HOSTS[:2])
    outside = [node.label for node in world.nodes if node.host == HOSTS[2]]
    assert [e for e in world.cluster.events if e[0] in outside] == []
    assert world.serving()[HOSTS[2]] == {OLD.version}


def test_a_sudo_that_wants_a_password_is_refused_before_anything_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.nodes = tuple(dataclasses.replace(node, become_user="jetty") for node in world.nodes)
    read = FakeNode.holdings

    def asked(node: FakeNode, tidy: bool = True) -> Holdings:
        said = "sudo: a password is required " if node.config.host == HOSTS[1] else "ok"
        return dataclasses.replace(read(node, tidy), become=said)

    monkeypatch.setattr(FakeNode, "holdings", asked)
    with pytest.raises(PreflightError) as caught:
        world.run()
    text = explain(caught.value)
    assert text.startswith("pre-flight refused on ")
    assert "nothing was changed" in text
    label = world.terms.new(HOSTS[1])
    assert (
        f"sudo on {label} wants a password for u: add a NOPASSWD rule for u to run commands "
        "as jetty (`u ALL=(jetty) NOPASSWD: ALL` in visudo -f /etc/sudoers.d/wardeploy), "
        "or unset become_user"
    ) in text
    assert not [e for e in world.cluster.events if e[1].startswith(CHANGES)]
    assert world.serving() == {host: {OLD.version} for host in HOSTS}


def test_rollback_restores_the_previous_release(world: World) -> None:
    world.run()
    strategy = world.strategy()
    assert strategy.rollback == world.terms.rollback
    previous = History(world.app.history_path).previous()
    assert previous is None or previous == OLD  # one deploy recorded: OLD came from outside
    world.run(OLD, action=Action.ROLLBACK)
    assert world.serving() == {host: {OLD.version} for host in HOSTS}
    sent = History(world.app.history_path).records()[-1].to_json()["hosts"]
    assert [h["bytes_sent"] for h in sent.values()] == [0] * len(world.nodes)  # nodes kept OLD


def interrupt() -> None:
    raise KeyboardInterrupt


def test_an_interruption_leaves_the_pool_serving(world: World) -> None:
    interrupted = world.terms.new(HOSTS[1])
    world.cluster.hosts[interrupted].before[world.terms.step] = interrupt
    with pytest.raises(Interrupted):
        world.run()
    assert world.balancer.most_hosts_out <= 1
    serving = [host for host, versions in world.serving().items() if versions]
    assert len(serving) >= len(HOSTS) - 1
    assert History(world.app.history_path).records()[-1].to_json()["outcome"] == "interrupted"


def test_an_interruption_names_the_node_it_stopped(world: World) -> None:
    interrupted = world.terms.new(HOSTS[1])
    world.cluster.hosts[interrupted].before[world.terms.step] = interrupt
    with pytest.raises(Interrupted) as caught:
        world.run()
    assert f"interrupted at node {interrupted}" in str(caught.value)


def test_the_dry_run_speaks_the_strategys_words_and_changes_nothing(world: World) -> None:
    rollout = world.rollout()
    strategy = rollout.strategy
    files = world.app.overrides()
    merged = {host: files.files(host) for host in world.app.config.hosts}
    steps = preview.steps(rollout, merged)
    kept = {label for host in HOSTS for label in world.terms.kept(host)}
    assert {step.node: step.action for step in steps} == {
        node.label: strategy.preview.kept if node.label in kept else strategy.preview.change
        for node in world.nodes
    }
    changed = len(world.nodes) - len(kept)
    restarts = changed if world.terms.restarts else 0
    assert preview.lines(steps)[-1].startswith(
        f"plan: {changed} of {len(world.nodes)} node(s) change, {restarts} restart, "
    )
    assert not [e for e in world.cluster.events if e[1].startswith((*CHANGES, "upload"))]
    read = [what for _, what in world.cluster.events if what.startswith("read ")]
    inside = "WEB-INF/classes/config.properties" if world.terms.in_version else "resources"
    assert read and all(inside in what for what in read), read
    # as the dry run asks (the nodes the strategy keeps, read once beforehand), the same words
    again = preview.steps(world.rollout(), merged, kept)
    assert [step.action for step in again] == [step.action for step in steps]


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

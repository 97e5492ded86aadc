"""An operator's MAINT is theirs: rolling deploys a node someone else took out of
rotation but leaves it out, unless --force; it puts back only what it took out (its
mark on the node). On the fake cluster and balancer; the mark's scripts in a real sh."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from fabfile.app.pace import Pace, Share
from fabfile.cluster import node, takenout
from fabfile.cluster.balancer import Counters, State
from fabfile.cluster.layout import Layout
from fabfile.cluster.takenout import TakenOut
from fabfile.commands import execute, status
from fabfile.engine.strategies.contract import Setup
from fabfile.engine.target import Outcome
from fabfile.errors import RolloutError
from fabfile.records.lock import Holder
from fabfile.view import preview
from tests.fakes import node_configs
from tests.unit.test_claim_release import LocalNode
from tests.unit.test_contract import HOSTS, NEW, World

OPS = HOSTS[1]  # the node an operator took out


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(tmp_path, "rolling", monkeypatch)
    made.balancer.now[OPS] = State.MAINT  # set by hand: no mark of the tool's
    return made


def lb(world: World, host: str) -> list[str]:
    return [what for what in world.cluster.of(host) if what.startswith("lb")]


def test_a_no_op_redeploy_leaves_an_operators_maint_as_it_was(world: World) -> None:
    world.cluster.start_on(NEW)
    rollout = world.run()
    assert world.balancer.now[OPS] == State.MAINT
    assert lb(world, OPS) == []
    assert lb(world, HOSTS[0]) == ["lb UP"]  # the others as before
    held = next(t for t in rollout.targets if t.host == OPS)
    assert held.outcome == Outcome.UNCHANGED
    assert "left MAINT in haproxy as found" in held.detail
    assert any(n.startswith(f"{OPS}: left MAINT in haproxy") for n in world.reporter.notes)


def test_the_summary_names_the_nodes_left_out_as_found(world: World) -> None:
    rollout = world.run()
    console = Console(record=True, width=200, file=io.StringIO())
    execute.summary(console, rollout.targets)
    text = console.export_text()
    assert f"{OPS}: deployed" in text
    assert f"left out of rotation as found, not by deploy: {OPS} (MAINT); --force puts" in text


def test_a_deploy_installs_an_operators_node_but_leaves_it_out(world: World) -> None:
    world.balancer.now[OPS] = State.DRAIN
    world.run()
    assert world.running()[OPS] == NEW.version
    assert lb(world, OPS) == ["lb waited for sessions"]  # its sessions, not its state
    assert world.balancer.now[OPS] == State.DRAIN
    assert world.cluster.hosts[OPS].taken_out is None
    assert "marked taken out" not in world.cluster.of(OPS)
    for host in (HOSTS[0], HOSTS[2]):
        events = world.cluster.of(host)
        assert lb(world, host) == ["lb DRAIN", "lb UP"]
        assert events.index("marked taken out") < events.index("lb DRAIN")  # mark, then drain
        assert events.index("mark cleared") > events.index("lb UP")
        assert world.cluster.hosts[host].taken_out is None  # put back: the mark is gone


def test_force_puts_an_operators_node_back(world: World) -> None:
    world.setup = Setup(world.balancer, force=True)
    world.run()
    assert world.balancer.now[OPS] == State.UP
    assert lb(world, OPS) == ["lb DRAIN", "lb UP"]


def test_a_node_the_tool_left_out_is_put_back_by_the_next_run(world: World) -> None:
    world.cluster.hosts[OPS].taken_out = TakenOut(None, "an earlier run")
    world.cluster.start_on(NEW)  # verified on the release: skipped, and back in rotation
    world.run()
    assert world.balancer.now[OPS] == State.UP
    assert world.cluster.hosts[OPS].taken_out is None


def test_a_failed_node_keeps_the_tools_mark_until_a_run_verifies_it(world: World) -> None:
    world.balancer.now[OPS] = State.UP
    world.cluster.hosts[HOSTS[0]].broken = True
    with pytest.raises(RolloutError):
        world.run()
    assert world.balancer.now[HOSTS[0]] == State.MAINT
    assert world.cluster.hosts[HOSTS[0]].taken_out is not None  # the tool's, not an operator's
    world.cluster.hosts[HOSTS[0]].broken = False
    world.run()
    assert world.balancer.now[HOSTS[0]] == State.UP
    assert world.cluster.hosts[HOSTS[0]].taken_out is None


def test_an_operator_taking_a_node_out_during_the_run_is_respected(world: World) -> None:
    world.balancer.now[OPS] = State.UP

    def operator() -> None:  # while the first node installs
        world.balancer.now[HOSTS[2]] = State.MAINT

    world.cluster.hosts[HOSTS[0]].before["install"] = operator
    world.run()
    assert world.balancer.now[HOSTS[2]] == State.MAINT
    assert world.running()[HOSTS[2]] == NEW.version


def test_an_operators_node_is_never_the_canary(world: World) -> None:
    world.balancer.now[HOSTS[0]] = State.MAINT
    world.balancer.now[OPS] = State.UP
    pace = Pace(batch=Share(1), canary=1, canary_wait=0)
    world.balancer.per_read = {HOSTS[1]: Counters(50, 0)}
    world.run(pace=pace)
    batches = [n for n in world.reporter.notes if n.startswith("batch 1/")]
    assert batches and batches[0].endswith(f"(canary): {HOSTS[1]}")


def test_a_failed_canary_is_marked_as_the_tools(world: World) -> None:
    world.balancer.now[OPS] = State.UP
    world.balancer.per_read = {HOSTS[0]: Counters(50, 50)}
    with pytest.raises(RolloutError):
        world.run(pace=Pace(batch=Share(1), canary=1, canary_wait=0))
    assert world.balancer.now[HOSTS[0]] == State.MAINT
    assert world.cluster.hosts[HOSTS[0]].taken_out is not None


def test_the_dry_run_says_so(world: World) -> None:
    rollout = world.rollout()
    files = world.app.overrides()
    merged = {host: files.files(host) for host in world.app.config.hosts}
    steps = preview.steps(rollout, merged, rotation=world.balancer)
    held = {step.node: step.held for step in steps}
    assert held[HOSTS[0]] == held[HOSTS[2]] == ""
    assert held[OPS].startswith("MAINT in haproxy, not by deploy: left out of rotation")
    lines = preview.lines(steps)
    assert f"  {held[OPS]}" in lines
    assert lines[lines.index(f"  {held[OPS]}") - 1].startswith(f"{OPS}: install + restart")
    world.cluster.hosts[OPS].taken_out = TakenOut(None, "x")  # the tool's: put back
    again = preview.steps(world.rollout(), merged, rotation=world.balancer)
    assert [s.held for s in again] == ["", "", ""]


def test_status_names_who_took_each_node_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = node_configs(tmp_path, f"hosts = {', '.join(HOSTS)}")
    holder = Holder(4711, "alice", "coord1", "2024-05-01T03:00:00+00:00", "1", "deploy x.war")
    marks = {HOSTS[0]: TakenOut(holder, "run-1"), HOSTS[1]: None}

    class Reached:
        def __init__(self, config: object) -> None:
            self.label = config.label  # type: ignore[attr-defined]

        def taken_out(self) -> TakenOut | None:
            return marks[self.label]

        def close(self) -> None:
            pass

    monkeypatch.setattr(node, "Node", Reached)  # status loads it only to read these marks
    rotation = {HOSTS[0]: State.DRAIN, HOSTS[1]: State.MAINT, HOSTS[2]: State.UP}
    lines = status.out_of_rotation(nodes, rotation)
    assert lines == [
        f"{HOSTS[0]}: DRAIN in haproxy, taken out by deploy run of alice@coord1 (pid 4711) "
        "since 2024-05-01T03:00:00+00:00: the next deploy or rollback puts it back once it "
        "verifies it",
        f"{HOSTS[1]}: MAINT in haproxy, not taken out by deploy: deploys leave it out of "
        "rotation (deploy WAR --force puts it back)",
    ]


def test_the_mark_is_written_read_and_cleared_where_the_layout_says(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = node_configs(tmp_path, "hosts = web1", "releases_dir = ~/rel 'd'/$(x)")[0]
    node = LocalNode(config, home)
    node.holder = '{"holder": {"pid": 1, "user": "u", "host": "h", "since": "s", '
    node.holder += '"started": "1", "command": "deploy"}, "token": "run-9"}'
    assert node.taken_out() is None
    node.take_out()
    mark = node.taken_out()
    assert mark is not None and mark.token == "run-9" and mark.holder is not None
    assert node.holdings().taken_out == mark
    assert (home / Layout.of(config).taken_out().removeprefix("~/")).exists()
    node.put_back()
    assert node.taken_out() is None and node.holdings().taken_out is None
    assert takenout.theirs(State.MAINT, None) and not takenout.theirs(State.MAINT, mark)
    assert not takenout.theirs(State.UP, None)

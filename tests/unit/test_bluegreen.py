"""Blue/green's promises, on the fake cluster: the contract in its own terms.

Every host runs blue (live, UP) and green (idle, in maintenance). A deploy makes
every green live and verified before haproxy changes at all; the switch puts
the new colour UP before the old one goes out; a failure before the switch
changes nothing users see; rollback is a switch back with no restart and no
bytes; an interrupted run is finished by running it again.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fabfile.app.config import NodeConfig
from fabfile.app.pace import Pace, Share
from fabfile.cluster.balancer import State
from fabfile.engine.strategies.contract import Setup
from fabfile.errors import Interrupted, NodeError, PreflightError, RolloutError, explain
from fabfile.records.history import Action, History
from tests.unit.helpers import release
from tests.unit.test_contract import HOSTS, NEW, OLD, Colours, World

BLUE = [f"{host}/blue" for host in HOSTS]
GREEN = [f"{host}/green" for host in HOSTS]
ONE_AFTER_ANOTHER = Pace(idle_starts=Share(1))  # the idle colours' old order


class FakeSessions:
    """Session counts by label; a label in ``failing`` cannot be read."""

    def __init__(self, counts: dict[str, int], failing: tuple[str, ...] = ()) -> None:
        self.counts = counts
        self.failing = failing

    def count(self, node: NodeConfig) -> int:
        if node.label in self.failing:
            raise NodeError(f"{node.label}: the Tomcat manager refused user 'deploy' (HTTP 401)")
        return self.counts.get(node.label, 0)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Blue serves and green is idle on every host, as the contract's blue-green terms say."""
    return Colours("blue-green").world(tmp_path, monkeypatch)


def lb_events(world: World) -> list[tuple[str, str]]:
    return [(where, what) for where, what in world.cluster.events if what.startswith("lb ")]


@pytest.mark.parametrize("pace", [Pace(), ONE_AFTER_ANOTHER], ids=["at once", "one by one"])
def test_every_green_is_verified_before_haproxy_changes_then_each_host_switches(
    world: World, pace: Pace
) -> None:
    world.run(pace=pace)
    events = world.cluster.events
    last_restart = max(i for i, (_, what) in enumerate(events) if what == "restart")
    first_switch = min(i for i, (_, what) in enumerate(events) if what.startswith("lb "))
    assert last_restart < first_switch
    restarts = [w for w, what in events if what == "restart"]
    assert (restarts if pace == ONE_AFTER_ANOTHER else sorted(restarts)) == GREEN
    expected = [
        e for host in HOSTS for e in ((f"{host}/green", "lb UP"), (f"{host}/blue", "lb MAINT"))
    ]
    assert lb_events(world) == expected  # new colour up first, then the old one out
    assert world.running() == {
        **dict.fromkeys(BLUE, OLD.version),
        **dict.fromkeys(GREEN, NEW.version),
    }
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["outcome"] == "ok"
    assert {h: r["outcome"] for h, r in entry["hosts"].items()} == {
        **dict.fromkeys(BLUE, "standby"),
        **dict.fromkeys(GREEN, "live"),
    }
    assert world.warmed == GREEN  # all at once, before the switch


def test_a_failure_before_the_switch_changes_nothing_users_see(world: World) -> None:
    """One host after another, the hosts after the failed one are not touched either
    (all at once: test_bluegreen_starts.py)."""
    world.cluster.hosts[GREEN[1]].broken = True
    with pytest.raises(RolloutError) as caught:
        world.run(pace=ONE_AFTER_ANOTHER)
    text = explain(caught.value)
    assert text.startswith(f"{GREEN[1]}: not verified")
    assert "Nothing users see changed: haproxy was not switched and still sends every " in text
    assert ", ".join(BLUE) in text
    assert lb_events(world) == []
    assert not [e for e in world.cluster.of(GREEN[2]) if e.startswith(("install", "restart"))]
    entry = History(world.app.history_path).records()[-1].to_json()
    assert [entry["hosts"][h]["outcome"] for h in GREEN] == ["deployed", "failed", "untouched"]


def test_rollback_is_a_switch_back_with_no_restart_and_no_bytes(world: World) -> None:
    world.run()
    before = len(world.cluster.events)
    world.run(OLD, action=Action.ROLLBACK)
    after = world.cluster.events[before:]
    assert not [e for e in after if e[1].startswith(("install", "restart", "upload"))]
    assert world.balancer.now == {**dict.fromkeys(BLUE, "UP"), **dict.fromkeys(GREEN, "MAINT")}
    sent = History(world.app.history_path).records()[-1].to_json()["hosts"]
    assert [h["bytes_sent"] for h in sent.values()] == [0] * 6


def test_rollback_deploys_the_release_when_no_colour_runs_it_any_more(world: World) -> None:
    world.run()
    host = world.cluster.hosts[BLUE[0]]
    host.installed = host.running = release(3)  # someone deployed another release there
    world.setup = Setup(world.balancer, rollback=True)
    world.run(OLD, action=Action.ROLLBACK)
    assert "no colour runs that release any more" in " ".join(world.reporter.notes)
    assert world.running()[BLUE[0]] == OLD.version


def test_an_interrupted_switch_is_finished_by_running_again(world: World) -> None:
    original = world.balancer.ready

    def ready(node: NodeConfig, weight: int = 100) -> int:
        if node.label == GREEN[1]:
            raise KeyboardInterrupt
        return original(node, weight)

    world.balancer.ready = ready  # type: ignore[method-assign]
    with pytest.raises(Interrupted) as caught:
        world.run()
    assert f"interrupted at node {GREEN[1]} in phase 'switching'" in str(caught.value)
    assert world.balancer.now[GREEN[0]] == "UP" and world.balancer.now[BLUE[0]] == "MAINT"
    assert world.balancer.now[BLUE[1]] == "UP"  # every host still serves
    world.balancer.ready = original  # type: ignore[method-assign]
    before = len(world.cluster.events)
    world.run()
    assert not [e for e in world.cluster.events[before:] if e[1] == "restart"]
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}


def test_a_host_left_with_both_colours_in_rotation_is_finished(world: World) -> None:
    world.run()
    world.balancer.now[BLUE[2]] = State.UP  # a switch cut between "new up" and "old out"
    world.run()
    assert world.balancer.now[BLUE[2]] == "MAINT" and world.balancer.now[GREEN[2]] == "UP"


def test_no_switch_verifies_and_stops_before_haproxy(world: World) -> None:
    world.setup = Setup(world.balancer, switch=False)
    world.run(action=Action.DARK)
    assert lb_events(world) == []
    entry = History(world.app.history_path).records()[-1].to_json()
    assert {entry["hosts"][h]["outcome"] for h in GREEN} == {"verified, not live"}
    assert History(world.app.history_path).current() != NEW  # nobody was sent to it


def test_a_colour_that_lost_the_sessions_stops_the_switch_unless_forced(world: World) -> None:
    world.setup = Setup(world.balancer, sessions=FakeSessions({BLUE[0]: 3, GREEN[0]: 0}))
    with pytest.raises(RolloutError) as caught:
        world.run()
    text = explain(caught.value)
    assert f"{GREEN[0]} carries 0 of the 3 session(s) of {BLUE[0]}" in text
    assert "would log 3 user(s) out" in text and "--force switches anyway" in text
    assert lb_events(world) == []
    world.setup = Setup(world.balancer, sessions=FakeSessions({BLUE[0]: 3}), force=True)
    world.run()
    assert world.balancer.now[GREEN[0]] == "UP"
    assert any("switching anyway (--force)" in note for note in world.reporter.notes)


def test_an_app_that_is_not_distributable_is_switched_with_a_warning(world: World) -> None:
    sessions = FakeSessions({BLUE[0]: 3})
    world.setup = Setup(world.balancer, sessions=sessions, distributable=False)
    world.run()
    assert any("users will be logged out by the switch" in n for n in world.reporter.notes)
    assert world.balancer.now[GREEN[0]] == "UP"


def test_an_unreadable_session_count_is_refused_in_preflight(world: World) -> None:
    world.setup = Setup(world.balancer, sessions=FakeSessions({}, failing=(BLUE[1],)))
    with pytest.raises(PreflightError) as caught:
        world.run()
    assert "refused user 'deploy' (HTTP 401); sessions cannot be checked" in str(caught.value)
    assert not [e for e in world.cluster.events if e[1] in ("restart", "lb UP")]


def test_a_new_colour_that_never_comes_up_is_taken_out_again(world: World) -> None:
    world.balancer.up_after_ready = False
    with pytest.raises(RolloutError) as caught:
        world.run()
    assert f"{GREEN[0]}: haproxy reports it DOWN, not UP" in str(caught.value)
    assert world.balancer.now[GREEN[0]] == "MAINT" and world.balancer.now[BLUE[0]] == "UP"


def test_hosts_outside_the_plan_are_not_touched(world: World) -> None:
    world.run(hosts=HOSTS[:2])
    assert [e for e in world.cluster.events if e[0].startswith(HOSTS[2])] == []
    assert world.balancer.now[BLUE[2]] == "UP" and world.balancer.now[GREEN[2]] == "MAINT"
    assert world.balancer.now[GREEN[0]] == "UP" and world.balancer.now[GREEN[1]] == "UP"


def test_a_live_colour_that_is_down_does_not_block_the_way_out(world: World) -> None:
    """Its users are gone already; its manager may not answer: deploy or roll back."""
    world.balancer.now[BLUE[1]] = State.DOWN
    counts = {BLUE[0]: 2, GREEN[0]: 2}
    world.setup = Setup(world.balancer, sessions=FakeSessions(counts, failing=(BLUE[1],)))
    world.run()
    assert world.balancer.now[GREEN[1]] == "UP" and world.balancer.now[BLUE[1]] == "MAINT"


def test_of_two_colours_in_rotation_the_one_down_is_redeployed(world: World) -> None:
    world.balancer.now[GREEN[0]] = State.UP
    world.balancer.now[BLUE[0]] = State.DOWN  # blue crashed while both took traffic
    world.run(pace=ONE_AFTER_ANOTHER)
    restarted = [w for w, what in world.cluster.events if what == "restart"]
    assert restarted[0] == BLUE[0]  # green kept serving meanwhile
    assert world.balancer.now[BLUE[0]] == "UP" and world.balancer.now[GREEN[0]] == "MAINT"


def test_sessions_are_counted_on_every_host_at_once(world: World) -> None:
    """In pre-flight and before the switch: one manager's answer after another's would
    add up to a switch's time."""
    together = threading.Barrier(len(HOSTS), timeout=5)
    alone: list[str] = []

    class AtOnce(FakeSessions):
        def count(self, node: NodeConfig) -> int:
            if node.label in BLUE:  # the live colours' counts meet here, or time out
                try:
                    together.wait()
                except threading.BrokenBarrierError:
                    alone.append(node.label)
            return super().count(node)

    world.setup = Setup(world.balancer, sessions=AtOnce({}))
    world.run()
    assert alone == []
    assert together.n_waiting == 0 and not together.broken
    assert world.balancer.now[GREEN[0]] == "UP"


def test_a_switch_back_hashes_no_staged_file_but_a_deploy_to_the_idle_colour_does(
    world: World,
) -> None:
    """Only a host where the release is installed has its held files checked again."""
    for blobs in world.cluster.blobs.values():
        blobs |= NEW.blobs  # staged ahead: a deploy installs them, after checking them
    world.run()
    checked = [host for host, what in world.cluster.events if what == "checked staged files"]
    assert sorted(checked) == BLUE  # each host's first instance stages for both
    before = len(world.cluster.events)
    world.run(OLD, action=Action.ROLLBACK)  # the live colours of before run it: a switch
    after = world.cluster.events[before:]
    assert not [e for e in after if e[1] == "checked staged files"]
    assert world.balancer.now == {**dict.fromkeys(BLUE, "UP"), **dict.fromkeys(GREEN, "MAINT")}

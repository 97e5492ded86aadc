"""Blue/green acts only on what is true now, on the fake cluster.

haproxy may change under a run: restarted without its server-state file (every
host back to the colour its configuration enables), reloaded, or switched by
hand. Before a colour is restarted or switched, the host's colours are read
again: one that came into rotation is never restarted (the run stops and says
what changed), and a switch takes out what is in rotation now. A refused switch
(an idle colour without the live one's sessions) is finished, once fixed, by the
same command: the idle colour is restarted so that it joins.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fabfile.cluster.balancer import State
from fabfile.engine.strategies.contract import Setup
from fabfile.errors import NodeError, RolloutError, explain
from fabfile.records.history import History
from tests.fakes import FakeBalancer
from tests.unit.helpers import release
from tests.unit.test_bluegreen import BLUE, GREEN, ONE_AFTER_ANOTHER, FakeSessions
from tests.unit.test_contract import NEW, Colours, World

THIRD = release(3)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return Colours("blue-green").world(tmp_path, monkeypatch)


def restarted(world: World, since: int = 0) -> list[str]:
    return [where for where, what in world.cluster.events[since:] if what == "restart"]


def never_restart_in_rotation(world: World) -> list[str]:
    """Fail any restart of a colour haproxy has in rotation; the labels seen restarting."""
    seen: list[str] = []
    for label, host in world.cluster.hosts.items():

        def check(label: str = label) -> None:
            seen.append(label)
            state = world.balancer.now[label]
            assert state == State.MAINT, f"{label} restarted while haproxy had it {state}"

        host.before["restart"] = check
    return seen


def haproxy_restarted_without_its_state_file(world: World) -> None:
    """haproxy back from its configuration file: blue in rotation everywhere, green not."""
    for label in BLUE:
        world.balancer.now[label] = State.UP
    for label in GREEN:
        world.balancer.now[label] = State.MAINT


def test_a_colour_that_came_into_rotation_is_never_restarted_and_the_run_says_why(
    world: World,
) -> None:
    world.run()  # green serves NEW; blue is idle on OLD
    seen = never_restart_in_rotation(world)
    # haproxy restarts while the first host's blue restarts: blue is live again everywhere
    first = world.cluster.hosts[BLUE[0]].before["restart"]

    def first_then_haproxy() -> None:
        first()
        haproxy_restarted_without_its_state_file(world)

    world.cluster.hosts[BLUE[0]].before["restart"] = first_then_haproxy
    before = len(world.cluster.events)
    with pytest.raises(RolloutError) as caught:  # one host after another: the next reads
        world.run(THIRD, pace=ONE_AFTER_ANOTHER)  # haproxy after the first one's restart
    assert restarted(world, before) == [BLUE[0]] == seen  # not BLUE[1], which serves now
    text = explain(caught.value)
    assert text.startswith(
        f"{BLUE[1].split('/')[0]}: haproxy's state changed during the run ({BLUE[1]} was "
        f"MAINT, now UP; {GREEN[1]} was UP, now MAINT): {BLUE[1]} is in rotation now, so it "
        "was not restarted"
    )
    assert "without its server-state file (lb_state_file)" in text
    assert "run the same command again" in text
    assert "This run switched nothing and restarted no colour in rotation" in text
    assert "Nothing users see changed" not in text
    assert world.balancer.now == {**dict.fromkeys(BLUE, "UP"), **dict.fromkeys(GREEN, "MAINT")}
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["outcome"] == "failed"
    assert entry["hosts"][BLUE[1]]["outcome"] == "untouched"

    # the same command again reads which colour is live afresh, and finishes
    seen.clear()
    world.run(THIRD)
    assert sorted(seen) == [GREEN[1], GREEN[2]]  # the idle ones, at once (host 1's blue runs THIRD)
    assert world.serving() == {host.split("/")[0]: {THIRD.version} for host in BLUE}


def test_a_switch_takes_out_the_colours_in_rotation_now(world: World) -> None:
    """Someone switched the first host by hand while the run made the last one: the
    run says so and finishes from what haproxy holds."""

    def switched_by_hand() -> None:
        world.balancer.now[GREEN[0]] = State.UP
        world.balancer.now[BLUE[0]] = State.MAINT

    world.cluster.hosts[GREEN[2]].before["restart"] = switched_by_hand
    world.run()
    notes = " ".join(world.reporter.notes)
    assert (
        f"haproxy's state changed during the run ({BLUE[0]} was UP, now MAINT; {GREEN[0]} "
        "was MAINT, now UP); switching from what haproxy holds now"
    ) in notes
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}
    entry = History(world.app.history_path).records()[-1].to_json()
    assert [entry["hosts"][label]["outcome"] for label in GREEN] == ["live"] * 3
    assert entry["hosts"][GREEN[0]]["detail"].startswith("in rotation already")
    assert [entry["hosts"][label]["outcome"] for label in BLUE] == ["standby"] * 3


def test_an_unreadable_haproxy_restarts_nothing(world: World) -> None:
    gone = False

    def states(nodes: tuple[object, ...]) -> dict[str, State]:
        if gone:
            raise NodeError("haproxy at /nowhere/haproxy.sock: refused; is it running?")
        return FakeBalancer.states(world.balancer, nodes)  # type: ignore[arg-type]

    def haproxy_goes_away() -> None:
        nonlocal gone
        gone = True

    world.balancer.states = states  # type: ignore[method-assign]
    world.cluster.hosts[GREEN[0]].before["restart"] = haproxy_goes_away
    with pytest.raises(RolloutError) as caught:
        world.run(pace=ONE_AFTER_ANOTHER)  # the next host reads haproxy after the first
    assert restarted(world) == [GREEN[0]]  # the next host's colours could not be read again
    assert str(caught.value).startswith(
        f"{GREEN[1].split('/')[0]}: haproxy's state of its colours could not be read again "
        "(haproxy at /nowhere/haproxy.sock: refused; is it running?); nothing was changed"
    )


def test_the_advice_of_a_switch_refused_for_sessions_works_when_followed(
    world: World,
) -> None:
    sessions = FakeSessions({BLUE[0]: 3, GREEN[0]: 0})
    world.setup = Setup(world.balancer, sessions=sessions)
    with pytest.raises(RolloutError) as caught:
        world.run()
    text = explain(caught.value)
    assert "run the same command again: it restarts an idle colour that does not carry" in text
    assert world.balancer.now[BLUE[0]] == "UP"  # nobody logged out

    # the operator fixes green's <Cluster>: once restarted, green joins and gets the sessions
    green = world.cluster.hosts[GREEN[0]]

    def restart_joins() -> None:
        green.running = None  # the old JVM gone: what tells a restart from none
        time.sleep(0.05)
        sessions.counts[GREEN[0]] = 3

    green.before["restart"] = restart_joins
    before = len(world.cluster.events)
    world.run()  # the same command
    assert restarted(world, before) == [GREEN[0]]  # the others carry theirs: not restarted
    assert any(
        f"{GREEN[0]} carries 0 of the 3 session(s)" in n and "restarting" in n
        for n in world.reporter.notes
    )
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}
    assert world.running()[GREEN[0]] == NEW.version

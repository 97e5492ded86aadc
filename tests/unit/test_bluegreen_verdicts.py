"""Blue/green judges the hosts switched so far before each next switch batch (issue 24),
on the fake cluster: no time is added, the window is what the switch took; a Failed
verdict does what on_failure says. And a pre_switch hook that stops the run after the
canary hosts were switched says which hosts those are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from fabfile.app.pace import Pace, Share
from fabfile.cluster.balancer import Counters
from fabfile.engine.batches import RollBack
from fabfile.engine.rollout import Rollout
from fabfile.engine.strategies.bluegreen_pace import order
from fabfile.errors import RolloutError, explain
from fabfile.records.history import History
from tests.unit.test_bluegreen import BLUE, GREEN, lb_events
from tests.unit.test_contract import NEW, OLD, Colours, World

CLEAN, FAILING = Counters(20, 0), Counters(20, 5)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return Colours("blue-green").world(tmp_path, monkeypatch)


def traffic(world: World, new: Counters) -> None:
    """Between two readings, every colour in rotation takes requests: ``new`` to a colour
    running the release, clean ones to the others."""
    original = world.balancer.counters

    def reading(nodes: tuple[object, ...]) -> dict[str, Counters]:
        running = world.running()
        world.balancer.per_read = {
            label: (new if running[label] == NEW.version else CLEAN)
            for label in BLUE + GREEN
            if world.balancer.now[label] == "UP"
        }
        return original(nodes)  # type: ignore[arg-type]

    world.balancer.counters = reading  # type: ignore[method-assign]


def verdicts(world: World) -> list[str]:
    return [text for _, text in History(world.app.history_path).records()[-1].verdicts]


def test_every_switch_batch_but_the_last_is_judged_before_the_next(world: World) -> None:
    traffic(world, CLEAN)
    world.run()
    said = verdicts(world)
    assert [text.partition(":")[0] for text in said] == ["switch 1/3", "switch 2/3"]
    assert said[0].startswith("switch 1/3: Successful: 20 request(s) to the nodes on the release")
    assert said[1].startswith("switch 2/3: Successful: 40 request(s)")  # both hosts so far
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}
    # one reading opens each window, right before that batch switches
    notes = world.reporter.notes
    assert notes.index(f"switch 1/3: {GREEN[0]}") < notes.index(said[0])


def test_a_failed_switch_batch_stops_and_switches_its_hosts_back(world: World) -> None:
    traffic(world, FAILING)
    with pytest.raises(RolloutError) as caught:
        world.run()
    text = explain(caught.value)
    assert "switch 1/3: Failed: 20 request(s) to the nodes on the release, 5 failed" in text
    assert (
        f"Switched back to their old colour: {BLUE[0]}; haproxy was not switched on the "
        f"other hosts: {BLUE[1]}, {BLUE[2]} serve(s)." in text
    )
    assert world.balancer.now == {**dict.fromkeys(BLUE, "UP"), **dict.fromkeys(GREEN, "MAINT")}
    assert lb_events(world)[-2:] == [(BLUE[0], "lb UP"), (GREEN[0], "lb MAINT")]  # old in first
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["outcome"] == "failed" and entry["verdicts"][0][1].startswith(
        "switch 1/3: Failed: "
    )
    assert entry["hosts"][BLUE[0]]["outcome"] == "live"
    assert entry["hosts"][GREEN[0]]["outcome"] == "failed"


def test_on_failure_rollback_asks_the_run_to_roll_back_with_the_rest_unswitched(
    world: World,
) -> None:
    traffic(world, FAILING)
    with pytest.raises(RollBack, match=r"switch 1/3: Failed: .*; on_failure = rollback") as caught:
        world.run(pace=Pace(on_failure="rollback"))
    assert f"Switched already: {GREEN[0]} serve(s) the release" in explain(caught.value)
    assert world.balancer.now[GREEN[0]] == "UP"  # the rollback in this run switches it back
    assert [world.balancer.now[label] for label in BLUE[1:]] == ["UP", "UP"]


def test_on_failure_ask_goes_on_when_told(world: World) -> None:
    traffic(world, FAILING)
    world.reporter.answers = ["g", "g"]
    world.run(pace=Pace(on_failure="ask"))
    assert len(world.reporter.questions) == 2
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}


def test_too_few_requests_is_inconclusive_and_the_switches_go_on(world: World) -> None:
    traffic(world, Counters(2, 1))
    world.run()
    said = verdicts(world)
    assert said[0].startswith("switch 1/3: Inconclusive: 2 request(s)")
    assert "fewer than canary_min_requests (10) to judge" in said[0]
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}


@pytest.mark.parametrize(
    "pace", [Pace(batch=Share(3)), Pace(judged=False)], ids=["one switch batch", "not judged"]
)
def test_no_verdict_between_switches_with_one_batch_or_in_a_rollback(
    world: World, pace: Pace
) -> None:
    traffic(world, FAILING)
    world.run(pace=pace)
    assert verdicts(world) == []
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}


def test_a_pre_switch_hook_that_stops_after_the_canary_says_which_host_is_switched(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic(world, CLEAN)
    asked: list[Sequence[str]] = []

    def switching(rollout: Rollout, hosts: Sequence[str]) -> None:
        asked.append(hosts)
        if len(asked) == 2:  # the canary went; the rest is refused
            raise RolloutError("[hooks] pre_switch: the hook exited with 1")

    monkeypatch.setattr(Rollout, "switching", switching)
    with pytest.raises(RolloutError) as caught:
        world.run(pace=Pace(canary=1, canary_wait=0.01))
    assert asked == [[GREEN[0]], [GREEN[1], GREEN[2]]]
    assert (
        f"Switched already: {GREEN[0]} serve(s) the release; haproxy was not switched on "
        f"the other hosts: {BLUE[1]}, {BLUE[2]} serve(s)." in explain(caught.value)
    )
    assert world.running()[GREEN[1]] == NEW.version and world.running()[BLUE[1]] == OLD.version


def test_the_dry_run_says_how_the_switches_are_judged() -> None:
    assert order(Pace(watch=30, on_failure="rollback"), 3) == (
        "order: idle colours of all 3 host(s) at once, each verified on its own port; then "
        "one warm-up; then the switches one host after another (batch = 1); the hosts "
        "switched so far judged before each next switch batch; then every new colour is "
        "watched for 30 s; a Failed verdict switches every switched host back (on_failure)"
    )
    assert order(Pace(batch=Share(3), judged=False), 3).endswith("of all 3 host(s) at once")

"""Blue/green's idle colours start at once (``idle_starts``), then one warm-up, then the
switches ``batch`` hosts together, on the fake cluster. (The real stack:
tests/real/test_blue_green_starts.py.)"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from fabfile.app import config as config_module
from fabfile.app.config import AppConfig, NodeConfig
from fabfile.app.pace import Pace, Share, parse_batch
from fabfile.cluster import inflight
from fabfile.engine import signals
from fabfile.engine.strategies.bluegreen_pace import order
from fabfile.errors import ConfigError, Interrupted, RolloutError, explain
from fabfile.records.history import History
from tests.unit.test_bluegreen import BLUE, GREEN
from tests.unit.test_contract import HOSTS, Colours, World


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return Colours("blue-green").world(tmp_path, monkeypatch)


class Peak:
    """How many calls were in flight at once, at most. A call waits (up to 5 s) until
    ``expect`` calls are in flight or have been: a thread that starts late on a loaded
    machine still counts as at once; then each lasts ``seconds`` more, so that more
    than ``expect`` at once shows too."""

    def __init__(self, expect: int, seconds: float = 0.05) -> None:
        self.expect, self.seconds = expect, seconds
        self.now = self.most = 0
        self.changed = threading.Condition()

    def __call__(self) -> None:
        with self.changed:
            self.now += 1
            self.most = max(self.most, self.now)
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.most >= self.expect, timeout=5)
        time.sleep(self.seconds)
        with self.changed:
            self.now -= 1


def restarts_at_once(world: World, expect: int) -> Peak:
    peak = Peak(expect)
    for label in GREEN:
        world.cluster.hosts[label].before["restart"] = peak
    return peak


@pytest.mark.parametrize(("starts", "most"), [("100%", 3), ("2", 2), ("50%", 1), ("1", 1)])
def test_the_idle_colours_start_idle_starts_at_a_time(world: World, starts: str, most: int) -> None:
    peak = restarts_at_once(world, most)
    world.run(pace=Pace(idle_starts=parse_batch(starts)))
    assert peak.most == most
    assert world.warmed == GREEN  # one warm-up, for all of them, before the switches
    assert world.balancer.now == {**dict.fromkeys(BLUE, "MAINT"), **dict.fromkeys(GREEN, "UP")}


@pytest.mark.parametrize(("batch", "most"), [(1, 1), (2, 2), (3, 3)])
def test_batch_hosts_switch_together_each_in_the_safe_order(
    world: World, batch: int, most: int
) -> None:
    peak = Peak(most)
    original = world.balancer.ready

    def ready(node: NodeConfig, weight: int = 100) -> int:
        peak()
        return original(node, weight)

    world.balancer.ready = ready  # type: ignore[method-assign]
    world.run(pace=Pace(batch=Share(batch)))
    assert peak.most == most
    events = [(where, what) for where, what in world.cluster.events if what.startswith("lb ")]
    for host in HOSTS:  # on each host: the new colour UP, then the old one out
        assert [e for e in events if e[0].startswith(host)] == [
            (f"{host}/green", "lb UP"),
            (f"{host}/blue", "lb MAINT"),
        ]


def test_one_idle_colour_failing_stops_before_any_switch(world: World) -> None:
    world.cluster.hosts[GREEN[1]].broken = True
    with pytest.raises(RolloutError) as caught:
        world.run()
    text = explain(caught.value)
    assert text.startswith(f"{GREEN[1]}: not verified")
    assert "Nothing users see changed: haproxy was not switched and still sends every " in text
    assert not [e for e in world.cluster.events if e[1].startswith("lb ")]
    assert world.balancer.now == {**dict.fromkeys(BLUE, "UP"), **dict.fromkeys(GREEN, "MAINT")}
    assert world.warmed == []
    entry = History(world.app.history_path).records()[-1].to_json()
    assert [entry["hosts"][h]["outcome"] for h in GREEN] == ["deployed", "failed", "deployed"]
    assert {entry["hosts"][h]["outcome"] for h in BLUE} == {"untouched"}


def test_within_max_failures_the_host_whose_idle_colour_failed_keeps_its_live_one(
    world: World,
) -> None:
    world.cluster.hosts[GREEN[1]].broken = True
    with pytest.raises(RolloutError) as caught:
        world.run(pace=Pace(max_failures=Share(1)))
    assert "finished with 1 failed node(s)" in str(caught.value)
    assert world.balancer.now[BLUE[1]] == "UP" and world.balancer.now[GREEN[1]] == "MAINT"
    for other in (0, 2):
        assert world.balancer.now[GREEN[other]] == "UP"
        assert world.balancer.now[BLUE[other]] == "MAINT"


def test_sigterm_during_the_starts_leaves_every_live_colour_serving(world: World) -> None:
    """Every idle colour is restarting when SIGTERM comes: the run ends within the
    grace, no switch was made, every live colour is still UP."""
    waiting: list[str] = []
    lock = threading.Lock()

    def wait(label: str) -> None:
        with lock:
            waiting.append(label)
            if len(waiting) == len(GREEN):  # SIGTERM once all three are in their restart
                threading.Timer(0.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
        inflight.pause(30)

    for label in GREEN:
        world.cluster.hosts[label].before["restart"] = functools.partial(wait, label)
    began = time.monotonic()
    with pytest.raises(Interrupted) as caught, signals.handled():
        world.run()
    assert time.monotonic() - began < 5  # the waits: 30 s
    assert sorted(waiting) == GREEN
    assert "Nothing users see changed" in explain(caught.value)
    assert world.balancer.now == {**dict.fromkeys(BLUE, "UP"), **dict.fromkeys(GREEN, "MAINT")}
    record = History(world.app.history_path).records()[-1].to_json()
    assert {record["hosts"][h]["outcome"] for h in GREEN} == {"interrupted"}


# -- .config and the dry run ----------------------------------------------------------


def config_with(tmp_path: Path, *lines: str) -> AppConfig:
    (tmp_path / ".config").write_text(
        "\n".join(["[deploy]", "hosts = web1, web2", "user = u", *lines]) + "\n"
    )
    return config_module.load(tmp_path / ".config")


def test_idle_starts_defaults_to_all_and_reads_like_batch(tmp_path: Path) -> None:
    assert config_with(tmp_path).pace.idle_starts == Share(percent=100.0)
    assert config_with(tmp_path, "idle_starts = 2").pace.idle_starts == Share(2)
    assert Pace(idle_starts=parse_batch("25%")).starts(3) == 1  # rounds down, at least 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [("0", "expected at least 1"), ("all", "expected a whole number or a percentage")],
)
def test_a_bad_idle_starts_names_file_line_and_key(tmp_path: Path, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_with(tmp_path, "# comment", f"idle_starts = {value}")
    assert str(caught.value).startswith(f"{tmp_path / '.config'}:5: [deploy] idle_starts = ")
    assert reason in str(caught.value)


def test_the_dry_run_says_how_the_idle_colours_and_the_switches_go() -> None:
    assert order(Pace(), 3) == (
        "order: idle colours of all 3 host(s) at once, each verified on its own port; then "
        "one warm-up; then the switches one host after another (batch = 1); the hosts "
        "switched so far judged before each next switch batch"
    )
    paced = Pace(idle_starts=Share(2), batch=Share(percent=100.0), canary=1)
    assert order(paced, 3) == (
        "order: the first 1 host(s) as canary, then idle colours 2 hosts at a time "
        "(idle_starts = 2), each verified on its own port; then one warm-up; then the "
        "switches of all 3 host(s) at once"
    )

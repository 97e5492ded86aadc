"""Batches, the canary's gate, max_failures and guided failure, on the fake cluster.

(The real stack: tests/real/test_batches.py.)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fabfile.app import config as config_module
from fabfile.app.pace import Pace, Share, parse_batch, parse_failures
from fabfile.cluster.balancer import Counters
from fabfile.cluster.probe import Status
from fabfile.engine import strategies
from fabfile.engine.batches import RollBack, order, split
from fabfile.engine.strategies.order import (
    in_batches,
    judged_in_batches,
    judged_over_each_batch,
)
from fabfile.engine.target import Target
from fabfile.errors import ConfigError, RolloutError, explain
from fabfile.records.history import History
from tests.unit.test_contract import HOSTS, NEW, OLD, TERMS, World

WEB1, WEB2, WEB3 = HOSTS


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield World(tmp_path, "rolling", monkeypatch)


def verdicts(entry: dict[str, Any]) -> str:
    """A history entry's verdicts, joined."""
    return "; ".join(text for _, text in entry.get("verdicts", []))


def run(world: World, pace: Pace) -> None:
    world.run(pace=pace)


def break_at_install(world: World, host: str) -> None:
    """The node answers /status Ok until its new release is installed, then 500."""
    state = world.cluster.hosts[host]
    state.before["install"] = lambda: setattr(state, "broken", True)


def outcomes(world: World) -> list[str]:
    entry = History(world.app.history_path).records()[-1].to_json()
    return [entry["hosts"][host]["outcome"] for host in HOSTS]


# -- values -------------------------------------------------------------------


def test_a_share_is_a_count_or_a_percentage_rounded_down() -> None:
    assert parse_batch("2").of(100, least=1) == 2
    assert parse_batch("10%").of(100, least=1) == 10
    assert parse_batch("25%").of(3, least=1) == 1  # 0.75 rounds down, to at least one
    assert parse_failures("50%").of(3) == 1
    assert parse_failures("0").of(3) == 0
    assert str(parse_batch("12.5%")) == "12.5%" and str(parse_batch("3")) == "3"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "at least 1"),
        ("150%", "at most 100%"),
        ("0%", "above 0%"),
        ("-2", "at least 1"),
        ("two", "whole number or a percentage"),
        ("%", "whole number or a percentage"),
    ],
)
def test_a_bad_batch_says_what_is_expected(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_batch(text)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("batch = 0", ":3: [deploy] batch = '0': expected at least 1"),
        ("batch = 150%", ":3: [deploy] batch = '150%': a percentage must be above 0%"),
        ("max_failures = 150%", ":3: [deploy] max_failures = '150%': a percentage"),
        ("canary = 3", ":3: [deploy] canary = 3: the cluster has 3 nodes"),
        ("canary = 5", ":3: [deploy] canary = 5: the cluster has 3 nodes"),
    ],
)
def test_bad_pace_values_name_file_line_and_key(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / ".config"
    path.write_text(f"[deploy]\nhosts = {', '.join(HOSTS)}\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        strategies.load(path)  # a canary counts what the strategy counts: it checks it
    assert f"{path}{expected}" in str(caught.value)


def test_pace_from_config(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text(
        f"[deploy]\nhosts = {', '.join(HOSTS)}\nbatch = 50%\ncanary = 1\ncanary_wait = 7\n"
        "max_failures = 1\n"
    )
    pace = config_module.load(path).pace
    assert pace == Pace(Share(percent=50), 1, 7.0, 10, Share(1))


def test_blue_green_counts_hosts_for_the_canary(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text(
        "[deploy]\nhosts = a, b\nstrategy = blue-green\ninstances = blue, green\n"
        "status_url = http://{host}:80{instance}/status\nlb_socket = /s\nlb_backend = web\n"
        "war_path = /w/{instance}.war\ncanary = 2\n"
        "[instance:blue]\nstatus_url = http://{host}:8081/status\n"
        "[instance:green]\nstatus_url = http://{host}:8082/status\n"
    )
    with pytest.raises(ConfigError, match="the cluster has 2 hosts"):
        strategies.load(path)


# -- order and batches -------------------------------------------------------


def target(name: str, ok: bool | None) -> Target:
    status = None if ok is None else Status(name, "u", ok, "")
    return Target(node=None, status=status)  # type: ignore[arg-type]


def test_unhealthy_and_unread_nodes_go_first_then_config_order() -> None:
    a, b, c, d = target("a", True), target("b", False), target("c", True), target("d", None)
    assert order([a, b, c, d]) == [b, d, a, c]


def test_canaries_go_alone_in_batches_of_at_most_batch() -> None:
    targets = [target(str(i), True) for i in range(7)]
    batches = split(targets, Pace(batch=Share(2), canary=3), 7)
    assert [(len(b.targets), b.canary) for b in batches] == [
        (2, True),
        (1, True),
        (2, False),
        (2, False),
    ]
    assert split(targets[:2], Pace(canary=2), 2)[0].canary is False  # nothing left to wait


# -- on the fake cluster ------------------------------------------------------


def test_a_batch_of_two_never_has_more_than_two_out(world: World) -> None:
    run(world, Pace(batch=Share(2)))
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    assert world.balancer.most_out <= 2  # (both at once: tests/real/test_batches.py)
    notes = world.reporter.notes
    assert notes[0] == f"batch 1/2: {WEB1}, {WEB2}"
    assert re.fullmatch(r"batch 1/2: 2 verified in \d+\.\d s", notes[1])  # a batch's summary
    # its verdict, judged over its warm-up (no traffic in this fake: Inconclusive, said only)
    assert notes[2].startswith("batch 1/2: Inconclusive: 0 request(s) to the nodes on the release")
    assert notes[3] == f"batch 2/2: {WEB3}"  # a batch of one needs none: its node's line says it
    assert world.warmed == [WEB1, WEB2]  # together, once; none after the last batch


def test_max_failures_goes_on_past_one_failure_and_the_command_still_fails(world: World) -> None:
    break_at_install(world, WEB2)
    with pytest.raises(RolloutError) as caught:
        run(world, Pace(max_failures=Share(1)))
    text = explain(caught.value)
    assert text.startswith(f"finished with 1 failed node(s), within max_failures (1): {WEB2}")
    assert outcomes(world) == ["deployed", "failed", "deployed"]
    assert world.balancer.now[WEB2] == "MAINT"
    assert any("1 of max_failures (1) used, going on" in note for note in world.reporter.notes)


def test_a_batch_line_names_what_failed_or_was_skipped(world: World) -> None:
    break_at_install(world, WEB2)
    with pytest.raises(RolloutError):
        run(world, Pace(batch=Share(2), max_failures=Share(1)))
    assert re.fullmatch(
        rf"batch 1/2: 1 verified, 1 failed \({WEB2}\) in \d+\.\d s", world.reporter.notes[1]
    )


def test_a_batch_line_names_what_was_skipped(world: World) -> None:
    break_at_install(world, WEB2)
    world.reporter.answers = ["s"]
    with pytest.raises(RolloutError, match="skipped by you"):
        run(world, Pace(batch=Share(2)))
    assert re.fullmatch(
        rf"batch 1/2: 1 verified, 1 skipped \({WEB2}\) in \d+\.\d s", world.reporter.notes[1]
    )


def test_max_failures_counts_over_the_whole_run_not_per_batch(world: World) -> None:
    break_at_install(world, WEB1)
    break_at_install(world, WEB2)
    with pytest.raises(RolloutError) as caught:
        run(world, Pace(max_failures=Share(1)))
    text = explain(caught.value)
    assert "2 node(s) failed, more than max_failures (1); stopped there." in text
    assert f"Untouched (still on their old release): {WEB3}." in text
    assert outcomes(world) == ["failed", "failed", "untouched"]
    assert world.running()[WEB3] == OLD.version


def test_the_default_stops_at_the_first_failure(world: World) -> None:
    break_at_install(world, WEB1)
    with pytest.raises(RolloutError):
        run(world, Pace())
    assert outcomes(world) == ["failed", "untouched", "untouched"]


def canary_world(world: World, canary: Counters, others: Counters) -> None:
    world.balancer.per_read = {WEB1: canary, WEB2: others, WEB3: others}


def test_a_healthy_canary_lets_the_rest_go(world: World) -> None:
    canary_world(world, Counters(20, 0), Counters(20, 0))
    run(world, Pace(canary=1, canary_wait=0.01))
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    entry = History(world.app.history_path).records()[-1].to_json()
    assert verdicts(entry).startswith("Successful: ")


def test_a_canary_with_failing_requests_stops_with_only_the_canary_changed(world: World) -> None:
    canary_world(world, Counters(20, 5), Counters(20, 0))
    with pytest.raises(RolloutError) as caught:
        run(world, Pace(canary=1, canary_wait=5))
    assert f"canary {WEB1}: Failed: " in str(caught.value)
    assert world.running() == {WEB1: NEW.version, WEB2: OLD.version, WEB3: OLD.version}
    assert world.balancer.now[WEB1] == "MAINT"
    assert outcomes(world) == ["failed", "untouched", "untouched"]


def test_a_canary_whose_status_fails_is_judged_failed(world: World) -> None:
    canary_world(world, Counters(20, 0), Counters(20, 0))
    state = world.cluster.hosts[WEB1]
    state.before["release_restart"] = lambda: None
    original = world.balancer.counters

    readings = []

    def sick_once_watched(nodes: tuple[object, ...]) -> dict[str, Counters]:
        readings.append(nodes)  # the first reading is the run's start, the second the watch's
        state.broken = len(readings) > 1  # the canary turns unhealthy once the watch has begun
        return original(nodes)  # type: ignore[arg-type]

    world.balancer.counters = sick_once_watched  # type: ignore[method-assign]
    with pytest.raises(RolloutError, match=f"canary {WEB1}: Failed: {WEB1}: /status answered"):
        run(world, Pace(canary=1, canary_wait=5))
    assert world.running()[WEB2] == OLD.version


def test_too_little_traffic_is_inconclusive_and_stops_without_a_terminal(world: World) -> None:
    canary_world(world, Counters(1, 0), Counters(1, 0))
    with pytest.raises(RolloutError, match=r"Inconclusive: .* fewer than canary_min_requests"):
        run(world, Pace(canary=1, canary_wait=0.01))
    assert world.running() == {WEB1: NEW.version, WEB2: OLD.version, WEB3: OLD.version}
    assert world.balancer.now[WEB1] == "UP"  # healthy as far as anyone can tell: it serves


def test_inconclusive_goes_on_when_the_user_says_so(world: World) -> None:
    canary_world(world, Counters(1, 0), Counters(1, 0))
    world.reporter.answers = ["y"]
    run(world, Pace(canary=1, canary_wait=0.01))
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    assert "inconclusive" in world.reporter.questions[0]
    entry = History(world.app.history_path).records()[-1].to_json()
    assert verdicts(entry).startswith("Inconclusive: ")
    assert "; the user went on" in verdicts(entry)


def test_confirm_asks_instead_of_watching(world: World) -> None:
    world.reporter.answers = ["n"]
    with pytest.raises(RolloutError, match=f"stopped after the canary {WEB1}: not confirmed"):
        run(world, Pace(canary=1, confirm=True))
    assert world.running() == {WEB1: NEW.version, WEB2: OLD.version, WEB3: OLD.version}


# -- guided failure -------------------------------------------------------------


def test_guided_failure_skip_goes_on_and_is_recorded(world: World) -> None:
    break_at_install(world, WEB1)
    world.reporter.answers = ["r", "s"]
    with pytest.raises(RolloutError, match="finished with 1 failed node"):
        run(world, Pace())
    assert "[r]etry it, [s]kip it" in world.reporter.questions[0]
    assert outcomes(world) == ["failed", "deployed", "deployed"]
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["hosts"][WEB1]["guided"] == "retry, skip"
    assert world.balancer.now[WEB1] == "MAINT"


def test_guided_failure_retry_that_works(world: World) -> None:
    state = world.cluster.hosts[WEB2]
    tries: list[int] = []

    def broken_once() -> None:
        tries.append(1)
        state.broken = len(tries) == 1

    state.before["install"] = broken_once
    world.reporter.answers = ["r"]
    run(world, Pace())
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    entry = History(world.app.history_path).records()[-1].to_json()
    assert entry["hosts"][WEB2] | {"restart_to_ready": 0} == entry["hosts"][WEB2] | {
        "restart_to_ready": 0,
        "outcome": "deployed",
        "guided": "retry",
    }


def test_guided_failure_roll_back(world: World) -> None:
    break_at_install(world, WEB2)
    world.reporter.answers = ["b"]
    with pytest.raises(RollBack):
        run(world, Pace())
    assert outcomes(world) == ["deployed", "failed", "untouched"]


def test_without_a_terminal_nothing_is_asked(world: World) -> None:
    break_at_install(world, WEB2)
    with pytest.raises(RolloutError):
        run(world, Pace())
    assert len(world.reporter.questions) == 1  # asked, and '' (no terminal) means: as today
    assert outcomes(world) == ["deployed", "failed", "untouched"]


def test_pace_flags_override_the_config() -> None:
    from fabfile.commands.options import PaceFlags
    from fabfile.errors import UsageError

    pace = Pace(canary=2)
    assert PaceFlags("25%").apply(pace).batch == Share(percent=25)
    assert PaceFlags().apply(pace, canary=False).canary == 0
    with pytest.raises(UsageError, match="--batch 0: expected at least 1"):
        PaceFlags("0").apply(pace)
    with pytest.raises(UsageError, match="--confirm asks on a terminal"):
        PaceFlags(confirm=True).apply(pace)
    assert dataclasses.replace(pace, confirm=True).confirm


def test_the_history_keeps_when_each_node_entered_each_phase(world: World) -> None:
    run(world, Pace(batch=Share(2)))
    entry = History(world.app.history_path).records()[-1].to_json()
    phases = entry["hosts"][WEB1]["phases"]
    names = [name for name, _ in phases]
    assert names[0] == "pre-flight" and "staged" in names
    assert names[-1] == "done" and "installing" in names and "waiting for /status" in names
    times = [at for _, at in phases]
    assert times == sorted(times) and times[-1] <= entry["seconds"]


# -- verdicts after every batch and in the watch window ---------------------------


def failing_once_started(world: World, failing: Counters) -> None:
    """No request fails before the run (its first reading); from then on each reading
    adds ``failing`` to every node on the new release and clean traffic to the others."""
    world.balancer.per_read = dict.fromkeys(HOSTS, Counters(20, 0))
    original = world.balancer.counters

    def reading(nodes: tuple[object, ...]) -> dict[str, Counters]:
        read = original(nodes)  # type: ignore[arg-type]
        world.balancer.per_read = {
            host: failing if world.running()[host] == NEW.version else Counters(20, 0)
            for host in HOSTS
        }
        return read

    world.balancer.counters = reading  # type: ignore[method-assign]


def test_a_batch_that_fails_requests_is_judged_failed_and_stops_with_it_out(world: World) -> None:
    failing_once_started(world, Counters(20, 5))
    with pytest.raises(RolloutError) as caught:
        run(world, Pace())
    assert "batch 1/3: Failed: 20 request(s) to the nodes on the release, 5 failed" in str(
        caught.value
    )
    assert "above max_error_rate (1.0%)" in str(caught.value)
    assert world.running() == {WEB1: NEW.version, WEB2: OLD.version, WEB3: OLD.version}
    assert world.balancer.now[WEB1] == "MAINT"
    entry = History(world.app.history_path).records()[-1].to_json()
    assert verdicts(entry).startswith("batch 1/3: Failed: ")


def test_on_failure_rollback_asks_the_run_to_roll_back(world: World) -> None:
    failing_once_started(world, Counters(20, 5))
    with pytest.raises(RollBack, match=r"batch 1/3: Failed: .*; on_failure = rollback"):
        run(world, Pace(on_failure="rollback"))
    assert world.running()[WEB2] == OLD.version  # the batches after it never went


def test_a_failure_rate_under_max_error_rate_goes_on(world: World) -> None:
    failing_once_started(world, Counters(200, 1))  # 0.5 %
    run(world, Pace(watch=0.01))
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    record = History(world.app.history_path).records()[-1]
    joined = "; ".join(record.verdict_texts)
    assert "batch 1/3: Successful: " in joined and "watch: Successful: " in joined
    said = [text.partition(":")[0] for _, text in record.verdicts]
    assert said == ["batch 1/3", "batch 2/3", "watch"]
    times = [at for at, _ in record.verdicts if at is not None]
    assert len(times) == 3 and times == sorted(times) and times[0] > 0


def test_the_watch_window_judges_every_node_after_the_last_batch(world: World) -> None:
    failing_once_started(world, Counters(20, 5))
    with pytest.raises(RolloutError, match=r"watch: Failed: .*; stopped, and they keep serving"):
        run(world, Pace(batch=Share(3), watch=5))
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    warning, watching = world.reporter.notes[:2]
    assert warning.startswith("warning: batch = 3 takes all 3 serving nodes out of rotation")
    assert watching == f"watch: {WEB1}, {WEB2}, {WEB3} for 5 s"


def test_servers_that_failed_as_much_before_the_run_are_not_blamed_on_it(world: World) -> None:
    world.balancer.per_read = dict.fromkeys(HOSTS, Counters(20, 5))  # before the run too
    run(world, Pace(batch=Share(3), watch=0.01))
    said = "; ".join(History(world.app.history_path).records()[-1].verdict_texts)
    assert said.startswith("watch: Successful: ")
    assert "the same servers before the run 25.0%" in said


def test_a_rollback_is_never_judged(world: World) -> None:
    failing_once_started(world, Counters(20, 5))
    run(world, Pace(watch=5, judged=False))
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)


@pytest.mark.parametrize(
    ("pace", "said"),
    [
        (Pace(), "order: one node after another (batch = 1); stops at the first failure"),
        (
            Pace(batch=Share(2), canary=1),
            "order: the first 1 node(s) as canary, then 2 nodes at a time (batch = 2); "
            "stops at the first failure",
        ),
        (
            Pace(batch=Share(percent=100.0), max_failures=Share(1)),
            "order: all 4 node(s) at once; stops once more than 1 fail (max_failures = 1)",
        ),
        (Pace(canary=4), "order: one node after another (batch = 1); stops at the first failure"),
    ],
)
def test_the_dry_run_words_the_order_of_a_run_in_batches(pace: Pace, said: str) -> None:
    """A canary as large as the run has nothing to wait for it: there is none (`split`)."""
    assert in_batches(pace, 4) == said


def test_the_dry_run_says_what_watches_a_rolling_run() -> None:
    pace = Pace(watch=120, on_failure="rollback")
    assert judged_in_batches(pace, 3) == (
        "order: one node after another (batch = 1); stops at the first failure; then every "
        "node on the release is watched for 120 s; a Failed verdict rolls every changed node "
        "back (on_failure)"
    )
    assert judged_in_batches(dataclasses.replace(pace, judged=False), 3) == in_batches(pace, 3)


# -- where a later batch's window starts (`Window`) ------------------------------


def readings_of(world: World, failing: Counters) -> list[dict[str, str]]:
    """What every node ran at each reading of haproxy's counters (the run's start, each
    window's start and end); from each reading on, a node on the new release gets
    ``failing`` traffic, the others clean traffic."""
    readings: list[dict[str, str]] = []
    original = world.balancer.counters

    def reading(nodes: tuple[object, ...]) -> dict[str, Counters]:
        running = world.running()
        readings.append(running)
        world.balancer.per_read = {
            host: failing if running[host] == NEW.version else Counters(20, 0) for host in HOSTS
        }
        return original(nodes)  # type: ignore[arg-type]

    world.balancer.counters = reading  # type: ignore[method-assign]
    return readings


def parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return TERMS["parallel"].world(tmp_path, monkeypatch)


def test_a_parallel_batch_is_judged_from_when_it_starts_to_when_it_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = parallel(tmp_path, monkeypatch)
    readings = readings_of(world, Counters(20, 0))
    run(world, Pace())
    old, new = OLD.version, NEW.version
    assert readings == [
        {WEB1: old, WEB2: old, WEB3: old},  # the run's start
        {WEB1: old, WEB2: old, WEB3: old},  # batch 1 opens, before its node is deployed
        {WEB1: new, WEB2: old, WEB3: old},  # batch 1 is over: judged
        {WEB1: new, WEB2: old, WEB3: old},  # batch 2 opens
        {WEB1: new, WEB2: new, WEB3: old},  # batch 2 judged; the last batch has none
    ]
    said = [text for _, text in History(world.app.history_path).records()[-1].verdicts]
    assert [text.partition(":")[0] for text in said] == ["batch 1/3", "batch 2/3"]


def test_a_rolling_batch_is_still_judged_over_its_warm_up(world: World) -> None:
    readings = readings_of(world, Counters(20, 0))
    run(world, Pace())
    old, new = OLD.version, NEW.version
    assert readings[1:3] == [{WEB1: new, WEB2: old, WEB3: old}] * 2  # opens once verified


def test_a_parallel_batch_with_too_few_requests_is_inconclusive_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = parallel(tmp_path, monkeypatch)
    readings_of(world, Counters(1, 1))  # 1 request a window: below canary_min_requests
    run(world, Pace())
    assert world.running() == dict.fromkeys(HOSTS, NEW.version)
    said = [note for note in world.reporter.notes if note.startswith("batch 1/3: Incon")]
    assert said and said[0].endswith("fewer than canary_min_requests (10) to judge; going on")


def test_a_parallel_batch_judged_failed_has_its_version_undeployed_and_stays_in_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = parallel(tmp_path, monkeypatch)
    readings_of(world, Counters(20, 5))
    with pytest.raises(RolloutError) as caught:
        run(world, Pace())  # on_failure = stop
    text = str(caught.value)
    assert text.startswith("batch 1/3: Failed: 20 request(s) to the nodes on the release, 5")
    assert text.endswith("; stopped, the version was undeployed from the nodes on it")
    assert world.running() == dict.fromkeys(HOSTS, OLD.version)  # new sessions: the old one
    assert world.balancer.now[WEB1] == "UP"  # no Tomcat leaves the pool
    assert any(n.startswith(f"{WEB1}: ##") and "undeployed; " in n for n in world.reporter.notes)
    assert outcomes(world) == ["failed", "untouched", "untouched"]


def test_a_parallel_batch_judged_failed_with_rollback_asks_the_run_to_roll_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = parallel(tmp_path, monkeypatch)
    readings_of(world, Counters(20, 5))
    with pytest.raises(RollBack, match=r"batch 1/3: Failed: .*; on_failure = rollback"):
        run(world, Pace(on_failure="rollback"))
    assert world.running() == {WEB1: NEW.version, WEB2: OLD.version, WEB3: OLD.version}


def test_the_dry_run_says_how_a_parallel_run_is_judged() -> None:
    pace = Pace(watch=30, on_failure="rollback")
    assert judged_over_each_batch(pace, 3) == (
        "order: one node after another (batch = 1); stops at the first failure; after every "
        "batch but the last, the nodes on the release are judged over that batch, from its "
        "start to its end (a version serves new sessions once deployed; too few requests to "
        "judge goes on); then every node on the release is watched for 30 s; a Failed "
        "verdict rolls every changed node back (on_failure)"
    )
    one_batch = dataclasses.replace(pace, batch=Share(3))
    assert judged_over_each_batch(one_batch, 3) == judged_in_batches(one_batch, 3)

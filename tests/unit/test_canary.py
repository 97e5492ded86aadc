"""The canary's verdict when haproxy's counters go backwards (haproxy restarted, or its
counters were cleared): the window starts again rather than judge a negative difference."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabfile.app.config import NodeConfig
from fabfile.cluster import probe
from fabfile.cluster.balancer import Counters
from fabfile.cluster.probe import Status
from fabfile.engine import canary
from fabfile.engine.canary import Judgement, Verdict, Watch
from tests.fakes import node_configs

CANARY, OTHER = "web1.invalid", "web2.invalid"


class Readings:
    """A `Rotation` whose counters are read from a list, one reading per call (the last
    one repeats)."""

    def __init__(self, *readings: tuple[Counters, Counters]) -> None:
        self.readings = list(readings)
        self.reads = 0

    def counters(self, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
        mine, theirs = self.readings[min(self.reads, len(self.readings) - 1)]
        self.reads += 1
        return {CANARY: mine, OTHER: theirs}


@pytest.fixture
def watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Watch:
    nodes = node_configs(tmp_path, f"hosts = {CANARY}, {OTHER}", "user = u")

    def healthy(node: NodeConfig, since: float | None = None) -> Status:
        return Status(node.label, node.url, True, "", 200, "com.example:shop", "1.0.2")

    monkeypatch.setattr(probe, "probe", healthy)
    monkeypatch.setattr(canary, "POLL", 0.01)
    return Watch(nodes[:1], nodes[1:], "com.example:shop", "1.0.2", 0.05, 10)


def judge(watch: Watch, rotation: Readings) -> Judgement:
    return canary.judge(watch, rotation)  # type: ignore[arg-type]


def test_counters_that_went_backwards_restart_the_window(watch: Watch) -> None:
    before = (Counters(12_490, 3), Counters(12_000, 2))
    restarted = (Counters(5, 0), Counters(5, 0))  # haproxy came back from zero
    after = (Counters(505, 0), Counters(505, 0))
    rotation = Readings(before, restarted, after)
    judgement = judge(watch, rotation)
    assert judgement.verdict == Verdict.SUCCESSFUL, judgement
    assert judgement.detail.startswith(
        "haproxy's counters went backwards 1 time(s) (haproxy restarted, or its counters were "
        "cleared), so the window started again: judged over the last 0.05 s; 500 request(s) "
        "to the canaries, 0 failed"
    )
    assert "-" not in judgement.detail.partition(";")[2]  # no negative count


def test_failed_requests_after_the_restart_still_fail_the_canary(watch: Watch) -> None:
    rotation = Readings(
        (Counters(9_000, 0), Counters(9_000, 0)),
        (Counters(0, 0), Counters(0, 0)),
        (Counters(100, 50), Counters(100, 0)),
    )
    judgement = judge(watch, rotation)
    assert judgement.verdict == Verdict.FAILED
    assert judgement.detail.startswith("haproxy's counters went backwards 1 time(s)")
    assert "100 request(s) to the canaries, 50 failed" in judgement.detail


def test_a_haproxy_that_keeps_restarting_gives_no_verdict(watch: Watch) -> None:
    rotation = Readings(*[(Counters(n, 0), Counters(n, 0)) for n in (900, 700, 500, 300, 100)])
    judgement = judge(watch, rotation)
    assert judgement.verdict == Verdict.INCONCLUSIVE
    assert "went backwards 4 times (is haproxy restarting over and over?)" in judgement.detail


def test_counters_that_only_grow_are_judged_as_before(watch: Watch) -> None:
    rotation = Readings((Counters(100, 0), Counters(100, 0)), (Counters(400, 0), Counters(400, 0)))
    judgement = judge(watch, rotation)
    assert judgement.verdict == Verdict.SUCCESSFUL
    assert judgement.detail.startswith("300 request(s) to the canaries, 0 failed")


# -- response times (haproxy's rtime: the mean of a server's last 1024 requests) --------


def test_the_window_mean_is_exact_while_haproxy_keeps_every_request() -> None:
    before = Counters(300, 0, 2)  # 300 requests at 2 ms
    after = Counters(400, 0, 77)  # then 100 at 302 ms: (300*2 + 100*302) / 400 = 77
    assert after.window_ms(before) == pytest.approx(302)
    assert after.window_ms(after) is None  # no request came


def test_the_window_mean_is_estimated_once_haproxy_slides() -> None:
    mean, slow = 2.0, 300.0
    for _ in range(500):  # haproxy's sliding mean after 500 slow requests
        mean += (slow - mean) / 1024
    assert Counters(5_500, 0, round(mean)).window_ms(Counters(5_000, 0, 2)) == pytest.approx(
        slow, rel=0.01
    )


def test_nodes_answering_slowly_fail_against_the_others(watch: Watch) -> None:
    rotation = Readings(
        (Counters(300, 0, 2), Counters(300, 0, 2)),
        (Counters(400, 0, 77), Counters(400, 0, 2)),
    )
    judgement = judge(watch, rotation)
    assert judgement.verdict == Verdict.FAILED, judgement
    assert "answered in 302 ms on average, 151.0 times the other nodes' 2 ms" in judgement.detail
    assert judgement.detail.endswith("above max_slowdown (3)")


def test_a_few_milliseconds_more_is_no_slowdown(watch: Watch) -> None:
    rotation = Readings(
        (Counters(300, 0, 2), Counters(300, 0, 2)),
        (Counters(400, 0, 9), Counters(400, 0, 2)),  # 30 ms against 2: 15 times, 28 ms
    )
    assert judge(watch, rotation).verdict == Verdict.SUCCESSFUL


def test_nodes_as_slow_as_before_the_run_are_not_blamed_on_it(watch: Watch) -> None:
    readings = (
        (Counters(300, 0, 280), Counters(300, 0, 2)),
        (Counters(400, 0, 285), Counters(400, 0, 2)),
    )
    # 300 ms over the window against the others' 2: slower, unless it always was
    assert judge(watch, Readings(*readings)).verdict == Verdict.FAILED
    slow_before = dataclasses.replace(watch, before={CANARY: Counters(300, 0, 280)})
    assert judge(slow_before, Readings(*readings)).verdict == Verdict.SUCCESSFUL

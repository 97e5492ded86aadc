"""SIGTERM and SIGHUP stop a run as Ctrl-C does, and an interruption ends a fan-out
within about a second: the signals, the boundary's exit codes, the fan-out's threads
cut short, and every strategy's clean-up on the fake cluster."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from invoke.exceptions import Exit

from fabfile.app.pace import Pace, Share
from fabfile.cli.boundary import boundary
from fabfile.cluster import inflight
from fabfile.cluster.node import Node
from fabfile.engine import ending, fanout, signals
from fabfile.engine.phase import Phase
from fabfile.engine.signals import Signalled
from fabfile.engine.target import Outcome, Target
from fabfile.errors import ExitCode, Interrupted, explain
from fabfile.records.history import History
from tests.reverse import register
from tests.unit.test_contract import EVERY, HOSTS, TERMS, World

SIGNALS = [(signal.SIGTERM, ExitCode.TERMINATED), (signal.SIGHUP, ExitCode.HANGUP)]


def later(seconds: float, number: int) -> threading.Timer:
    """Send this process ``number`` in ``seconds``, from another thread, as ``kill`` would."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), number))
    timer.start()
    return timer


# -- the signals ----------------------------------------------------------------------


@pytest.mark.parametrize(("number", "code"), SIGNALS)
def test_a_handled_signal_raises_in_the_main_thread_and_the_handler_is_put_back(
    number: signal.Signals, code: ExitCode
) -> None:
    before = signal.getsignal(number)
    with pytest.raises(Signalled) as caught, signals.handled():
        signal.raise_signal(number)
        time.sleep(5)  # not reached: the handler raises first
    assert signal.getsignal(number) == before
    assert (signals.cause(caught.value), signals.exit_code(caught.value)) == (number.name, code)
    assert isinstance(caught.value, KeyboardInterrupt)  # every Ctrl-C clean-up applies


def test_ctrl_c_keeps_its_name_and_code() -> None:
    assert (signals.cause(KeyboardInterrupt()), signals.exit_code(KeyboardInterrupt())) == (
        "Ctrl-C",
        ExitCode.INTERRUPTED,
    )


def test_an_ignored_sighup_stays_ignored() -> None:
    """``nohup deploy ...`` must outlive its terminal."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals.handled():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, before)


@pytest.mark.parametrize(("number", "code"), SIGNALS)
def test_the_boundary_exits_with_the_signals_code(number: signal.Signals, code: ExitCode) -> None:
    @boundary
    def task() -> None:
        os.kill(os.getpid(), number)
        time.sleep(5)

    with pytest.raises(Exit) as caught:
        task()
    assert (caught.value.code, caught.value.message) == (int(code), f"interrupted ({number.name})")
    assert signal.getsignal(number) == signal.SIG_DFL


def test_an_interruption_raised_as_our_error_keeps_its_signals_code() -> None:
    @boundary
    def task() -> None:
        raise signals.interrupted("retire interrupted by SIGTERM", Signalled(signal.SIGTERM))

    with pytest.raises(Exit) as caught:
        task()
    assert caught.value.code == 143


# -- the fan-out ----------------------------------------------------------------------


def test_an_interruption_cuts_the_calls_in_flight_short() -> None:
    """A call blocked on a silent node ends when its connection is cut, not at its
    deadline; its clean-up's notes reach the interruption."""
    cut: list[int] = []

    def work(number: int) -> int:
        hung = threading.Event()

        def close() -> None:
            cut.append(number)
            hung.set()

        try:
            with inflight.holding(close):
                hung.wait(30)  # an SSH call on a node that went silent
                raise OSError("connection closed")  # what a cut connection raises
        except KeyboardInterrupt as error:
            error.add_note(f"node {number} left drained")
            raise
        return number

    started = time.monotonic()
    later(0.3, signal.SIGTERM)
    with pytest.raises(Signalled) as caught, signals.handled():
        fanout.each(work, [1, 2, 3])
    assert time.monotonic() - started < 0.3 + fanout.GRACE + 1.0  # the calls: 30 s
    assert sorted(cut) == [1, 2, 3]
    assert sorted(caught.value.__notes__) == [f"node {n} left drained" for n in (1, 2, 3)]


def test_waits_in_the_threads_end_and_no_new_target_starts() -> None:
    begun: list[int] = []
    signalled: list[float] = []
    lock = threading.Lock()

    def work(number: int) -> None:
        with lock:
            begun.append(number)
            if len(begun) == fanout.WORKERS:  # every worker busy: the signal comes now
                signalled.append(time.monotonic())
                later(0.0, signal.SIGTERM)
        inflight.pause(30)  # a /status poll, a drain, a restart claim waited for

    with pytest.raises(Signalled), signals.handled():
        fanout.each(work, list(range(fanout.WORKERS + 5)))
    assert time.monotonic() - signalled[0] < fanout.GRACE + 1.0  # the waits: 30 s
    assert len(begun) == fanout.WORKERS


def test_a_call_that_will_not_end_is_left_after_the_grace() -> None:
    def work(number: int) -> None:
        time.sleep(10)  # nothing cuts it short: a local step with no flight in it

    started = time.monotonic()
    later(0.2, signal.SIGTERM)
    with pytest.raises(Signalled), signals.handled():
        fanout.each(work, [1, 2])
    assert time.monotonic() - started < 0.2 + fanout.GRACE + 1.0  # the calls: 10 s


def test_outside_a_fan_out_nothing_is_stopped() -> None:
    inflight.check()
    with inflight.holding(lambda: None):
        inflight.pause(0.01)
    assert fanout.each(lambda n: n * 2, [1, 2, 3]) == [2, 4, 6]


def test_the_first_targets_error_is_raised_once_every_call_is_done() -> None:
    done: list[int] = []

    def work(number: int) -> int:
        time.sleep(0.05 * number)
        done.append(number)
        if number in (2, 3):
            raise ValueError(number)
        return number

    with pytest.raises(ValueError, match="3"):  # first in order, though 2 raised first
        fanout.each(work, [3, 2, 1])
    assert sorted(done) == [1, 2, 3]


# -- every strategy ---------------------------------------------------------------------


@pytest.fixture(params=EVERY)
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    register(monkeypatch)
    yield TERMS[request.param].world(tmp_path, monkeypatch)


@pytest.mark.parametrize(("number", "code"), SIGNALS)
def test_sigterm_and_sighup_stop_every_strategy_as_ctrl_c_does(
    world: World, number: signal.Signals, code: ExitCode
) -> None:
    stopped = world.terms.new(HOSTS[1])

    def signalled() -> None:
        raise Signalled(number)

    world.cluster.hosts[stopped].before[world.terms.step] = signalled
    with pytest.raises(Interrupted) as caught:
        world.run()
    assert caught.value.exit_code == code
    assert f"interrupted at node {stopped} in phase " in str(caught.value)
    assert f"' by {number.name}. " in str(caught.value)
    assert world.balancer.most_hosts_out <= 1
    serving = [host for host, versions in world.serving().items() if versions]
    assert len(serving) >= len(HOSTS) - 1
    record = History(world.app.history_path).records()[-1].to_json()
    assert record["outcome"] == "interrupted" and f"by {number.name}" in record["message"]


def test_a_batch_stops_within_the_grace_and_says_how_each_node_was_left(world: World) -> None:
    """Every node of the batch waits (a restart, a deploy beside) when SIGTERM comes."""
    caught_out = 1 if world.name == "reverse" else 3  # reverse goes one node at a time
    waiting: list[str] = []
    sent: list[float] = []
    lock = threading.Lock()

    def wait(host: str) -> None:
        with lock:  # SIGTERM once every node of the batch is in its step, not by the clock
            waiting.append(host)
            if len(waiting) == caught_out:
                sent.append(time.monotonic())
                later(0.0, signal.SIGTERM)
        inflight.pause(30)

    for host in HOSTS:
        world.cluster.hosts[world.terms.new(host)].before[world.terms.step] = functools.partial(
            wait, host
        )
    with pytest.raises(Interrupted) as caught, signals.handled():
        world.run(pace=Pace(batch=Share(3)))
    assert sent and time.monotonic() - sent[0] < fanout.GRACE + 1.0  # the waits: 30 s
    assert caught.value.exit_code == ExitCode.TERMINATED
    record = History(world.app.history_path).records()[-1].to_json()
    assert record["outcome"] == "interrupted"
    outcomes = {h: r["outcome"] for h, r in record["hosts"].items()}
    interrupted = [h for h in HOSTS if outcomes[world.terms.new(h)] == "interrupted"]
    assert len(interrupted) == caught_out, outcomes
    if world.name == "rolling":  # restarted: left drained, each said
        assert [world.balancer.now[h] for h in HOSTS] == ["DRAIN"] * 3
        for host in HOSTS:
            assert f"{host} is left in drain in haproxy" in explain(caught.value)


def test_a_stop_mid_drain_names_the_node_being_drained_not_one_staged() -> None:
    """Rolling, the second node's drain under way when the signal comes: the message
    names it and its phase, not the last node (staged, waiting for its turn)."""

    def target(host: str, phase: Phase, outcome: Outcome = Outcome.UNTOUCHED) -> Target:
        node = SimpleNamespace(config=SimpleNamespace(label=host))
        return Target(cast(Node, node), phase=phase, outcome=outcome)

    done, draining, staged = HOSTS[:3]
    targets = [
        target(done, Phase.DONE, Outcome.DEPLOYED),
        target(draining, Phase.DRAINING),
        target(staged, Phase.STAGED),
    ]
    told = ending.interruption(targets, "", "SIGHUP")
    assert told.startswith(f"interrupted at node {draining} in phase 'draining' by SIGHUP. ")
    assert [t.outcome for t in targets] == [Outcome.DEPLOYED, Outcome.UNTOUCHED, Outcome.UNTOUCHED]

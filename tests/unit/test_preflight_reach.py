"""Pre-flight refuses a node that runs a release when nothing could verify it after its
restart: its /status answers on the node but not to this machine, or the way to it
failed. A node whose container is down (the node itself finds its port shut) goes on,
as before: the restart mends it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from fabfile.cluster.holdings import Holdings
from fabfile.cluster.probe import Status
from fabfile.engine import preflight
from fabfile.engine.target import Target
from fabfile.records.history import Action
from tests.fakes import node_configs

RUNS = SimpleNamespace(current=object())  # holdings of a node that runs a release
FRESH = SimpleNamespace(current=None)  # a node no release was ever deployed to
URL = "http://web1:8080/status"
REFUSED = Status("web1", URL, False, "connection refused")
ANSWERED = Status("web1", URL, False, "HTTP 500", code=500)
UNREACHED = Status("web1", URL, False, "not reached through SSH (web1: ...)", unreached=True)
ON_THE_NODE = Status("web1", URL, True, "", 200, "g:a", "1.0")


def target(tmp_path: Path, status: Status, holdings: Any, *lines: str) -> Target:
    node = node_configs(tmp_path, "hosts = web1", "user = u", *lines)[0]
    return Target(cast(Any, SimpleNamespace(config=node)), cast(Holdings, holdings), status)


def plan(action: Action = Action.DEPLOY, force: bool = False) -> Any:
    return SimpleNamespace(action=action, force=force)


@pytest.fixture
def on_the_node(monkeypatch: pytest.MonkeyPatch) -> list[Status]:
    """What the node itself gets from its /status (the first of the list)."""
    seen = [ON_THE_NODE]
    monkeypatch.setattr(preflight, "_from_the_node", lambda target: seen[0])
    monkeypatch.setattr(preflight.probe, "probe", lambda config: REFUSED)  # asked again
    return seen


def test_a_node_that_answers_itself_but_not_to_this_machine_is_refused(
    tmp_path: Path, on_the_node: list[Status]
) -> None:
    why = preflight._unreachable(plan(), target(tmp_path, REFUSED, RUNS))
    assert why == (
        f"web1: /status at {URL} answers on the node itself (200 g:a 1.0) but not from "
        "this machine (connection refused), so a deploy could not verify it after its "
        "restart. Set http_via = ssh to ask it through its SSH connection (or open that "
        "port to this machine); or leave it out with --hosts, or deploy to it anyway "
        "with --force"
    )


def test_a_node_slow_to_answer_this_machine_once_is_not_refused(
    tmp_path: Path, on_the_node: list[Status], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container still starting (Tomcat deploying its webapps) holds a request past
    status_timeout, then answers the node's own probe: asked again from here, it answers."""
    monkeypatch.setattr(preflight.probe, "probe", lambda config: ON_THE_NODE)
    late = target(tmp_path, Status("web1", URL, False, "timed out"), RUNS)
    assert preflight._unreachable(plan(), late) == ""
    assert late.status == ON_THE_NODE


def test_a_node_whose_way_failed_is_refused(tmp_path: Path, on_the_node: list[Status]) -> None:
    why = preflight._unreachable(plan(), target(tmp_path, UNREACHED, RUNS, "http_via = ssh"))
    assert why == (
        f"web1: /status at {URL} cannot be reached (not reached through SSH (web1: ...)), so "
        "a deploy could not verify it after its restart; leave it out with --hosts, or "
        "deploy to it anyway with --force"
    )


def test_a_node_whose_container_is_down_goes_on_as_before(
    tmp_path: Path, on_the_node: list[Status]
) -> None:
    on_the_node[0] = REFUSED  # the node itself finds its port shut
    assert preflight._unreachable(plan(), target(tmp_path, REFUSED, RUNS)) == ""
    through_ssh = target(tmp_path, REFUSED, RUNS, "http_via = ssh")  # its sshd found it shut
    assert preflight._unreachable(plan(), through_ssh) == ""


@pytest.mark.parametrize(
    ("status", "holdings", "run"),
    [
        (ANSWERED, RUNS, plan()),  # a 500 is an answer: a deploy may well fix it
        (REFUSED, FRESH, plan()),  # the first deploy: it serves nobody yet
        (REFUSED, RUNS, plan(force=True)),
        (UNREACHED, RUNS, plan(force=True)),
        (REFUSED, RUNS, plan(Action.STAGE)),  # nothing goes live
        (REFUSED, RUNS, plan(Action.RETIRE)),
    ],
)
def test_what_is_let_through(
    tmp_path: Path, on_the_node: list[Status], status: Status, holdings: Any, run: Any
) -> None:
    assert preflight._unreachable(run, target(tmp_path, status, holdings)) == ""

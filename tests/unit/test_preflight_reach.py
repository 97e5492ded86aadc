"""Pre-flight refuses a node that runs a release but whose /status gives no answer:
nothing could verify it after its restart."""

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
REFUSED = Status("web1", "http://web1:8080/status", False, "connection refused")
ANSWERED = Status("web1", "http://web1:8080/status", False, "HTTP 500", code=500)


def target(tmp_path: Path, status: Status, holdings: Any, *lines: str) -> Target:
    node = node_configs(tmp_path, "hosts = web1", "user = u", *lines)[0]
    return Target(cast(Any, SimpleNamespace(config=node)), cast(Holdings, holdings), status)


def plan(action: Action = Action.DEPLOY, force: bool = False) -> Any:
    return SimpleNamespace(action=action, force=force)


def test_a_node_running_a_release_with_no_answer_is_refused_saying_what_to_do(
    tmp_path: Path,
) -> None:
    why = preflight._unreachable(plan(), target(tmp_path, REFUSED, RUNS))
    assert why == (
        "web1: /status at http://web1:8080/status cannot be reached from this machine "
        "(connection refused), so a deploy could not verify it after its restart. Check "
        "that it is up and that its port answers (http_via chooses how it is asked); leave "
        "it out with --hosts, or deploy to it anyway with --force"
    )


def test_through_ssh_the_refusal_says_so(tmp_path: Path) -> None:
    refused = target(tmp_path, REFUSED, RUNS, "http_via = ssh")
    assert "cannot be reached through its SSH connection" in preflight._unreachable(plan(), refused)


@pytest.mark.parametrize(
    ("status", "holdings", "run"),
    [
        (ANSWERED, RUNS, plan()),  # a 500 is an answer: a deploy may well fix it
        (REFUSED, FRESH, plan()),  # the first deploy: it serves nobody yet
        (REFUSED, RUNS, plan(force=True)),
        (REFUSED, RUNS, plan(Action.STAGE)),  # nothing goes live
        (REFUSED, RUNS, plan(Action.RETIRE)),
    ],
)
def test_what_is_let_through(tmp_path: Path, status: Status, holdings: Any, run: Any) -> None:
    assert preflight._unreachable(run, target(tmp_path, status, holdings)) == ""

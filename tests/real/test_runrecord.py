"""A coordinator killed with SIGKILL mid-rollout (nothing of the tool runs after it): the
run was written ahead, so the next command says it was cut off, where, and what each of
its nodes runs now; rollback goes to the release that was live before it, and says so.
Under a paced load through haproxy, which loses no request.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from sandbox import cluster
from tests import cli
from tests.real.helpers import all_on, history, kill_when, versions
from tests.real.test_balancer import Watcher

pytestmark = pytest.mark.real
LIVE, CUT = "search-web-frontend-1.0.126.war", "search-web-frontend-1.0.124.war"
REPO = Path(__file__).resolve().parents[2]


def answering(sandbox: cluster.Cluster, address: str, seconds: float = 20) -> str:
    """What the node runs once it answers again ('' if it does not within ``seconds``):
    a restart that the coordinator's death cut short may have left it down."""
    deadline = time.monotonic() + seconds
    while not (found := versions(sandbox)[address]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_a_run_killed_mid_restart_is_told_and_rollback_goes_to_the_release_live_before_it(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second, third = sandbox.addresses
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the `deploy` below runs this code
    assert cli.run([LIVE], on_125, capsys).code == 0
    with Watcher(sandbox) as load:
        printed = kill_when(
            ["deploy", CUT],
            on_125,
            lambda line: line.split()[1:3] == [second, "restarting"],
        )
        number = len(history(on_125))
        assert history(on_125)[-1]["outcome"] == "cut off", printed
        now = answering(sandbox, second)
        status = cli.run([], on_125, capsys)
        assert status.code == 1, status.text  # the second node is left drained
        notice = status.out[status.out.index(f"Run {number} ") :].splitlines()
        assert notice[0].startswith(f"Run {number} (deploy {CUT} by "), status.out
        assert notice[0].endswith(
            f"was cut off in phase 'restarting' on {second}: no end was recorded."
        )
        assert notice[1] == f"  {first}: deployed (done); now runs 1.0.124, haproxy UP"
        runs = f"runs {now}" if now else "does not answer Ok: .*"
        assert re.fullmatch(
            rf"  {re.escape(second)}: installed, not verified \(restarting\); now {runs}, "
            "haproxy DRAIN",
            notice[2],
        ), notice[2]
        assert notice[3] == f"  {third}: untouched (staged); now runs 1.0.126, haproxy UP"
        again = f"To finish it, run it again: deploy {CUT} --app-dir {on_125}."
        assert notice[4] == f"{again} To go back instead: deploy rollback --app-dir {on_125}"
        # the killed run's lock on the nodes lasts its lease (20 s): rollback waits for it
        back = cli.run(["rollback", "--lock-wait", "60"], on_125, capsys)
        assert back.code == 0, back.text
        assert f"took over the deploy lock on {first}, " in back.out, back.out
        said = [line for line in back.out.splitlines() if line.startswith("rollback to ")]
        assert said[0] == (
            f"rollback to 1.0.126, the release live on every node before run {number} "
            f"(deploy 1.0.124, cut off in phase 'restarting' on {second})"
        ), back.out
    assert load.failed == [], load.failed
    assert load.served > 100
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    settled = cli.run([], on_125, capsys)
    assert settled.code == 0 and "cut off" not in settled.out, settled.text  # all UP
    assert [e["outcome"] for e in history(on_125)[-2:]] == ["cut off", "ok"]

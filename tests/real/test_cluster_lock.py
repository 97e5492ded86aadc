"""One lock per cluster, on the real sandbox: two coordinators (two copies of the app
directory) racing, a holder killed with SIGKILL, and ``deploy unlock``.

The lock lives on the nodes (``releases_dir/deploy.lock``), so the two copies of the
app directory share it although each has its own ``.deploy.lock``. Under a paced load
through haproxy, whose every server state is sampled between requests, a race must
never take more than ``batch`` nodes out of rotation nor fail a request.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.cluster.nodelock import LEASE
from fabfile.engine.phase import Phase
from fabfile.view.progress import PlainReporter
from sandbox import cluster
from sandbox.app import VERSIONS
from tests import cli
from tests.real.helpers import all_on, second_copy, versions
from tests.real.test_batches import Load

pytestmark = pytest.mark.real
RACES = 10
WAR = "search-web-frontend-{}.war"


@pytest.fixture
def copy(on_125: Path, tmp_path: Path) -> Path:
    """A second copy of the app directory, as a second coordinator would have it."""
    return second_copy(on_125, tmp_path)


def start(app_dir: Path, version: str, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["deploy", WAR.format(version), *flags],
        cwd=app_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(runs: list[subprocess.Popen[str]]) -> list[tuple[int, str, float]]:
    """Each run's exit code, output and when it ended, the runs read at once."""
    ended: dict[int, float] = {}
    deadline = time.monotonic() + 240
    while len(ended) < len(runs) and time.monotonic() < deadline:
        for index, run in enumerate(runs):
            if index not in ended and run.poll() is not None:
                ended[index] = time.monotonic()
        time.sleep(0.05)
    for run in runs:
        if run.poll() is None:
            run.kill()
    return [(run.wait(), run.communicate()[0], ended.get(i, 0.0)) for i, run in enumerate(runs)]


def test_two_coordinators_racing_one_runs_the_other_is_refused_or_waits(
    on_125: Path, copy: Path, sandbox: cluster.Cluster
) -> None:
    running = "1.0.125"
    with Load(sandbox) as load:
        for race in range(RACES):
            pair = sorted(v for v in VERSIONS if v != running)
            mine, theirs = pair if race % 2 else pair[::-1]
            waits = race % 3 == 2  # one race in three, B may wait for A instead
            flags = ["--lock-wait", "120"] if waits else []
            runs = [start(on_125, mine), start(copy, theirs, *flags)]
            (a, a_out, a_end), (b, b_out, b_end) = finish(runs)
            said = f"race {race}:\n--- A {runs[0].pid}:\n{a_out}\n--- B {runs[1].pid}:\n{b_out}"
            if waits and (a, b) == (0, 0):  # B waited for A, then ran
                # what is left of --lock-wait 120 when the first host refused: the other
                # hosts' connections are dialled meanwhile, a second or so on a busy machine
                first = re.escape(sandbox.addresses[0])
                waited = re.search(rf"waiting up to (\d+) s for the deploy lock on {first}", b_out)
                assert waited and 100 <= int(waited[1]) <= 120, said
                assert f"(pid {runs[0].pid}, `deploy " in b_out, said
                assert b_end > a_end, said
                running = theirs
            else:
                assert sorted([a, b]) == [0, 5], said
                won, lost = (0, 1) if a == 0 else (1, 0)
                refused = [a_out, b_out][lost]
                assert "error: the deploy lock is held on " in refused, said
                assert f"(pid {runs[won].pid}, `deploy " in refused, said
                assert "nothing was changed" in refused, said
                running = [mine, theirs][won]
            assert versions(sandbox) == all_on(sandbox, running), said
    assert load.most_out() <= 1  # batch = 1: never more than one node out of rotation
    assert load.failed == [], load.failed[:5]
    assert load.served > 100


@pytest.fixture
def killed(on_125: Path, sandbox: cluster.Cluster) -> Iterator[int]:
    """A deploy of 1.0.126 SIGKILLed while it restarts the second node: its lock is
    left on every node, renewed by nobody. Yields its pid."""
    second = sandbox.addresses[1]
    process = start(on_125, "1.0.126")
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if second in line and "restarting" in line:
            process.kill()
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    yield process.pid


def wait_for_the_lease(since: float) -> None:
    time.sleep(max(0.0, since + LEASE + 1 - time.monotonic()))


def test_a_killed_holders_lock_is_reported_then_taken_over_after_its_lease(
    on_125: Path, sandbox: cluster.Cluster, killed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    at = time.monotonic()
    status = cli.run([], on_125, capsys)
    held = f"lock: held on {', '.join(sandbox.addresses)} by "
    assert held in status.out and f"(pid {killed}, `deploy " in status.out, status.text
    refused = cli.run([WAR.format("1.0.126")], on_125, capsys)
    assert refused.code == 5, refused.text
    assert f"(pid {killed}, `deploy " in refused.err and "its lease ends in" in refused.err
    assert "--lock-wait SECONDS" in refused.err and "`deploy unlock`" in refused.err
    wait_for_the_lease(at)
    status = cli.run([], on_125, capsys)
    assert f"lock: stale on {', '.join(sandbox.addresses)}, left by " in status.out, status.text
    again = cli.run([WAR.format("1.0.126")], on_125, capsys)
    assert again.code == 0, again.text
    took = f"took over the deploy lock on {', '.join(sandbox.addresses)}, left by "
    assert took in again.out and f"(pid {killed}, `deploy " in again.out, again.text
    assert re.search(r"its lease ended \d+ s ago without renewal", again.out), again.out
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert "lock:" not in cli.run([], on_125, capsys).out  # released at the end


def test_lock_wait_outlasts_a_killed_holders_lease(
    on_125: Path, sandbox: cluster.Cluster, killed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    again = cli.run([WAR.format("1.0.126"), "--lock-wait", "60"], on_125, capsys)
    assert again.code == 0, again.text
    assert f"waiting up to 60 s for the deploy lock on {sandbox.addresses[0]}" in again.out
    assert f"took over the deploy lock on {', '.join(sandbox.addresses)}" in again.out
    assert versions(sandbox) == all_on(sandbox, "1.0.126")


def test_unlock_refuses_a_live_lock_and_clears_it_with_force_saying_whose(
    on_125: Path, sandbox: cluster.Cluster, killed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = cli.run(["unlock"], on_125, capsys)
    assert shown.code == 5, shown.text
    assert f"(pid {killed}, `deploy " in shown.out
    assert "a run renews it, so it was not cleared" in shown.err
    assert "unlock --force" in shown.err
    forced = cli.run(["unlock", "--force"], on_125, capsys)
    assert forced.code == 0, forced.text
    cleared = f"cleared the deploy lock on {', '.join(sandbox.addresses)}, held by "
    assert cleared in forced.out and f"(pid {killed}, `deploy " in forced.out
    assert "it was live: if that run still goes on, it takes it back" in forced.out
    again = cli.run([WAR.format("1.0.126")], on_125, capsys)  # at once: nothing to wait for
    assert again.code == 0, again.text
    assert "took over" not in again.out
    assert cli.run(["unlock"], on_125, capsys).out.startswith("lock: free on every node (3)")


def test_unlock_clears_a_stale_lock_without_force(
    on_125: Path, sandbox: cluster.Cluster, killed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    at = time.monotonic()
    wait_for_the_lease(at)
    cleared = cli.run(["unlock", "--hosts", sandbox.addresses[0]], on_125, capsys)
    assert cleared.code == 0, cleared.text
    assert f"cleared the deploy lock on {sandbox.addresses[0]}, held by " in cleared.out
    assert f"(pid {killed}, `deploy " in cleared.out and "it had gone stale" in cleared.out
    left = cli.run(["unlock"], on_125, capsys)  # the other two: still there, and stale too
    assert left.code == 0 and f"lock: stale on {', '.join(sandbox.addresses[1:])}" in left.out


def test_a_live_run_is_not_unlocked_and_a_rollback_reads_its_target_after_it(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    deploying = start(on_125, "1.0.126")
    assert deploying.stdout is not None
    for line in deploying.stdout:
        if "restarting" in line:
            break
    shown = cli.run(["unlock"], on_125, capsys)
    back = cli.run(["rollback", "--lock-wait", "120"], on_125, capsys)
    rest = deploying.stdout.read()
    assert deploying.wait(timeout=120) == 0, rest
    assert shown.code == 5 and f"(pid {deploying.pid}, `deploy " in shown.out, shown.text
    assert back.code == 0, back.text
    # read after the deploy ended: back from 1.0.126 to 1.0.125, not from 1.0.125 to before
    assert versions(sandbox) == all_on(sandbox, "1.0.125"), back.text


def test_a_lock_a_node_kept_at_the_runs_end_is_taken_over_by_the_next_run_from_here(
    on_125: Path,
    copy: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second, _ = sandbox.addresses
    original = PlainReporter.phase

    def sshd_dies(self: PlainReporter, host: str, phase: Phase, detail: str = "") -> None:
        original(self, host, phase, detail)
        if (host, phase) == (first, Phase.DONE):
            cluster.stop_sshd(sandbox, second)

    monkeypatch.setattr(PlainReporter, "phase", sshd_dies)
    try:
        cut = cli.run([WAR.format("1.0.126")], on_125, capsys)
    finally:
        cluster.start_sshd(sandbox, second)
        monkeypatch.undo()
    assert cut.code == 1, cut.text
    assert f"the deploy lock could not be released on {second} " in cut.out, cut.text
    elsewhere = subprocess.run(
        ["deploy", WAR.format("1.0.126")], cwd=copy, capture_output=True, text=True, timeout=120
    )
    assert elsewhere.returncode == 5, elsewhere.stdout + elsewhere.stderr
    assert f"held on {second} by " in elsewhere.stderr
    assert f"(pid {os.getpid()}, `deploy " in elsewhere.stderr
    again = cli.run([WAR.format("1.0.126")], on_125, capsys)
    assert again.code == 0, again.text
    assert f"took over the deploy lock on {second}, left by " in again.out
    assert "that run of this app directory ended without releasing it there" in again.out
    assert versions(sandbox) == all_on(sandbox, "1.0.126")

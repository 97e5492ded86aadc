"""The deploy lock on one node: its scripts run in a real ``sh`` against a temporary
HOME, with hostile names, racing takers and the node's own clock."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fabfile.cluster import nodelock
from fabfile.cluster.layout import Layout
from fabfile.cluster.nodelock import NodeLock
from fabfile.records.lock import Holder
from tests.unit.helpers import sh

ROOT = "~/releases/shop"
HOSTILE = '~/rel dir/it\'s "here"/$(touch {canary})/`touch {canary}`/-x'


def run(script: str, home: Path) -> str:
    """The script's output; it must succeed."""
    done = sh(script, home)
    assert done.returncode == 0, done.stderr
    return done.stdout


def holder(command: str = "deploy shop-1.2.war") -> Holder:
    return Holder(4711, "alice", "coord-2", "2026-05-01T03:12:09+00:00", "99", command)


def take(home: Path, token: str, root: str = ROOT, lease: float = 20, **kw: str) -> list[str]:
    script = nodelock.take_script(root, token, holder(**kw), lease)
    return [answer.word for answer in nodelock.answers(run(script, home))]


def lock_file(home: Path, root: str = ROOT) -> Path:
    return Path(str(home) + Layout(root).deploy_lock[1:])


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def tick_past(seconds: float) -> None:
    """Wait until the node's clock (/proc/uptime, in steps of 10 ms) reads later than
    ``seconds``: two writes of a lock within one step are the same line."""
    while uptime() <= seconds:
        time.sleep(0.001)


def test_a_free_node_is_taken_and_the_lock_names_its_holder(tmp_path: Path) -> None:
    assert take(tmp_path, "run-a") == [nodelock.TAKEN]
    [read] = nodelock.answers(run(nodelock.read_script(ROOT), tmp_path))
    lock = read.lock
    assert read.word == nodelock.HELD and lock is not None and not lock.stale
    assert lock.token == "run-a" and lock.holder == holder()
    assert lock.until == pytest.approx(lock.renewed + 20, abs=0.02)
    assert lock.who() == (
        "alice@coord-2 (pid 4711, `deploy shop-1.2.war`) since 2026-05-01T03:12:09+00:00"
    )
    assert "held for 0 s, renewed 0 s ago, its lease ends in 20 s" in lock.how_long()
    left = sorted(p.name for p in lock_file(tmp_path).parent.iterdir())
    assert left == ["deploy.lock", "deploy.lock.mutex"]  # nothing half-written left behind


def test_another_run_is_refused_and_the_lock_is_unchanged(tmp_path: Path) -> None:
    take(tmp_path, "run-a")
    before = lock_file(tmp_path).read_text()
    said = nodelock.answers(run(nodelock.take_script(ROOT, "run-b", holder()), tmp_path))
    assert [a.word for a in said] == [nodelock.HELD]
    assert said[0].lock is not None and said[0].lock.token == "run-a"
    assert lock_file(tmp_path).read_text() == before


def test_nothing_after_the_script_runs_when_another_run_holds_it(tmp_path: Path) -> None:
    """Pre-flight appends the holdings script (which tidies): it must not run."""
    take(tmp_path, "run-a")
    run(nodelock.take_script(ROOT, "run-b", holder()) + "\ntouch tidied", tmp_path)
    assert not (tmp_path / "tidied").exists()
    run(nodelock.take_script(ROOT, "run-a", holder()) + "\ntouch tidied", tmp_path)
    assert (tmp_path / "tidied").exists()


def test_the_holder_renews_its_lease_and_keeps_when_it_was_taken(tmp_path: Path) -> None:
    take(tmp_path, "run-a")
    first = NodeLock.parse(lock_file(tmp_path).read_text(), 0)
    assert take(tmp_path, "run-a") == [nodelock.TAKEN]
    again = NodeLock.parse(lock_file(tmp_path).read_text(), 0)
    assert again.taken == first.taken and again.renewed >= first.renewed


def test_a_lock_whose_lease_ended_is_taken_over_saying_whose_it_was(tmp_path: Path) -> None:
    take(tmp_path, "run-a", lease=0, command="deploy killed.war")
    said = nodelock.answers(run(nodelock.take_script(ROOT, "run-b", holder()), tmp_path))
    assert [a.word for a in said] == [nodelock.STALE, nodelock.TAKEN]
    stale = said[0].lock
    assert stale is not None and stale.stale and stale.token == "run-a"
    assert "`deploy killed.war`" in stale.who()
    assert stale.how_long().startswith("its lease ended 0 s ago without renewal")
    assert NodeLock.parse(lock_file(tmp_path).read_text(), 0).token == "run-b"


def test_a_lock_from_before_a_reboot_is_stale(tmp_path: Path) -> None:
    """Renewed at an uptime later than now: the node rebooted since."""
    lock_file(tmp_path).parent.mkdir(parents=True)
    later = uptime() + 1000
    lock_file(tmp_path).write_text(f"{later} {later} {later + 20} run-a {{}}\n")
    assert take(tmp_path, "run-b") == [nodelock.STALE, nodelock.TAKEN]


@pytest.mark.parametrize("line", ["garbage", "", "1 2", "x y z run-a {"])
def test_a_damaged_lock_is_stale_in_the_script_as_in_python(tmp_path: Path, line: str) -> None:
    lock_file(tmp_path).parent.mkdir(parents=True)
    lock_file(tmp_path).write_text(line + "\n")
    words = take(tmp_path, "run-b")
    assert words == ([nodelock.STALE, nodelock.TAKEN] if line else [nodelock.TAKEN])
    if line:
        assert NodeLock.parse(line, uptime()).stale
        assert NodeLock.parse(line, uptime()).who().startswith("an unknown holder")


def test_of_many_takers_at_once_exactly_one_wins(tmp_path: Path) -> None:
    scripts = [nodelock.take_script(ROOT, f"run-{i}", holder()) for i in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        outs = list(pool.map(lambda script: run(script, tmp_path), scripts))
    winners = [i for i, out in enumerate(outs) if nodelock.TAKEN in out]
    assert len(winners) == 1
    held = NodeLock.parse(lock_file(tmp_path).read_text(), 0)
    assert held.token == f"run-{winners[0]}"


def test_release_removes_only_the_runs_own_lock(tmp_path: Path) -> None:
    take(tmp_path, "run-a")
    said = nodelock.answers(run(nodelock.release_script(ROOT, "run-b"), tmp_path))
    assert [a.word for a in said] == [nodelock.KEPT] and lock_file(tmp_path).exists()
    said = nodelock.answers(run(nodelock.release_script(ROOT, "run-a"), tmp_path))
    assert [a.word for a in said] == [nodelock.RELEASED] and not lock_file(tmp_path).exists()
    said = nodelock.answers(run(nodelock.release_script(ROOT, "run-a"), tmp_path))
    assert [a.word for a in said] == [nodelock.FREE]


def test_a_node_without_a_releases_directory_holds_no_lock(tmp_path: Path) -> None:
    for script in (
        nodelock.read_script(ROOT),
        nodelock.release_script(ROOT, "run-a"),
        nodelock.clear_script(ROOT, "x", force=True),
    ):
        assert [a.word for a in nodelock.answers(run(script, tmp_path))] == [nodelock.FREE]
    assert not (tmp_path / "releases").exists()  # reading creates nothing


def test_clear_removes_a_stale_lock_only_as_it_was_read(tmp_path: Path) -> None:
    take(tmp_path, "run-a", lease=0)
    judged = lock_file(tmp_path).read_text().strip()
    tick_past(NodeLock.parse(judged, 0).renewed)
    take(tmp_path, "run-a", lease=0)  # renewed since it was read: another line
    said = nodelock.answers(run(nodelock.clear_script(ROOT, judged, force=True), tmp_path))
    assert [a.word for a in said] == [nodelock.KEPT] and lock_file(tmp_path).exists()
    now = lock_file(tmp_path).read_text().strip()
    said = nodelock.answers(run(nodelock.clear_script(ROOT, now, force=False), tmp_path))
    assert [a.word for a in said] == [nodelock.CLEARED] and not lock_file(tmp_path).exists()
    assert said[0].lock is not None and said[0].lock.token == "run-a"


def test_clear_keeps_a_live_lock_unless_forced(tmp_path: Path) -> None:
    take(tmp_path, "run-a")
    line = lock_file(tmp_path).read_text().strip()
    said = nodelock.answers(run(nodelock.clear_script(ROOT, line, force=False), tmp_path))
    assert [a.word for a in said] == [nodelock.KEPT] and lock_file(tmp_path).exists()
    said = nodelock.answers(run(nodelock.clear_script(ROOT, line, force=True), tmp_path))
    assert [a.word for a in said] == [nodelock.CLEARED] and not lock_file(tmp_path).exists()


def test_hostile_names_and_commands_stay_words(tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    root = HOSTILE.format(canary=canary)
    command = f"deploy 'x'.war $(touch {canary}) `touch {canary}`"
    assert take(tmp_path, "run-a", root=root, command=command) == [nodelock.TAKEN]
    [read] = nodelock.answers(run(nodelock.read_script(root), tmp_path))
    assert read.lock is not None and read.lock.holder == holder(command)
    line = read.lock.line
    run(nodelock.clear_script(root, line, force=True), tmp_path)
    assert not lock_file(tmp_path, root).exists()
    assert not canary.exists()


def test_the_lock_is_where_the_layout_says() -> None:
    layout = Layout("~/releases/shop")
    assert layout.deploy_lock == "~/releases/shop/deploy.lock"
    assert layout.deploy_lock_mutex == "~/releases/shop/deploy.lock.mutex"
    assert layout.deploy_lock_new == "~/releases/shop/deploy.lock.new"

"""The deploy lock: one deploy per app directory; stale and garbage locks are taken over."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from fabfile.errors import ExitCode, LockError
from fabfile.records import lock
from fabfile.records.lock import Holder, Lock, read_holder


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / ".deploy.lock"


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def write_holder(path: Path, **fields: object) -> Holder:
    holder = Holder(
        **{
            "pid": dead_pid(),
            "user": "alice",
            "host": socket.gethostname(),
            "since": "2024-05-01T10:00:00+00:00",
            "started": "12345",
            "command": "deploy deploy",
            **fields,
        }  # type: ignore[arg-type]
    )
    path.write_text(json.dumps(dataclasses.asdict(holder)) + "\n")
    return holder


def test_acquire_writes_who_holds_it_and_release_removes_it(path: Path) -> None:
    held = Lock(path, "deploy deploy")
    held.acquire()
    holder = read_holder(path)
    assert holder is not None
    assert (holder.pid, holder.user, holder.host) == (
        os.getpid(),
        getpass.getuser(),
        socket.gethostname(),
    )
    assert holder.command == "deploy deploy"
    assert holder.alive()
    held.release()
    assert not path.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == []  # no temporary files left


def test_the_context_manager_releases_even_on_error(path: Path) -> None:
    with pytest.raises(RuntimeError), Lock(path, "deploy"):
        assert path.exists()
        raise RuntimeError("boom")
    assert not path.exists()
    with Lock(path, "deploy again"):
        assert read_holder(path).command == "deploy again"  # type: ignore[union-attr]


def test_a_held_lock_refuses_a_second_taker_naming_the_holder(path: Path) -> None:
    with Lock(path, "deploy deploy"):
        before = path.read_bytes()
        holder = read_holder(path)
        assert holder is not None
        with pytest.raises(LockError) as caught:
            Lock(path, "deploy rollback").acquire()
        message = str(caught.value)
        assert f"{holder.user}@{holder.host}" in message
        assert f"pid {holder.pid}" in message
        assert f"since {holder.since}" in message
        assert "`deploy deploy`" in message
        assert str(path) in message
        assert caught.value.exit_code == ExitCode.LOCKED
        assert path.read_bytes() == before


def test_a_lock_from_another_host_is_respected(path: Path) -> None:
    write_holder(path, host="coordinator-2.invalid", user="bob")
    with pytest.raises(LockError, match=r"bob@coordinator-2\.invalid"):
        Lock(path, "deploy").acquire()


def test_a_lock_whose_process_is_dead_is_taken_over(path: Path) -> None:
    stale = write_holder(path)
    Lock(path, "deploy").acquire()
    holder = read_holder(path)
    assert holder is not None and holder.pid == os.getpid() != stale.pid
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_lock_whose_pid_was_reused_is_taken_over(path: Path) -> None:
    write_holder(path, pid=os.getpid(), started="1")  # our PID, another start time
    Lock(path, "deploy").acquire()
    holder = read_holder(path)
    assert holder is not None and holder.started != "1"


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff not json", b"{}", b"[1, 2]", b'{"pid": 1}'])
def test_a_garbage_lock_is_taken_over(path: Path, garbage: bytes) -> None:
    path.write_bytes(garbage)
    Lock(path, "deploy").acquire()
    holder = read_holder(path)
    assert holder is not None and holder.pid == os.getpid()


def test_release_leaves_a_lock_held_by_another_process(path: Path) -> None:
    mine = Lock(path, "deploy")
    theirs = write_holder(path, pid=1, started="1")
    before = path.read_bytes()
    mine.release()
    assert path.read_bytes() == before
    assert read_holder(path) == theirs


def test_release_without_a_lock_file_is_harmless(path: Path) -> None:
    Lock(path, "deploy").release()
    assert not path.exists()


def test_two_takers_of_a_stale_lock_do_not_both_hold_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_holder(path)
    first, second = Lock(path, "deploy first"), Lock(path, "deploy second")
    real_bytes = lock._read_bytes
    raced = False

    def read_then_lose_the_race(where: Path) -> bytes | None:
        nonlocal raced
        seen = real_bytes(where)
        if not raced:
            raced = True
            second.acquire()  # the other taker removes the stale lock and takes it
        return seen

    monkeypatch.setattr(lock, "_read_bytes", read_then_lose_the_race)
    with pytest.raises(LockError):
        first.acquire()
    monkeypatch.undo()
    assert lock.read_holder(path).command == "deploy second"  # type: ignore[union-attr]


def test_a_leftover_aside_link_to_the_live_lock_is_never_written_through(path: Path) -> None:
    """A taker killed between link and unlink leaves its aside name as a second link
    to the lock; a later taker (even with the same PID) must not write through it."""
    live = Lock(path, "deploy deploy")
    live.acquire()
    before = path.read_bytes()
    for name in (f"{path.name}.{os.getpid()}.tmp", f"{path.name}.{os.getpid()}.0.tmp"):
        os.link(path, path.with_name(name))  # what the killed taker left
    with pytest.raises(LockError):
        Lock(path, "deploy rollback", wait=0).acquire()
    assert path.read_bytes() == before
    live.release()

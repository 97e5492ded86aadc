"""One deploy per app directory at a time.

The lock is a file created atomically (written aside, then hard-linked into
place, which fails if it exists) that names who holds it. A lock whose process
is gone (same host, PID dead or reused) is stale and taken over. It guards the app
directory's own files; the nodes are guarded by the deploy lock each of them holds
(`fabfile.cluster.nodelock`), which every coordinator and copy of this directory share.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import getpass
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ..errors import LockError

_PAUSE = 0.5  # seconds between two looks while waiting


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lock."""

    pid: int
    user: str
    host: str
    since: str
    started: str  # the process's start time in clock ticks: tells a reused PID apart
    command: str

    @classmethod
    def me(cls, command: str) -> Holder:
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        pid = os.getpid()
        return cls(pid, getpass.getuser(), socket.gethostname(), now, _start_time(pid), command)

    def alive(self) -> bool:
        """Whether the holding process still runs (only knowable on its own host)."""
        if self.host != socket.gethostname():
            return True
        started = _start_time(self.pid)
        return bool(started) and started == self.started

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}, `{self.command}`) since {self.since}"


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat, or '' when the process is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


class Lock:
    """``with Lock(path, command):`` holds the app directory's deploy lock; with ``wait``,
    a lock held by a live process is waited for that many seconds, ``say`` telling whom."""

    def __init__(
        self, path: Path, command: str, wait: float = 0.0, say: Callable[[str], None] = print
    ) -> None:
        self.path = path
        self.holder = Holder.me(command)
        self.wait = wait
        self.say = say

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; raise `LockError` if it is held (after
        waiting up to ``wait`` seconds for it)."""
        deadline = time.monotonic() + self.wait
        told = False
        while (holder := self._try_once()) is not None:
            if time.monotonic() >= deadline:
                waited = f"after waiting {self.wait:g} s, " if self.wait else ""
                raise LockError(
                    f"{waited}another deploy of this app is running: {holder.describe()}. "
                    "Wait for it to finish (or have this command wait: --lock-wait SECONDS); "
                    f"if that process is gone, remove {self.path}"
                )
            if not told:
                told = True
                self.say(f"waiting up to {self.wait:g} s for {holder.describe()} to finish")
            time.sleep(min(_PAUSE, max(0.0, deadline - time.monotonic())))

    def _try_once(self) -> Holder | None:
        """Take the lock (None), or return the live process that holds it."""
        for _ in range(2):
            if self._create():
                return None
            judged = _read_bytes(self.path)
            holder = _holder(judged)
            if holder is not None and holder.alive():
                return holder
            self._remove_stale(judged)
        raise LockError(f"could not take the lock {self.path}; another deploy keeps taking it")

    def _create(self) -> bool:
        """Write the holder aside under a name no one else uses, then link it into place.

        The name is fresh and opened with O_EXCL: a name by PID alone could be a link to
        the live lock left by a process killed between link and unlink, and writing
        through it would empty the lock it points to.
        """
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with tmp.open("x") as aside:
            aside.write(json.dumps(dataclasses.asdict(self.holder)) + "\n")
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _remove_stale(self, judged: bytes | None) -> None:
        """Move the stale lock aside; if it is no longer the one judged stale
        (another taker replaced it meanwhile), put that fresh lock back."""
        aside = self.path.with_name(f"{self.path.name}.stale.{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if _read_bytes(aside) != judged:
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        holder = read_holder(self.path)
        if holder is not None and holder.pid == self.holder.pid:
            self.path.unlink(missing_ok=True)


def read_holder(path: Path) -> Holder | None:
    """The lock's holder; None for a missing or unreadable (hence stale) lock."""
    return _holder(_read_bytes(path))


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _holder(raw: bytes | None) -> Holder | None:
    try:
        return Holder(**json.loads(raw or b""))
    except (ValueError, TypeError):
        return None

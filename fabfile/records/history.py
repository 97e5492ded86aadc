"""The app directory's history of deploys and rollbacks, and what "previous" means.

One JSON object per line in ``.deploy-history.jsonl``, each a `Record` written
by `History.append` alone. The file is rewritten whole through a temporary file
and a rename, so a kill at any moment leaves either the old or the new file,
never a torn one. Reading is lenient: entries are dicts, since files written
by older versions of the tool must still be read.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import fcntl
import getpass
import json
import os
import socket
from pathlib import Path
from typing import Any

from ..app.credentials import redact
from ..app.release import Release

Entry = dict[str, Any]
VERIFIED_AS = "as ##"  # parallel: a node's detail once its new version is verified


class Action(enum.StrEnum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    SWITCH = "switch"  # blue/green: traffic to the other colour, whatever it runs
    DARK = "deploy --no-switch"  # blue/green: verified on the idle colours, not live
    RETIRE = "retire"  # parallel: old versions undeployed; no release of its own
    LOGGING = "logging"  # a new logback.xml, live: the same release with it
    STAGE = "stage"  # a release's files sent to the nodes ahead; nothing live changed


class Result(enum.StrEnum):
    """How a whole run ended."""

    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"  # bad input or pre-flight: nothing changed


@dataclasses.dataclass(frozen=True)
class HostRecord:
    outcome: str
    detail: str = ""
    bytes_sent: int = 0
    restart_to_ready: float | None = None
    guided: str = ""  # what the user chose after a failure (guided failure), in order
    phases: list[tuple[str, float]] = dataclasses.field(default_factory=list)  # when each began


@dataclasses.dataclass(frozen=True)
class Record:
    """One line of the history: what was run, by whom, how it ended, per node."""

    action: Action
    outcome: Result
    artifact: str
    message: str = ""
    release: Release | None = None
    hosts: dict[str, HostRecord] = dataclasses.field(default_factory=dict)
    seconds: float | None = None
    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    canary: str = ""  # the canary's verdict, when the run had one
    finished: str = dataclasses.field(default_factory=lambda: now())
    user: str = dataclasses.field(default_factory=getpass.getuser)
    origin: str = dataclasses.field(default_factory=socket.gethostname)

    def to_dict(self) -> Entry:
        entry: Entry = {
            "action": self.action.value,
            "outcome": self.outcome.value,
            "artifact": self.artifact,
            "message": self.message,
            "finished": self.finished,
            "user": self.user,
            "from": self.origin,
            "hosts": {host: dataclasses.asdict(item) for host, item in self.hosts.items()},
            "stages": self.stages,
        }
        if self.seconds is not None:
            entry["seconds"] = self.seconds
        if self.canary:
            entry["canary"] = self.canary
        if self.release is not None:
            entry |= {
                "version": self.release.version,
                "sha256": self.release.war,
                "release": dataclasses.asdict(self.release),
            }
        return entry


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class History:
    """Reads and appends the history file of one app directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[Entry]:
        """Every readable entry, oldest first (a damaged line is skipped, not fatal)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def append(self, record: Record) -> None:
        """Add ``record`` atomically: write aside, fsync, rename over.

        Writers take a lock file first (a refused deploy may record while
        another deploy records), so no entry is lost between read and rename.
        """
        with self.path.with_name(f"{self.path.name}.lock").open("a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            self._rewrite_with(record.to_dict())

    def _rewrite_with(self, entry: Entry) -> None:
        try:
            old = self.path.read_bytes()
        except FileNotFoundError:
            old = b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        line = json.dumps(_redacted(entry), sort_keys=True).encode() + b"\n"
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as stream:
            stream.write(old + line)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, self.path)

    def stack(self) -> list[Release]:
        """Releases the cluster moved to, oldest first; rollback walks it back.

        A failed or interrupted deploy is on top only until a later deploy
        succeeds: some nodes may run it, so rollback must leave it, but once
        the cluster moved past it, it is no release to go back to.
        """
        stack: list[tuple[Release, bool]] = []
        for entry in self.entries():
            release, ok = entry_release(entry), entry.get("outcome") == "ok"
            if release is None or entry.get("outcome") == "refused":
                continue
            if entry.get("action") in (Action.DARK, Action.STAGE):
                continue  # nobody was sent to it: not a release the cluster moved to
            if entry.get("action") in (Action.ROLLBACK, Action.SWITCH):
                # back to a release on the stack (or on top, if new). A failed one is
                # run again: it must aim at the same release
                if ok:
                    _rolled_back_to(stack, release)
                continue
            while ok and stack and not stack[-1][1]:
                stack.pop()
            if stack and stack[-1][0] == release:
                stack[-1] = (release, stack[-1][1] or ok)
            else:
                stack.append((release, ok))
        return [release for release, _ in stack]

    def verified_tags(self) -> dict[str, str]:
        """Parallel: the version tag each node last passed verification with."""
        found: dict[str, str] = {}
        for entry in self.entries():
            for host, item in (entry.get("hosts") or {}).items():
                detail = str(item.get("detail", "")) if isinstance(item, dict) else ""
                verified = item.get("outcome") in ("deployed", "unchanged")
                if verified and detail.startswith(VERIFIED_AS):
                    found[host] = detail[len(VERIFIED_AS) :]
        return found

    def current(self) -> Release | None:
        stack = self.stack()
        return stack[-1] if stack else None

    def previous(self) -> Release | None:
        stack = self.stack()
        return stack[-2] if len(stack) > 1 else None


def _redacted(value: Any) -> Any:
    """Blank loaded secrets out of every string, before JSON escapes them."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def _rolled_back_to(stack: list[tuple[Release, bool]], release: Release) -> None:
    if any(held == release for held, _ in stack):
        while stack[-1][0] != release:
            stack.pop()
    else:
        stack.append((release, True))


def entry_release(entry: Entry) -> Release | None:
    """The release an entry recorded (None for a refusal or an old, damaged line)."""
    data = entry.get("release")
    if not isinstance(data, dict):
        return None
    try:
        return Release.from_dict(data)
    except TypeError:
        return None

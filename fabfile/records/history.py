"""The app directory's history of deploys and rollbacks, and what "previous" means.

One JSON object per line in ``.deploy-history.jsonl``, each a `Record` written
by `History.append` alone. The file is rewritten whole through a temporary file
and a rename, so a kill at any moment leaves either the old or the new file,
never a torn one. Reading goes through one lenient reader, `Record.from_dict`
(`History.records`): files written by older versions of the tool must still be
read, so a line that is no JSON object is skipped, and within one a field that
is missing or of the wrong type takes its default.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import fcntl
import getpass
import json
import math
import os
import socket
from pathlib import Path
from typing import Any, NewType, TypeVar

from ..app.credentials import redact
from ..app.release import Release

Entry = dict[str, Any]  # a record as the file holds it (`Record.to_dict`)
VERIFIED_AS = "as ##"  # parallel: a node's detail once its new version is verified
# An action or outcome this version does not know (a newer version's, or a hand
# edit): kept as read, so the line is still listed, numbered and shown as written, and
# `History.stack` reads it as it always did (an unknown action as a deploy, an unknown
# outcome as not ok)
Unknown = NewType("Unknown", str)


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
    tag: str = ""  # parallel: the version tag (Tomcat's ##TAG) the node was verified as

    @classmethod
    def from_dict(cls, data: object) -> HostRecord | None:
        """One node's part of a line, read leniently (None when it is no object)."""
        if not isinstance(data, dict):
            return None
        detail, tag = _text(data.get("detail")), _text(data.get("tag"))
        if "tag" not in data and detail.startswith(VERIFIED_AS):
            # Versions before `tag` kept the tag only in the words of the detail; `deploy
            # retire` still needs it from their lines to keep the verified version.
            tag = detail.removeprefix(VERIFIED_AS)
        return cls(
            outcome=_text(data.get("outcome")),
            detail=detail,
            bytes_sent=_whole(data.get("bytes_sent")),
            restart_to_ready=_number(data.get("restart_to_ready")),
            guided=_text(data.get("guided")),
            phases=_phases(data.get("phases")),
            tag=tag,
        )


@dataclasses.dataclass(frozen=True)
class Record:
    """One line of the history: what was run, by whom, how it ended, per node."""

    action: Action | Unknown
    outcome: Result | Unknown
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
            "action": str(self.action),
            "outcome": str(self.outcome),
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

    def to_json(self) -> Entry:
        """`to_dict` as the file holds it, keys sorted at every level (`deploy history --json`)."""
        data: Entry = json.loads(json.dumps(self.to_dict(), sort_keys=True))
        return data

    @classmethod
    def from_dict(cls, data: object) -> Record | None:
        """A history line, read leniently: None when it is no JSON object; a field
        missing (older versions wrote fewer) or of the wrong type takes its default,
        '' for who and when (never this machine's user or clock)."""
        if not isinstance(data, dict):
            return None
        return cls(
            action=_known(Action, data.get("action")),
            outcome=_known(Result, data.get("outcome")),
            artifact=_text(data.get("artifact")),
            message=_text(data.get("message")),
            release=_release(data.get("release")),
            hosts=_hosts(data.get("hosts")),
            seconds=_number(data.get("seconds")),
            stages=_stages(data.get("stages")),
            canary=_text(data.get("canary")),
            finished=_text(data.get("finished")),
            user=_text(data.get("user")),
            origin=_text(data.get("from")),
        )


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class History:
    """Reads and appends the history file of one app directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[Record]:
        """Every readable record, oldest first (a damaged line is skipped, not fatal)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                record = Record.from_dict(json.loads(line))
            except ValueError:
                continue
            if record is not None:
                records.append(record)
        return records

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
        for record in self.records():
            release, ok = record.release, record.outcome == Result.OK
            if release is None or record.outcome == Result.REFUSED:
                continue
            if record.action in (Action.DARK, Action.STAGE):
                continue  # nobody was sent to it: not a release the cluster moved to
            if record.action in (Action.ROLLBACK, Action.SWITCH):
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
        for record in self.records():
            for host, item in record.hosts.items():
                if item.tag and item.outcome in ("deployed", "unchanged"):
                    found[host] = item.tag
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


E = TypeVar("E", Action, Result)


def _known(kind: type[E], value: object) -> E | Unknown:
    """``kind``'s member named by ``value``; a word this version does not know, as read."""
    text = _text(value)
    try:
        return kind(text)
    except ValueError:
        return Unknown(text)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _number(value: object) -> float | None:
    """A finite JSON number as written (an int stays one), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return value if math.isfinite(value) else None
    except OverflowError:  # an int beyond any float: no duration this tool wrote
        return None


def _whole(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _release(value: object) -> Release | None:
    """The release a line recorded (None for a refusal or a damaged one)."""
    if not isinstance(value, dict):
        return None
    try:
        return Release.from_dict(value)
    except TypeError:
        return None


def _hosts(value: object) -> dict[str, HostRecord]:
    """Each node's record, in the order written; a damaged one is left out."""
    items = value.items() if isinstance(value, dict) else ()
    return {str(h): r for h, item in items if (r := HostRecord.from_dict(item)) is not None}


def _stages(value: object) -> dict[str, float]:
    items = value.items() if isinstance(value, dict) else ()
    return {str(k): n for k, raw in items if (n := _number(raw)) is not None}


def _phases(value: object) -> list[tuple[str, float]]:
    """The readable (phase, began) marks, in the order written."""
    marks = []
    for mark in value if isinstance(value, list) else ():
        if isinstance(mark, list) and len(mark) == 2 and isinstance(mark[0], str):
            at = _number(mark[1])
            if at is not None:
                marks.append((mark[0], at))
    return marks

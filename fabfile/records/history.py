"""The app directory's history of deploys and rollbacks, and what "previous" means.

``.deploy-history.jsonl`` is append-only: each line is written with one write on an
O_APPEND descriptor, and synced (`fabfile.records.shared`); a SIGKILL during that write
can cut the line short (Linux splits a write at page boundaries and checks for a fatal
signal between two), and readers skip such a line; nothing rewrites the file, so
its mode and group stay as they are. A command that is no rollout writes its `Record`
as one line (`History.append`); a rollout writes its run ahead (`History.begin`, a
line per node's progress, and its whole record at the end: `fabfile.records.runlog`).
Reading goes through one lenient reader, `Record.from_dict` (`History.records`), which
folds each run's lines into one record: files written by older versions of the tool
must still be read, so a line that is no JSON object (or array) is skipped, and within
one a field that is missing or of the wrong type takes its default. A run with a start
and no end runs still, or was cut off (its process is gone).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import getpass
import json
import math
import socket
from pathlib import Path
from typing import Any, NewType, TypeVar

from ..app.credentials import redact
from ..app.release import Release
from . import runlog, shared
from .runlog import Liveness, Process

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
    # read, never written as an end: a run with a start line and no end yet
    RUNNING = "running"  # its process still runs (or runs on another coordinator)
    CUT_OFF = "cut off"  # its process is gone (killed, the machine went down)


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
    # each verdict (the canary's, each batch's, the watch's) with when (seconds into the
    # run); None: a record from before the times were kept (`_old_canary`)
    verdicts: tuple[tuple[float | None, str], ...] = ()
    hooks: str = ""  # each hook run and how it ended (`fabfile.engine.hookrunner`)
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
        if self.verdicts:
            entry["verdicts"] = [list(verdict) for verdict in self.verdicts]
        if self.hooks:
            entry["hooks"] = self.hooks
        if self.release is not None:
            entry |= {
                "version": self.release.version,
                "sha256": self.release.war,
                "release": dataclasses.asdict(self.release),
            }
        return entry

    @property
    def verdict_texts(self) -> list[str]:
        """The run's verdicts in order, without their times."""
        return [text for _, text in self.verdicts]

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
            verdicts=_verdicts(data.get("verdicts")) or _old_canary(data.get("canary")),
            hooks=_text(data.get("hooks")),
            finished=_text(data.get("finished")),
            user=_text(data.get("user")),
            origin=_text(data.get("from")),
        )


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True)
class Run:
    """One run as the history tells it: its record and, for a run written ahead, who ran
    it and how far it got."""

    number: int  # as `deploy history` numbers it: 1 for the oldest
    record: Record
    run_id: str = ""
    process: Process | None = None
    stage: str = ""  # the stage of the run it last entered (preflight, staging, nodes...)
    liveness: Liveness | None = None  # None for a run that ended


class History:
    """Reads and appends the history file of one app directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def runs(self) -> list[Run]:
        """Every readable run, in the order they started (a damaged line is skipped)."""
        found: list[Run] = []
        for run in runlog.fold(self._values()):
            record = Record.from_dict(run.entry)
            if record is None:
                continue
            liveness = None
            if not run.ended:
                liveness = run.process.judge(run.last) if run.process else Liveness.GONE
                record = _unended(record, run.process, liveness, run.last)
            found.append(Run(len(found) + 1, record, run.run_id, run.process, run.stage, liveness))
        return found

    def records(self) -> list[Record]:
        """Every readable record, oldest first: a run written ahead folded into one."""
        return [run.record for run in self.runs()]

    def _values(self) -> list[object]:
        try:
            return runlog.values(self.path.read_bytes().splitlines())
        except FileNotFoundError:
            return []

    def append(self, record: Record) -> None:
        """Add ``record`` as one whole line (a command that is no rollout)."""
        self._write(record.to_dict())

    def begin(self, run_id: str, record: Record, process: Process) -> None:
        """A run starts: ``record`` as far as it is known, before anything changes."""
        self._write(runlog.start_line(run_id, record.to_dict(), process))

    def progress(self, run_id: str, host: str, item: HostRecord) -> None:
        """A node of run ``run_id`` as it stands now."""
        self._write(runlog.node_line(run_id, host, dataclasses.asdict(item)))

    def stage(self, run_id: str, stage: str, at: float) -> None:
        """Run ``run_id`` enters ``stage``, ``at`` seconds after its start."""
        self._write(runlog.stage_line(run_id, stage, at))

    def end(self, run_id: str, record: Record) -> None:
        """Run ``run_id`` ends: its whole record."""
        self._write(runlog.end_line(run_id, record.to_dict()))

    def amend(self, run_id: str, **fields: str) -> None:
        """Run ``run_id``, ended already, learnt more (a post hook's outcome): its record's
        ``fields`` as they stand now. One more line, as every write here: the record
        written at the end is never rewritten, so a kill meanwhile loses no outcome."""
        self._write(runlog.amend_line(run_id, dict(fields)))

    def _write(self, value: object) -> None:
        line = json.dumps(_redacted(value), sort_keys=True).encode() + b"\n"
        shared.append_line(self.path, line)

    def stack(self) -> list[Release]:
        """Releases the cluster moved to, oldest first; rollback walks it back.

        A failed, interrupted or cut-off deploy is on top only until a later deploy
        succeeds: some nodes may run it, so rollback must leave it, but once the cluster
        moved past it, it is no release to go back to.
        """
        return [release for release, _ in self._stack()]

    def _stack(self) -> list[tuple[Release, bool]]:
        """`stack`, each release with whether a run made it live on every node."""
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
        return stack

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
        """What rollback aims at: the newest release below the current one that was live
        on every node (two runs that failed or were cut off in a row are both passed)."""
        below = self._stack()[:-1]
        live = [release for release, ok in below if ok]
        return live[-1] if live else below[-1][0] if below else None


def _unended(record: Record, process: Process | None, liveness: Liveness, last: float) -> Record:
    """A run with no end: still running, or cut off."""
    who = process.describe() if process else "its process"
    outcome, message = Result.RUNNING, f"running: no end recorded yet, {who} runs"
    if liveness == Liveness.GONE:
        outcome, message = Result.CUT_OFF, f"cut off: no end was recorded and {who} is gone"
    elif liveness == Liveness.UNKNOWN:
        message = f"no end recorded yet: {who} runs on another coordinator, or was cut off"
    return dataclasses.replace(
        record, outcome=outcome, message=message, seconds=round(last, 3), finished=""
    )


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


def _verdicts(value: object) -> tuple[tuple[float | None, str], ...]:
    """The readable (when, verdict) pairs, in the order written (when: null if unknown)."""
    found: list[tuple[float | None, str]] = []
    for item in value if isinstance(value, list) else ():
        if isinstance(item, list) and len(item) == 2 and isinstance(item[1], str):
            at = _number(item[0])
            if at is not None or item[0] is None:
                found.append((at, item[1]))
    return tuple(found)


def _old_canary(value: object) -> tuple[tuple[float | None, str], ...]:
    """Records before ``verdicts`` kept the run's verdicts joined in ``canary``, without
    their times (and, for a while, in both keys: ``verdicts`` is read first)."""
    text = _text(value)
    return ((None, text),) if text else ()


def _phases(value: object) -> list[tuple[str, float]]:
    """The readable (phase, began) marks, in the order written."""
    marks = []
    for mark in value if isinstance(value, list) else ():
        if isinstance(mark, list) and len(mark) == 2 and isinstance(mark[0], str):
            at = _number(mark[1])
            if at is not None:
                marks.append((mark[0], at))
    return marks

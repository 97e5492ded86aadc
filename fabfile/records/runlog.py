"""A run written ahead: the lines one run adds to the history, and how they fold into one.

A rollout appends a ``start`` line before it changes anything (the run's record so far,
and which process runs it), a ``node`` line each time a node enters a phase (the phase
and when, and its outcome and detail so far), a ``stage`` line when the run
enters pre-flight, staging, the nodes, ... and, however it ends, its whole record as
one JSON object, as every run was written before these lines existed. A fact learnt
after that end (a post hook's outcome, `History.amend`) is an ``amend`` line: the
fields it replaces in the run's record. Progress and amend lines are JSON arrays, so a
reader that knows only whole records (an older version of the tool) skips them and
still sees each run once, at its end.

Folding works on the JSON values, below `fabfile.records.history`'s typed reader: a run
with a start and no end is still running, or was cut off (`Process.judge`).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import getpass
import json
import math
import os
import re
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

START, NODE, STAGE, AMEND = "start", "node", "stage", "amend"
_PROGRESS = re.compile(rb'\["(?:node|stage)", "([^"\\]*)"')  # as `json.dumps` writes it
_DAMAGED = object()
RUN_ID = "run_id"  # the key that ties a run's whole record to its start line
# A run started on another coordinator cannot be checked from here: it counts as cut off
# once this long has passed since its last line. Longer than any run waits without
# writing a line (a node's ready_timeout, a canary's wait, a guided failure's question
# left a while), short enough that the next day's operator is told.
OTHER_HOST_BOUND = datetime.timedelta(hours=6)

Entry = dict[str, Any]


class Liveness(enum.StrEnum):
    ALIVE = "alive"  # its process runs (on this host)
    GONE = "gone"  # its process is gone: the run was cut off
    UNKNOWN = "unknown"  # another coordinator's, recent: this host cannot tell


@dataclasses.dataclass(frozen=True)
class Process:
    """The process that runs a run, as its start line names it."""

    pid: int
    host: str
    user: str
    command: str  # the command line that runs it again
    started: str  # ISO time when the run started
    ticks: str = ""  # its start in clock ticks since boot: a reused pid is another process
    boot: str = ""  # the host's boot id: after a reboot every pid is another process

    @classmethod
    def me(cls, command: str) -> Process:
        pid = os.getpid()
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        host = socket.gethostname()
        return cls(pid, host, getpass.getuser(), command, now, _ticks(pid), _boot_id())

    @classmethod
    def from_dict(cls, data: object) -> Process | None:
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            return None
        words = {name: data.get(name) for name in ("host", "user", "command", "started")}
        text = {key: value if isinstance(value, str) else "" for key, value in words.items()}
        ticks, boot = data.get("ticks"), data.get("boot")
        return cls(
            pid,
            ticks=ticks if isinstance(ticks, str) else "",
            boot=boot if isinstance(boot, str) else "",
            **text,
        )

    def judge(self, last: float) -> Liveness:
        """Whether it still runs; ``last``: seconds after its start of its last line."""
        if self.host == socket.gethostname():
            if self.boot and self.boot != _boot_id():
                return Liveness.GONE
            if self.ticks:
                return Liveness.ALIVE if _ticks(self.pid) == self.ticks else Liveness.GONE
            return Liveness.ALIVE if _exists(self.pid) else Liveness.GONE
        began = _when(self.started)
        if began is None:
            return Liveness.GONE
        now = datetime.datetime.now().astimezone()
        since = now - began - datetime.timedelta(seconds=last)
        return Liveness.GONE if since > OTHER_HOST_BOUND else Liveness.UNKNOWN

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}, `{self.command}`)"


@dataclasses.dataclass
class Folded:
    """One run as its lines tell it: ``entry`` is its record as one JSON object."""

    entry: Entry
    run_id: str = ""
    process: Process | None = None
    ended: bool = True
    stage: str = ""  # the stage of the run it last entered
    last: float = 0.0  # seconds after its start of its last line


def start_line(run_id: str, entry: Entry, process: Process) -> list[Any]:
    return [START, run_id, entry, dataclasses.asdict(process)]


def node_line(run_id: str, host: str, entry: Entry) -> list[Any]:
    """A node entered a phase: its record now, but for the earlier phases (already
    written) and the fields still at their default."""
    *_, mark = entry.get("phases") or [None]
    now = {key: value for key, value in entry.items() if value or key in ("outcome", "detail")}
    return [NODE, run_id, host, now | {"phases": [mark] if mark else []}]


def stage_line(run_id: str, stage: str, at: float) -> list[Any]:
    return [STAGE, run_id, stage, at]


def end_line(run_id: str, entry: Entry) -> Entry:
    return entry | {RUN_ID: run_id}


def amend_line(run_id: str, fields: Entry) -> list[Any]:
    """Fields of run ``run_id``'s record learnt after its end, which replace them."""
    return [AMEND, run_id, fields]


def values(lines: Sequence[bytes]) -> list[object]:
    """The JSON value of each line that matters, in order; a torn or damaged line is
    skipped. A run's progress lines are parsed only while it has no end: its end record
    holds all they say, and a fleet's run writes thousands of them."""
    parsed: dict[int, object] = {}
    ended: set[str] = set()
    for number, line in enumerate(lines):
        if line.lstrip().startswith(b"{"):
            parsed[number] = value = _loads(line)
            if isinstance(value, dict) and isinstance(value.get(RUN_ID), str):
                ended.add(value[RUN_ID])
    found = []
    for number, line in enumerate(lines):
        if number in parsed:
            value = parsed[number]
        elif (match := _PROGRESS.match(line)) and match[1].decode() in ended:
            continue
        else:
            value = _loads(line)
        if value is not _DAMAGED:
            found.append(value)
    return found


def _loads(line: bytes) -> object:
    try:
        return json.loads(line)
    except ValueError:  # torn by a kill mid-write, or damaged (invalid UTF-8 included)
        return _DAMAGED


def fold(values: Iterable[object]) -> list[Folded]:
    """Every run, in the order they started; a line that fits no run is skipped."""
    runs: list[Folded] = []
    unended: dict[str, Folded] = {}
    ended: dict[str, Folded] = {}  # by run id: what an amend line applies to
    for value in values:
        if isinstance(value, dict):
            run_id = value.get(RUN_ID)
            if isinstance(run_id, str) and run_id in unended:
                run = ended[run_id] = unended.pop(run_id)
                run.entry, run.ended = value, True
            else:
                runs.append(Folded(value))
                if isinstance(run_id, str):
                    ended.setdefault(run_id, runs[-1])
        elif isinstance(value, list) and len(value) >= 3 and isinstance(value[1], str):
            kind, run_id = value[0], value[1]
            if kind == AMEND and run_id in ended and isinstance(value[2], dict):
                ended[run_id].entry |= value[2]
            elif kind == START and run_id not in unended and run_id not in ended:
                if isinstance(value[2], dict):
                    process = Process.from_dict(value[3] if len(value) > 3 else None)
                    started = Folded(dict(value[2]), run_id, process, ended=False)
                    runs.append(started)
                    unended[run_id] = started
            elif run_id in unended:
                _progress(unended[run_id], kind, value[2:])
    return runs


def _progress(run: Folded, kind: object, rest: list[object]) -> None:
    """Apply a progress line to its run (the JSON values are the fold's own: changed in
    place, so a run of many nodes folds in time linear in its lines)."""
    if kind == NODE and len(rest) == 2 and isinstance(rest[0], str) and isinstance(rest[1], dict):
        hosts = run.entry.get("hosts")
        if not isinstance(hosts, dict):
            hosts = run.entry["hosts"] = {}
        was = hosts.get(rest[0])
        was = was if isinstance(was, dict) else {}
        marks, new = was.get("phases"), rest[1].get("phases")
        marks = marks if isinstance(marks, list) else []
        marks += new if isinstance(new, list) else []
        hosts[rest[0]] = was | rest[1] | {"phases": marks}
        for mark in marks[-1:]:
            if isinstance(mark, list) and len(mark) == 2:
                run.last = max(run.last, _seconds(mark[1]))
    elif kind == STAGE and len(rest) == 2 and isinstance(rest[0], str):
        run.stage = rest[0]
        run.last = max(run.last, _seconds(rest[1]))


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        return float(value) if math.isfinite(value) else 0.0
    except OverflowError:
        return 0.0


def _when(text: str) -> datetime.datetime | None:
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.astimezone()


def _ticks(pid: int) -> str:
    """Field 22 of /proc/PID/stat (its start, in ticks since boot); '' when the process
    is gone or a zombie (or there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _exists(pid: int) -> bool:
    """Without /proc: whether some process has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

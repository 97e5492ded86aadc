"""The run's history record, written ahead (`fabfile.records.runlog`): the run when it
starts, each node as it enters a phase, the stage the run enters, and its whole
`fabfile.records.history.Record` at the end.

The rollout writes the end however the run ended (done, refused, failed, interrupted):
each node's outcome and timeline, the duration of each stage, the verdicts. Only then
do post hooks and the last notification run (they may be slow, or the coordinator
killed meanwhile): what the hooks said is added after (`Recorder.hooks_heard`).
Whatever ends the coordinator before that (SIGKILL included), the lines written so far
let the next command say that the run was cut off, where, and on which nodes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..app.appdir import AppDir
from ..errors import DeployError
from ..records.history import History, HostRecord, Record, Result
from ..records.runlog import Process
from .events import Events
from .plan import Plan
from .target import Target


class Recording(Protocol):
    """The rollout as its record sees it."""

    app: AppDir
    plan: Plan
    run_id: str
    started: float  # time.monotonic() when the run began
    stages: dict[str, float]
    verdicts: list[tuple[float, str]]
    events: Events

    @property
    def targets(self) -> Sequence[Target]: ...

    def note(self, text: str) -> None: ...


class Recorder:
    """Writes one run to the app's history as it goes."""

    def __init__(self, rollout: Recording) -> None:
        self.rollout = rollout
        self.history = History(rollout.app.history_path)
        self.said = False  # a progress line that could not be written was said once

    def start(self) -> None:
        """Before anything changes: the run, its nodes and who runs it. A history that
        cannot be written refuses the run (`ConfigError`), as nothing changed yet."""
        rollout = self.rollout
        record = dataclasses.replace(_record(rollout, Result.RUNNING, ""), finished="")
        self.history.begin(rollout.run_id, record, Process.me(rollout.plan.command))

    def stage(self, name: str) -> None:
        self._progress(lambda: self.history.stage(self.rollout.run_id, name, self._at()))

    def node(self, target: Target) -> None:
        """``target`` entered a phase: where it is and how it stands, as it happens."""
        run_id, item = self.rollout.run_id, _host_record(target)
        self._progress(lambda: self.history.progress(run_id, target.host, item))

    def end(self, result: Result, message: str) -> None:
        """The run's whole record; one that cannot be written is said, not raised (the
        run's own outcome is what the user must read)."""
        rollout = self.rollout
        try:
            self.history.end(rollout.run_id, _record(rollout, result, message))
        except (DeployError, OSError) as error:
            rollout.note(
                f"warning: the end of this run could not be recorded ({error}); the next "
                "command will report it as cut off"
            )

    def hooks_heard(self) -> None:
        """After the end, what the post hooks said (`Rollout._end` runs them once the
        end is on disk): added to the record, not rewriting it."""
        notes = "; ".join(self.rollout.events.notes)
        try:
            self.history.amend(self.rollout.run_id, hooks=notes)
        except (DeployError, OSError) as error:
            self.rollout.note(f"warning: the hooks' outcome could not be recorded ({error})")

    def _progress(self, write: Callable[[], None]) -> None:
        try:
            write()
        except (DeployError, OSError) as error:
            if not self.said:
                self.said = True
                self.rollout.note(f"warning: this run's progress is not recorded: {error}")

    def _at(self) -> float:
        return round(time.monotonic() - self.rollout.started, 3)


def _record(rollout: Recording, result: Result, message: str) -> Record:
    return Record(
        action=rollout.plan.action,
        outcome=result,
        artifact=rollout.plan.release.war_name,
        message=message,
        release=rollout.plan.release,
        hosts={t.host: _host_record(t) for t in rollout.targets},
        seconds=round(time.monotonic() - rollout.started, 3),
        stages=rollout.stages,
        verdicts=tuple(rollout.verdicts),
        hooks="; ".join(rollout.events.notes),
    )


def _host_record(target: Target) -> HostRecord:
    ready = target.restart_to_ready
    return HostRecord(
        outcome=target.outcome.value,
        detail=target.detail,
        bytes_sent=target.sent,
        restart_to_ready=round(ready, 3) if ready is not None else None,
        guided=", ".join(target.guided),
        phases=list(target.phases),
        tag=target.tag,
    )

"""The run's history record: one `fabfile.records.history.Record`, written once at the end.

The rollout writes it however the run ended (done, refused, failed, interrupted):
each node's outcome and timeline, the duration of each stage, the canary's verdicts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from ..app.appdir import AppDir
from ..records import history
from ..records.history import HostRecord, Record, Result
from .plan import Plan
from .target import Target


class Recording(Protocol):
    """The rollout as its record sees it."""

    app: AppDir
    plan: Plan
    started: float  # time.monotonic() when the run began
    stages: dict[str, float]
    verdicts: list[str]

    @property
    def targets(self) -> Sequence[Target]: ...


def write(rollout: Recording, result: Result, message: str) -> None:
    """Append the run's record to the app's history."""
    record = Record(
        action=rollout.plan.action,
        outcome=result,
        artifact=rollout.plan.release.war_name,
        message=message,
        release=rollout.plan.release,
        hosts={t.host: _host_record(t) for t in rollout.targets},
        seconds=round(time.monotonic() - rollout.started, 3),
        stages=rollout.stages,
        canary="; ".join(rollout.verdicts),
    )
    history.History(rollout.app.history_path).append(record)


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

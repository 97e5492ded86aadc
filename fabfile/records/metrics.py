"""Delivery metrics from the history (``deploy history --stats``): how often the app is
deployed, how often a deploy fails, how long until it is put right, how long a deploy
takes, and how long each node needs from its restart to ready.

The definitions (the README's "Delivery metrics" says the same to users):

- A *deploy* is a ``deploy`` or ``switch`` run (blue/green: ``deploy --no-switch``
  sends nobody to the release, its ``switch`` does) that ended: ok, failed, interrupted
  or cut off. A refused run changed nothing; a run still running has not ended.
- A deploy *failed* when it did not end ok, when a verdict of its canary was Failed,
  or when a rollback followed it: each rollback that was not refused marks the newest
  deploy not yet rolled back (rolling back twice marks two).
- *Time to restore*: from the end of a failed deploy to the end of the next good run
  (a deploy, switch or rollback that ended ok and did not fail itself); failures in a
  row before it are one outage, timed from the first.
- *Duration*: the seconds of the deploys that ended ok; median, and p95 by nearest
  rank (a value that was measured, not one between two).
- *Restart to ready*, per node: what the history records for every run that restarted
  it (deploys and rollbacks alike), p95 by nearest rank. ``ready_timeout`` below twice
  that p95 leaves too little room for a slow start: the hint says so and what to set.

A run counts in the window by when it ended (a run cut off: when it started).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UsageError
from .history import Action, Record, Result, Run

DEFAULT_SINCE = "30d"
_SINCE = re.compile(r"([0-9]+)([hdw])")
_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400}
_LONGEST = 100 * 365 * 86400  # seconds: beyond it, a window no history can be older than
_DAY = 86400.0
DEPLOYS = (Action.DEPLOY, Action.SWITCH)
RESTORES = (Action.DEPLOY, Action.SWITCH, Action.ROLLBACK)
ENDED = (Result.OK, Result.FAILED, Result.INTERRUPTED, Result.CUT_OFF)
ROOM = 2.0  # ready_timeout should be at least this many times a node's p95 restart-to-ready


def parse_since(text: str) -> datetime.timedelta:
    """``--since``: a whole number of hours, days or weeks (12h, 30d, 2w)."""
    match = _SINCE.fullmatch(text.strip().lower())
    seconds = int(match[1]) * _UNITS[match[2]] if match else 0
    if not 0 < seconds <= _LONGEST:
        raise UsageError(
            f"--since {text!r}: expected a whole number of hours, days or weeks above 0 "
            f"(at most 100 years), such as --since 30d, 12h or 2w"
        )
    return datetime.timedelta(seconds=seconds)


@dataclasses.dataclass(frozen=True)
class Failure:
    run: int
    why: str  # failed, interrupted, cut off, canary Failed, rolled back by run N


@dataclasses.dataclass(frozen=True)
class Restore:
    """One outage: from the first failed deploy to the next good run (None: not yet)."""

    failed: int
    restored: int | None
    seconds: float | None


@dataclasses.dataclass(frozen=True)
class NodeReady:
    """One node's restart-to-ready times in the window, against its ``ready_timeout``."""

    node: str
    times: tuple[float, ...]
    ready_timeout: float | None  # None: the node is no longer in .config

    @property
    def p95(self) -> float:
        return percentile(self.times, 95)

    @property
    def suggested(self) -> int | None:
        """The ``ready_timeout`` to set when the current one leaves too little room."""
        if self.ready_timeout is None:
            return None
        return suggested_ready_timeout(self.times, self.ready_timeout)


@dataclasses.dataclass(frozen=True)
class Stats:
    """The figures of one window of the history."""

    since: str  # as given: 30d
    start: datetime.datetime
    end: datetime.datetime
    days: float  # what "a day" divides: the window, or since the first run if later
    runs: int  # runs of any kind in the window
    older: int  # ended runs before the window
    deploys: tuple[int, ...]  # their run numbers
    failures: tuple[Failure, ...]
    restores: tuple[Restore, ...]
    durations: tuple[float, ...]
    nodes: tuple[NodeReady, ...]

    @property
    def per_day(self) -> float:
        return len(self.deploys) / self.days

    @property
    def failure_rate(self) -> float | None:
        return len(self.failures) / len(self.deploys) if self.deploys else None

    @property
    def restored(self) -> tuple[float, ...]:
        return tuple(r.seconds for r in self.restores if r.seconds is not None)

    def to_json(self) -> dict[str, Any]:
        """The same figures as the table, for scripts; seconds as numbers, null for none."""
        return {
            "since": self.since,
            "from": self.start.isoformat(timespec="seconds"),
            "to": self.end.isoformat(timespec="seconds"),
            "days": round(self.days, 3),
            "runs": self.runs,
            "deploys": len(self.deploys),
            "deploy_runs": list(self.deploys),
            "deploys_per_day": round(self.per_day, 3),
            "failed": len(self.failures),
            "change_failure_rate": _rounded(self.failure_rate, 4),
            "failures": [dataclasses.asdict(f) for f in self.failures],
            "time_to_restore": {
                "median": _rounded(_median(self.restored), 3),
                "max": _rounded(max(self.restored, default=None), 3),
                "restores": [dataclasses.asdict(r) for r in self.restores],
                "unrestored": sum(r.restored is None for r in self.restores),
            },
            "duration": {
                "deploys": len(self.durations),
                "median": _rounded(_median(self.durations), 3),
                "p95": _rounded(percentile(self.durations, 95) if self.durations else None, 3),
            },
            "nodes": [
                {
                    "node": n.node,
                    "restarts": len(n.times),
                    "p95_restart_to_ready": round(n.p95, 3),
                    "ready_timeout": n.ready_timeout,
                    "suggested_ready_timeout": n.suggested,
                }
                for n in self.nodes
            ],
        }


def compute(
    runs: Sequence[Run],
    since: str,
    now: datetime.datetime,
    ready_timeouts: Mapping[str, float],
) -> Stats:
    """The figures of the runs that ended in the ``since`` window before ``now``."""
    start = now - parse_since(since)
    dated = [(run, when) for run in runs if (when := ended_at(run)) is not None]
    failed = _failures(dated)
    within = [(run, when) for run, when in dated if start <= when <= now]
    first = min((when for _, when in dated), default=now)
    days = min((now - start).total_seconds(), max(_DAY, (now - first).total_seconds())) / _DAY
    deploys = [run for run, _ in within if _deploy(run)]
    numbers = {run.number for run, _ in within}
    return Stats(
        since=since,
        start=start,
        end=now,
        days=days,
        runs=len(within),
        older=sum(when < start for _, when in dated),
        deploys=tuple(run.number for run in deploys),
        failures=tuple(failed[run.number] for run in deploys if run.number in failed),
        restores=tuple(r for r in _restores(dated, failed) if r.failed in numbers),
        durations=tuple(
            run.record.seconds
            for run in deploys
            if run.record.outcome == Result.OK and run.record.seconds is not None
        ),
        nodes=_nodes([run for run, _ in within], ready_timeouts),
    )


def ended_at(run: Run) -> datetime.datetime | None:
    """When a run ended (cut off: when it started); None while it runs or when unknown."""
    if run.record.outcome == Result.RUNNING:
        return None
    text = run.record.finished or (run.process.started if run.process else "")
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.astimezone()


def suggested_ready_timeout(times: Sequence[float], current: float) -> int | None:
    """The ``ready_timeout`` that leaves a node room to start, when ``current`` does not:
    `ROOM` times the p95 of its recorded restart-to-ready ``times``; None when ``current``
    is enough. The one rule both `deploy history --stats` and a node's missed
    ready_timeout (`fabfile.engine.readiness`) use. p95 rather than the longest start: one
    freak start (a node swapping once) should not set the limit for good, and below 20
    recorded starts the nearest-rank p95 is the longest anyway."""
    if not times:
        return None
    needs = ROOM * percentile(times, 95)
    return None if current >= needs else math.ceil(needs)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value at least ``p`` % of them reach."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _deploy(run: Run) -> bool:
    return run.record.action in DEPLOYS and run.record.outcome in ENDED


def _failed_verdict(record: Record) -> str:
    """'canary Failed', 'watch Failed', 'batch 2/3 Failed' when a verdict of the run was
    Failed (and the user went on past it); '' when none was."""
    # an older record's verdicts are one text, joined with '; ' (`history._old_canary`)
    texts = [part for text in record.verdict_texts for part in text.split(";")]
    for text in texts:
        who, _, verdict = text.strip().partition(": ")
        if who == "Failed":  # the canary gate's verdict carries no name
            return "canary Failed"
        if verdict.startswith("Failed"):  # 'batch 2/3: Failed: ...', 'watch: Failed: ...'
            return f"{who} Failed"
    return ""


def _failures(dated: Sequence[tuple[Run, datetime.datetime]]) -> dict[int, Failure]:
    """Each failed deploy by run number, with why: its own end, its canary, a rollback."""
    found: dict[int, Failure] = {}
    kept: list[int] = []  # deploys not rolled back yet, oldest first
    for run, _ in dated:
        record = run.record
        if _deploy(run):
            kept.append(run.number)
            failed_verdict = _failed_verdict(record)
            if record.outcome != Result.OK:
                found[run.number] = Failure(run.number, str(record.outcome))
            elif failed_verdict:
                found[run.number] = Failure(run.number, failed_verdict)
        elif record.action == Action.ROLLBACK and record.outcome in ENDED and kept:
            undone = kept.pop()
            why = found.get(undone, Failure(undone, "")).why
            rolled = f"rolled back by run {run.number}"
            found[undone] = Failure(undone, f"{why}, {rolled}" if why else rolled)
    return found


def _restores(
    dated: Sequence[tuple[Run, datetime.datetime]], failed: Mapping[int, Failure]
) -> list[Restore]:
    """Each outage, from its first failed deploy to the next good run."""
    found: list[Restore] = []
    down: tuple[int, datetime.datetime] | None = None
    for run, when in dated:
        if run.number in failed:
            down = down or (run.number, when)
        elif down and run.record.action in RESTORES and run.record.outcome == Result.OK:
            seconds = max(0.0, (when - down[1]).total_seconds())
            found.append(Restore(down[0], run.number, seconds))
            down = None
    if down:
        found.append(Restore(down[0], None, None))
    return found


def _nodes(runs: Sequence[Run], ready_timeouts: Mapping[str, float]) -> tuple[NodeReady, ...]:
    """Each node's restart-to-ready times, nodes in the order the history first names them."""
    times: dict[str, list[float]] = {}
    for run in runs:
        for node, item in run.record.hosts.items():
            if item.restart_to_ready is not None:
                times.setdefault(node, []).append(float(item.restart_to_ready))
    return tuple(NodeReady(n, tuple(t), ready_timeouts.get(n)) for n, t in times.items())


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None

"""The run's lifecycle, as events others subscribe to: hooks and notifications.

A rollout says what happened (`Kind`) with the run's facts (`Facts`); it does not know
who listens. Hooks (`fabfile.engine.hookrunner`) may stop the run at a ``pre`` event by
raising a `DeployError`; notifications (`fabfile.engine.notifications`) never raise.
Listeners are called in the order they were given, in the caller's thread, so a hook
that refuses the start stops the run before the next listener hears of it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Callable, Sequence


class Kind(enum.StrEnum):
    """What happened to the run."""

    STARTED = "started"  # pre-flight passed; nothing changed yet
    BATCH = "batch"  # a verdict: the canaries', a later batch's, the watch window's
    SWITCHING = "switching"  # blue/green: traffic is about to move to the new colour
    FINISHED = "finished"  # the run ended well (a deploy, a switch)
    ROLLED_BACK = "rolled back"  # a rollback ended well
    FAILED = "failed"  # the run failed or was interrupted (outcome says which)


@dataclasses.dataclass(frozen=True)
class Facts:
    """What every listener may tell about the run; known once pre-flight passed."""

    app: str
    action: str  # deploy, rollback, switch, deploy --no-switch
    version: str
    sha256: str  # the WAR's
    coordinates: str  # groupId:artifactId
    war: str  # its file name
    hosts: tuple[str, ...]
    strategy: str
    run: int  # as `deploy history` numbers it
    run_id: str
    user: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A verdict on the nodes on the release: after the canaries' batch, after a later
    batch (``window`` says which), or in the watch window after the last batch."""

    batch: int  # the batch just done (the last one, for the watch window)
    verdict: str  # Successful, Failed, Inconclusive, or what the user said
    reasons: str
    hosts: tuple[str, ...]  # the nodes judged
    window: str = "batch"  # canary, batch or watch


@dataclasses.dataclass(frozen=True)
class Event:
    kind: Kind
    facts: Facts
    outcome: str = "running"  # ok, failed, interrupted once the run ended
    message: str = ""  # why it failed (already redacted)
    hosts: tuple[str, ...] = ()  # the hosts it is about, when not all (a switch)
    verdict: Verdict | None = None
    seconds: float | None = None  # since the run started, once it ended
    at: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, object]:
        """The event as notifications send it (JSON)."""
        data: dict[str, object] = {"event": str(self.kind), **dataclasses.asdict(self.facts)}
        data |= {"hosts": list(self.facts.hosts), "outcome": self.outcome, "at": self.at}
        if self.message:
            data["message"] = self.message
        if self.hosts:
            data["switching"] = list(self.hosts)
        if self.verdict is not None:
            data["batch"] = dataclasses.asdict(self.verdict) | {"hosts": list(self.verdict.hosts)}
        if self.seconds is not None:
            data["seconds"] = self.seconds
        return data


# called with each event; returns a line for the run's history ('' for none)
Listener = Callable[[Event], str]


class Events:
    """The listeners of one run, called in order for each event; what they said for the
    history is kept in `notes`."""

    def __init__(self, listeners: Sequence[Listener] = ()) -> None:
        self.listeners = tuple(listeners)
        self.notes: list[str] = []

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            note = listener(event)
            if note:
                self.notes.append(note)

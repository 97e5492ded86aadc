"""The phases a node goes through during a rollout, and who is told about them."""

from __future__ import annotations

import enum
from typing import Protocol


class Phase(enum.StrEnum):
    """One step of one node; the value is what the progress view shows."""

    PENDING = "pending"
    CHECKING = "pre-flight"
    STAGING = "staging"
    STAGED = "staged"
    DRAINING = "draining"
    INSTALLING = "installing"
    RESTARTING = "restarting"
    DEPLOYING = "deploying beside"  # parallel: the manager starts the new version
    WAITING = "waiting for /status"
    WARMING = "warming up"
    SWITCHING = "switching"
    DONE = "done"
    SKIPPED = "verified, unchanged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def changes_node(self) -> bool:
        """Whether a stop in this phase may leave the node on a new release."""
        return self in (
            Phase.INSTALLING,
            Phase.RESTARTING,
            Phase.DEPLOYING,
            Phase.WAITING,
            Phase.WARMING,
            Phase.SWITCHING,
        )


class Reporter(Protocol):
    """Receives progress; the console shows it, tests record it."""

    def phase(self, host: str, phase: Phase, detail: str = "") -> None: ...

    def note(self, text: str) -> None: ...

    def ask(self, question: str, keys: str) -> str:
        """The key of ``keys`` the user pressed; '' when no one can be asked (no
        terminal)."""
        ...

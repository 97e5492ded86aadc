"""What a strategy, a runtime and the batches may ask of the rollout, once every
target is staged: `Steps`, which `fabfile.engine.rollout.Rollout` is.

It lives below all three, so none of them imports the rollout, and runtimes and
batches need nothing of the strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..app.pace import Pace
from ..app.release import Release
from ..cluster.balancer import Rotation
from .phase import Phase
from .target import Target


class Steps(Protocol):
    """What a strategy may do to the targets once every one of them is staged."""

    @property
    def targets(self) -> Sequence[Target]: ...

    @property
    def pace(self) -> Pace:
        """Batch size, canary and failure threshold of this run."""
        ...

    @property
    def release(self) -> Release:
        """The release this run makes live."""
        ...

    def ask(self, question: str, keys: str) -> str:
        """One key of ``keys`` pressed by the user; '' without a terminal."""
        ...

    def record_verdict(self, text: str) -> None:
        """The canary's verdict, for the history."""
        ...

    def judged(
        self, batch: int, hosts: Sequence[str], verdict: str, reasons: str, window: str = "batch"
    ) -> None:
        """A verdict, for hooks and notifications (`fabfile.engine.events.Verdict`)."""
        ...

    def switching(self, hosts: Sequence[str]) -> None:
        """Traffic is about to move to these hosts' new colour: the ``pre_switch`` hook,
        which may stop the run (`RolloutError`)."""
        ...

    def unchanged(self, target: Target) -> bool:
        """Already runs the release and says so: verify and skip (unless --force)."""
        ...

    def make_live(self, target: Target) -> None:
        """Install, restart, verify by version; `RolloutError` saying what was seen."""
        ...

    def prepare(self, targets: Sequence[Target]) -> None:
        """Before the first node's turn, on every one of ``targets`` at once: the
        release's files copied beside their places and checked, so each node's turn
        (`make_live`, by `Node.install`) only renames them. Nothing live changes; a
        failure stops the run before any node leaves rotation (`RolloutError`)."""
        ...

    def discard(self, targets: Sequence[Target]) -> None:
        """Remove what `prepare` made on those of ``targets`` the run did not reach."""
        ...

    def warm_up(self, targets: Sequence[Target], ramp: Rotation | None = None) -> None:
        """Let verified targets warm up, together: one ``warmup`` for all of them;
        with ``ramp``, their haproxy weight rises to full over it."""
        ...

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None: ...

    def note(self, text: str) -> None: ...

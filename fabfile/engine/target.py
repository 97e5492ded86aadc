"""One node of a rollout: what is known about it, and how it ended.

A `Target` travels from pre-flight to the history; its `Outcome` is one of a
fixed set, and `detail` carries the words (what failed, where it stopped).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING

from ..app.config import NodeConfig
from ..cluster.holdings import Holdings
from ..cluster.probe import Status
from .phase import Phase

if TYPE_CHECKING:  # SSH stays unloaded where a target is only named (the status path)
    from ..cluster.node import Node


class Outcome(enum.StrEnum):
    """How a node ended (the value is what the history and the summary show)."""

    UNTOUCHED = "untouched"
    INSTALLING = "installing"
    INSTALLED = "installed, not verified"
    DEPLOYED = "deployed"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    STAGED = "staged"  # `deploy stage`: holds the release's files, runs what it ran
    INTERRUPTED = "interrupted"
    # blue/green: a colour verified on the release but taking no traffic yet, the
    # colour switched to, and the colour switched away from (kept for a switch back)
    VERIFIED = "verified, not live"
    LIVE = "live"
    STANDBY = "standby"

    @property
    def on_release(self) -> bool:
        """Runs the plan's release, verified, and serves it."""
        return self in (Outcome.DEPLOYED, Outcome.UNCHANGED, Outcome.LIVE)


@dataclasses.dataclass
class Target:
    """One node of the rollout and what is known about it so far."""

    node: Node
    holdings: Holdings | None = None
    status: Status | None = None
    phase: Phase = Phase.PENDING
    outcome: Outcome = Outcome.UNTOUCHED
    detail: str = ""  # why it failed, or where it was interrupted
    tag: str = ""  # parallel: the version tag (##TAG) it was verified as, for the history
    sent: int = 0
    restart_to_ready: float | None = None
    restarted: bool = False  # the restart command was started: the running JVM may change
    restarted_at: float | None = None  # the node's uptime when its restart was claimed
    stale_claim: str = ""  # a restart claim judged over, which this run may take over
    guided: list[str] = dataclasses.field(default_factory=list)  # the user's choices
    left_out: str = ""  # the haproxy state someone else keeps it in, which the run left
    # every phase it entered and when, in seconds since the run began (a timeline)
    phases: list[tuple[str, float]] = dataclasses.field(default_factory=list)

    @property
    def host(self) -> str:
        """The node as tables and messages name it: ``host`` or ``host/instance``."""
        return self.node.config.label

    @property
    def config(self) -> NodeConfig:
        return self.node.config

    def end(self, outcome: Outcome, detail: str = "") -> None:
        self.outcome, self.detail = outcome, detail

"""What a strategy may do, and what it is given to do it with.

A strategy decides the *order* in which the rollout's targets change; how a
release becomes live on one node is the runtime's (`fabfile.engine.runtimes`), and
pre-flight, staging, history and the lock are the rollout's. So a strategy
sees only `Steps` (a narrow view of the rollout) and `Rotation` (the load
balancer), never `fabfile.engine.rollout.Rollout` itself.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from ...app.config import NodeConfig
from ..phase import Phase
from ..target import Target

if TYPE_CHECKING:
    from ...app.pace import Pace
    from ...app.release import Release
    from ...cluster.balancer import Counters
    from ...cluster.manager import Manager
    from ..planning import Plan
    from ..runtimes import Runtime


class Rollback(enum.StrEnum):
    """What ``deploy rollback`` means for a strategy."""

    REDEPLOY = "redeploy the previous release the same way"  # rolling
    SWITCH_BACK = "switch traffic back to the instances still on it"  # blue/green
    ROUTE_BACK = "send new sessions to the version still deployed"  # parallel


class Rotation(Protocol):
    """Taking a node out of the load balancer's rotation and back."""

    def mismatches(self, nodes: tuple[NodeConfig, ...]) -> list[str]: ...

    def drain(self, node: NodeConfig) -> float: ...

    def ready(self, node: NodeConfig, weight: int = 100) -> int:
        """Back in rotation, at ``weight`` percent if possible; the percent it got."""
        ...

    def set_weight(self, node: NodeConfig, percent: int) -> None: ...

    def counters(self, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
        """Each node's request and error counters (cumulative), by label."""
        ...

    def set_state(self, node: NodeConfig, state: str) -> None: ...

    def states(self, nodes: tuple[NodeConfig, ...]) -> dict[str, str]:
        """Each node's state by label: UP, DRAIN, MAINT, DOWN, ..."""
        ...

    def wait_up(self, node: NodeConfig) -> str:
        """Wait (bounded) until the balancer reports the node UP; return its last state."""
        ...


class Sessions(Protocol):
    """Counting a node's active sessions (the Tomcat manager's), to check replication."""

    def count(self, node: NodeConfig) -> int: ...


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a strategy is given besides the steps: the load balancer, the session
    counter, and the user's choices."""

    rotation: Rotation | None = None
    sessions: Sessions | None = None
    switch: bool = True  # blue-green: False stops before the switch (--no-switch)
    force: bool = False  # --force: also past a check that would stop before the switch
    distributable: bool | None = None  # the WAR's web.xml says <distributable/>; None: unknown
    rollback: bool = False  # the plan goes back to an earlier release
    manager: Manager | None = None  # parallel: deploys and undeploys through it


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

    def unchanged(self, target: Target) -> bool:
        """Already runs the release and says so: verify and skip (unless --force)."""
        ...

    def make_live(self, target: Target) -> None:
        """Install, restart, verify by version; `RolloutError` saying what was seen."""
        ...

    def warm_up(self, targets: Sequence[Target], ramp: Rotation | None = None) -> None:
        """Let verified targets warm up, together: one ``warmup`` for all of them;
        with ``ramp``, their haproxy weight rises to full over it."""
        ...

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None: ...

    def note(self, text: str) -> None: ...


class Strategy(Protocol):
    """The order of the per-node steps, and what rollback means."""

    name: ClassVar[str]
    rollback: ClassVar[Rollback]

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Pre-flight problems of the strategy's own (e.g. the load balancer's)."""
        ...

    def runtime(self, plan: Plan, steps: Steps, run_id: str, holder: str) -> Runtime:
        """How a release becomes live on one node (`fabfile.engine.runtimes`) for this strategy."""
        ...

    def run(self, steps: Steps) -> None: ...

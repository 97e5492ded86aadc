"""What a strategy may do, what it is given to do it with, and what it declares.

A strategy decides the *order* in which the rollout's targets change; how a
release becomes live on one node is the runtime's (`fabfile.engine.runtimes`), and
pre-flight, staging, history and the lock are the rollout's. So a strategy
sees only `Steps` (a narrow view of the rollout, `fabfile.engine.steps`), the load
balancer's `Rotation` and the Tomcat manager's `Sessions` (both declared by their
owners in `fabfile.cluster`), never `fabfile.engine.rollout.Rollout` itself.

Everything that differs between strategies is declared by the strategy (`Strategy`):
what it requires of ``.config``, what a canary counts, how the dry run words it,
what ``deploy status`` shows, which commands it adds and what a rollback means.
Code outside `fabfile.engine.strategies` asks these; it never compares a name.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from ...app.config import AppConfig, NodeConfig
from ...app.pace import Pace

if TYPE_CHECKING:
    # Only named in annotations. Loading them here would bring the rollout's machinery
    # (plans, runtimes, targets) to every reader of a strategy's declarations, such as
    # the status table, which reads `Columns` and `Preview` (tests/unit/test_startup.py).
    from ...cluster.balancer import Rotation
    from ...cluster.manager import Manager, Sessions
    from ..plan import Plan
    from ..runtimes import Runtime
    from ..steps import Steps


class Rollback(enum.StrEnum):
    """What ``deploy rollback`` means for a strategy."""

    REDEPLOY = "redeploy the previous release the same way"  # rolling
    SWITCH_BACK = "switch traffic back to the instances still on it"  # blue/green
    ROUTE_BACK = "send new sessions to the version still deployed"  # parallel


class Unit(enum.StrEnum):
    """What ``batch``, ``canary`` and ``max_failures`` count (the value is the word
    messages use)."""

    NODES = "nodes"
    HOSTS = "hosts"  # blue/green: a host's colours change together

    def of(self, nodes: Sequence[NodeConfig]) -> int:
        """How many there are among ``nodes``."""
        if self is Unit.HOSTS:
            return len({node.host for node in nodes})
        return len(nodes)

    def installs(self, unchanged: Sequence[bool]) -> bool:
        """Whether a run installs the release on a host whose targets are (True) or are
        not unchanged. A host changes together: where one colour runs the release
        already, blue/green installs nothing, its switch makes that colour live."""
        if self is Unit.HOSTS:
            return not any(unchanged)
        return not all(unchanged)


class Columns(enum.Enum):
    """What ``deploy status`` shows beside each node's ``/status``, and so when it exits 0."""

    ROTATION = "haproxy's state of each node; 0 when every node is Ok and UP"
    COLOURS = "which colour of each host is live; 0 when every host has a live colour, Ok"
    VERSIONS = "every version Tomcat holds, with its sessions; 0 when every node is Ok"


@dataclasses.dataclass(frozen=True)
class Preview:
    """How ``deploy --dry-run`` words what the strategy does to one node."""

    change: str  # a node that does not run the release yet
    kept: str = ""  # a node the run leaves as it is (`Strategy.kept`), e.g. a live colour
    # a node someone else took out of haproxy's rotation ({state}: MAINT or DRAIN), which
    # the run leaves out (`fabfile.cluster.takenout`); '' when the strategy does not
    held: str = ""
    # the line on how the run's pace groups its units (blue/green: idle starts, switches),
    # given the pace and how many units the run has; None: no such line
    order: Callable[[Pace, int], str] | None = None
    # a node that runs the release already; '' for the common words (skipped, as it is)
    unchanged: str = ""
    # what the run changes in haproxy, said once when there is one; '' for nothing
    rotation: str = ""
    # how one host's traffic moves from its kept node to the other ({host}, {old}, {new});
    # '' when the run moves none (the dry run of a switch and of a rollback say it)
    switch: str = ""


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


class Strategy(Protocol):
    """The order of the per-node steps, and everything else that is a strategy's own.

    A new strategy is a module of `fabfile.engine.strategies` holding a class that
    declares all of this, and one line in `fabfile.engine.strategies.REGISTRY`.
    """

    name: ClassVar[str]  # as ``.config`` names it: ``strategy = NAME``
    title: ClassVar[str]  # as messages name it: "deploy switch is for blue/green apps"
    rollback: ClassVar[Rollback]  # what ``deploy rollback`` means (for that command to read)
    unit: ClassVar[Unit]  # what batch, canary and max_failures count
    restarts: ClassVar[bool]  # a node's JVM restarts: without haproxy, requests fail meanwhile
    # Its run makes every changing node's copies before the first turn (`Steps.prepare`),
    # checking the staged files as it copies them: staging then need not hash them first.
    prepares: ClassVar[bool]
    # each release is a Tomcat version beside the others: config.properties lives inside
    # it (drift reads the newest one's), and so do the app directory's extensions/,
    # mounted with the WAR's own META-INF/context.xml (`fabfile.app.extensions`)
    versioned: ClassVar[bool]
    preview: ClassVar[Preview]  # the dry run's words
    status: ClassVar[Columns]  # what ``deploy status`` shows
    # commands that only this strategy has (``deploy switch``, ``deploy retire``): the
    # command refuses other apps (`fabfile.engine.strategies.require`)
    commands: ClassVar[tuple[str, ...]]

    def __init__(self, setup: Setup) -> None: ...

    @classmethod
    def validate(cls, config: AppConfig) -> None:
        """What the strategy requires of ``.config``, beyond what every strategy does:
        `ConfigError` naming file, line and key (`AppConfig.where`)."""
        ...

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Pre-flight problems of the strategy's own (e.g. the load balancer's)."""
        ...

    def kept(self, nodes: tuple[NodeConfig, ...]) -> frozenset[str]:
        """The labels of the nodes a run leaves as they are, read now (the dry run says
        `Preview.kept` of them); `PreflightError` when what tells them cannot be read."""
        ...

    def runtime(self, plan: Plan, steps: Steps, run_id: str, holder: str) -> Runtime:
        """How a release becomes live on one node (`fabfile.engine.runtimes`) for this strategy."""
        ...

    def run(self, steps: Steps) -> None: ...

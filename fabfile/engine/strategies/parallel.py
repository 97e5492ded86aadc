"""Parallel deployment: Tomcat serves the new version beside the old one, no restart.

Each host's manager deploys the release as a new version tag
(`fabfile.engine.runtimes.parallel`); new sessions go to it, users with a session
stay on theirs, and `fabfile.engine.retirement` undeploys old versions once their
sessions end. No JVM restarts, so no node leaves the load balancer's pool.

Hosts go one after another: a version takes about half a second to deploy
and verify, and a release that fails on the first host then reaches that
host's new users only, never the whole cluster's. After every later batch the
hosts on the release are judged over that batch (a version serves new sessions
from the moment Tomcat deploys it, before it is verified), and for ``watch``
seconds after the last; a Failed verdict does what ``on_failure`` says, and
``stop`` undeploys the version from the judged hosts. A rollback is the previous
release deployed again under a newer tag, from the node's kept copy: new
sessions go to it at once, and users logged into the version rolled back from
stay on it until their sessions end (retire then removes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ...app.config import DEPLOY, AppConfig, NodeConfig
from ...errors import ConfigError
from ..batches import Batches, Window, order
from ..phase import Phase
from ..plan import Plan
from ..runtimes import Runtime
from ..runtimes.parallel import ParallelVersions
from ..steps import Steps
from ..target import Outcome, Target
from .contract import Columns, Preview, Rollback, Setup, Unit
from .order import judged_over_each_batch


class Parallel:
    """One host after another: the new version deployed beside the old, verified."""

    name: ClassVar[str] = "parallel"
    title: ClassVar[str] = "parallel"
    rollback: ClassVar[Rollback] = Rollback.ROUTE_BACK
    unit: ClassVar[Unit] = Unit.NODES
    restarts: ClassVar[bool] = False
    prepares: ClassVar[bool] = False
    versioned: ClassVar[bool] = True
    preview: ClassVar[Preview] = Preview(
        "deploy beside the running version (no restart)", order=judged_over_each_batch
    )
    status: ClassVar[Columns] = Columns.VERSIONS
    # undeploys old versions once their sessions end (after a deploy with ``retire = auto``)
    commands: ClassVar[tuple[str, ...]] = ("retire",)

    def __init__(self, setup: Setup) -> None:
        if setup.manager is None:  # `validate` requires manager_user
            raise ValueError("parallel deployment needs the Tomcat manager")
        self.manager = setup.manager
        self.rotation = setup.rotation  # for the canary's error counters

    @classmethod
    def validate(cls, config: AppConfig) -> None:
        """One Tomcat per host, reached through its manager."""
        if any(node.instance for node in config.nodes):
            raise ConfigError(
                f"{config.where(DEPLOY, 'instances')}: strategy = parallel runs one Tomcat "
                "per host, which holds the versions side by side; remove instances"
            )
        if not config.nodes[0].manager_user:
            raise ConfigError(
                f"{config.where(DEPLOY, 'strategy')} = parallel deploys through the Tomcat "
                "manager: set manager_user (a manager-script user) and manager_password_file, "
                "or export $DEPLOY_SECRET_MANAGER_PASSWORD"
            )

    def check(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """The manager is read per node by the runtime's pre-flight (`settle`)."""
        return []

    def kept(self, nodes: tuple[NodeConfig, ...]) -> frozenset[str]:
        return frozenset()

    def runtime(self, plan: Plan, steps: Steps, run_id: str, holder: str) -> Runtime:
        self.versions = ParallelVersions(plan, steps, self.manager)
        return self.versions

    def run(self, steps: Steps) -> None:
        """``batch`` hosts at a time, canaries first, each later batch judged over itself
        (`fabfile.engine.batches`)."""
        todo = []
        for target in order(steps.targets):
            if steps.unchanged(target):
                # /status names the release: the newest version serving it is verified now
                target.end(Outcome.UNCHANGED, self.versions.serving(target))
                detail = target.status.describe() if target.status else ""
                steps.set_phase(target, Phase.SKIPPED, detail)
            else:
                todo.append(target)

        def after(verified: Sequence[Target], more: bool, canary: bool) -> None:
            for target in verified:
                steps.set_phase(target, Phase.DONE, target.detail)

        runner = Batches(
            steps,
            self.rotation,
            on_failed_canary=self.versions.withdraw,
            analyse=True,
            window=Window.BATCH,
            out_words="the version was undeployed from the nodes on it",
        )
        runner.run(todo, steps.make_live, after)
        runner.finish()

"""``deploy stage WAR``: send a release to every node ahead; nothing goes live."""

from __future__ import annotations

from ..cluster.manager import Manager
from ..engine import planning, strategies
from ..engine.plan import Plan
from ..engine.strategies.contract import Setup
from ..errors import (
    ExitCode,
)
from ..records.history import Action
from ..view import console as view
from . import execute
from .locks import locked
from .options import Options, artifact


def stage(options: Options, war: str | None, latest: bool = False) -> ExitCode:
    """Send ``war``'s release to every node ahead (pre-flight and staging only)."""
    app = options.app
    found = artifact(app, war, latest)
    release, sources = planning.release_of(app, found)
    command = options.command("stage", release.war_name)
    plan = Plan(Action.STAGE, release, sources, options.nodes, command=command)
    setup = Setup(rotation=options.balancers, manager=Manager.for_nodes(plan.nodes))
    strategy = strategies.build(app.config.strategy, setup)
    options.console.print(f"stage {release.label} to {len(plan.nodes)} node(s); nothing goes live")
    with locked(options, command) as lock:
        targets = execute.run_plan(options, plan, strategy, stage_only=True, lock=lock)
    sent = sum(target.sent for target in targets)
    options.console.print(
        view.plain(
            f"staged: {sent} bytes sent; every node holds {release.label}. Deploying it now "
            f"sends nothing: {options.command(release.war_name)}"
        )
    )
    return ExitCode.OK

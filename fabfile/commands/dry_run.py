"""``deploy WAR --dry-run``: the plan, read from the nodes, with nothing changed."""

from __future__ import annotations

from ..cluster.manager import Manager
from ..engine import planning, strategies
from ..engine.plan import Plan
from ..engine.rollout import Rollout
from ..engine.strategies.contract import Setup
from ..errors import (
    ExitCode,
)
from ..records.history import Action
from ..records.lock import read_holder
from ..view import console as view
from ..view import preview, progress
from . import locks
from .options import Options, artifact


def dry_run(
    options: Options, war: str | None, force: bool = False, latest: bool = False
) -> ExitCode:
    """Print what ``deploy WAR`` would do on each node; change nothing, take no lock."""
    app = options.app
    found = artifact(app, war, latest)
    release, sources = planning.release_of(app, found)
    files = app.overrides()
    merged = {host: files.files(host) for host in app.config.hosts}
    plan = Plan(Action.DEPLOY, release, sources, options.nodes, force, pace=app.config.pace)
    balancer = options.balancers
    setup = Setup(rotation=balancer, force=force, manager=Manager.for_nodes(plan.nodes))
    strategy = strategies.build(app.config.strategy, setup)
    kept = strategy.kept(plan.nodes)
    rollout = Rollout(app, plan, strategy, progress.PlainReporter(options.console))
    holder = read_holder(app.lock_path)
    held = locks.lines(locks.read(plan.nodes))
    console = options.console
    console.print(
        view.plain(
            f"dry run: deploy {release.label} to {len(plan.nodes)} node(s), strategy "
            f"{app.config.strategy}; nothing is changed, no lock is taken"
        )
    )
    if holder:
        held.insert(0, f"lock: held by {holder.describe()} (this app directory's)")
    for line in held or ["lock: free"]:
        console.print(view.plain(line))
    for line in balancer.plan_lines() if balancer is not None else []:
        console.print(view.plain(line), soft_wrap=True)
    steps = preview.steps(rollout, merged, kept, balancer)
    for line in preview.lines(steps, preview.order(rollout)):
        console.print(view.plain(line))
    return ExitCode.PREFLIGHT if any(step.error for step in steps) else ExitCode.OK

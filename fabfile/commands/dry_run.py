"""``--dry-run`` of ``deploy WAR``, ``deploy rollback`` and ``deploy switch``: the plan,
read from the nodes and the balancers, with nothing changed.

Each works out its release as the real command does (the WAR named, the release before
the current one, what the idle colours run) and then shows the same plan: each node's
step (`fabfile.view.preview`), the order of the run, what changes in haproxy. None
takes a lock, writes to a node or a balancer, or writes the history; each says who
holds the lock, if anyone does.
"""

from __future__ import annotations

import dataclasses

from ..cluster import probe
from ..cluster.manager import Manager
from ..engine import planning, strategies
from ..engine.plan import Plan
from ..engine.rollout import Rollout
from ..engine.strategies.contract import Setup
from ..errors import ExitCode
from ..records.history import Action, History
from ..records.lock import read_holder
from ..view import console as view
from ..view import preview, progress
from . import cutoff, locks
from . import switch as switching
from .options import NO_FLAGS, Options, PaceFlags, artifact

_NOTHING = "nothing is changed, no lock is taken, no history is written"


def dry_run(
    options: Options,
    war: str | None,
    force: bool = False,
    latest: bool = False,
    switch: bool = True,
) -> ExitCode:
    """Print what ``deploy WAR`` would do on each node; change nothing, take no lock.
    ``switch=False`` (``--no-switch``): blue/green stops before the switches."""
    app = options.app
    release, sources = planning.release_of(app, artifact(app, war, latest))
    plan = Plan(Action.DEPLOY, release, sources, options.nodes, force, pace=app.config.pace)
    headline = f"deploy {release.label} to {len(plan.nodes)} node(s)"
    return _show(options, plan, headline, Setup(force=force, switch=switch))


def rollback(options: Options, flags: PaceFlags = NO_FLAGS) -> ExitCode:
    """Print what ``deploy rollback`` would do: from which release to which, on which
    nodes, in which order; the release is found as the rollback finds it."""
    app = options.app
    pace = flags.apply(app.config.pace, canary=False)
    release, sources = planning.rollback_target(app, options.nodes)
    history = History(app.history_path)
    said = cutoff.rollback_line(cutoff.unfinished(history), history.current(), release)
    if said:
        options.console.print(view.plain(said), soft_wrap=True)
    current = history.current()
    since = f"from {current.label} " if current is not None else ""
    headline = f"rollback {since}to {release.label} on {len(options.nodes)} node(s)"
    plan = Plan(Action.ROLLBACK, release, sources, options.nodes, pace=pace)
    return _show(options, plan, headline, Setup(rollback=True))


def switch(options: Options) -> ExitCode:
    """Print what ``deploy switch`` would do: which colour of each host takes the
    traffic, running which release, and what haproxy is told."""
    options.require("switch", "deploy switch --dry-run")
    idle, release, sources = switching.idle_and_target(options)
    live = [node for node in options.nodes if node not in idle]
    running = sorted({s.version for s in probe.probe_all(live) if s.ok}) or ["nothing"]
    pace = NO_FLAGS.apply(options.app.config.pace, canary=False)
    plan = Plan(Action.SWITCH, release, sources, options.nodes, pace=pace)
    hosts = len({node.host for node in options.nodes})
    headline = (
        f"switch {hosts} host(s) from their live colours (on {', '.join(running)}) to their "
        f"idle colours (on {release.label})"
    )
    return _show(options, plan, headline, Setup())


def _show(options: Options, plan: Plan, headline: str, setup: Setup) -> ExitCode:
    """The plan of a run: the lock, the balancers, each node's step, the order, what
    changes in haproxy. Exits 4 (pre-flight) when a node could not take it."""
    app, console, balancer = options.app, options.console, options.balancers
    manager = Manager.for_nodes(plan.nodes)
    setup = dataclasses.replace(setup, rotation=balancer, manager=manager)
    strategy = strategies.build(app.config.strategy, setup)
    kept = strategy.kept(plan.nodes)
    rollout = Rollout(app, plan, strategy, progress.PlainReporter(console))
    files = app.overrides()
    merged = {host: files.files(host) for host in app.config.hosts}
    said = f"dry run: {headline}, strategy {app.config.strategy}; {_NOTHING}"
    console.print(view.plain(said), soft_wrap=True)
    holder = read_holder(app.lock_path)
    held = locks.lines(locks.read(plan.nodes))
    if holder:
        held.insert(0, f"lock: held by {holder.describe()} (this app directory's)")
    for line in held or ["lock: free"]:
        console.print(view.plain(line))
    for line in balancer.plan_lines() if balancer is not None else []:
        console.print(view.plain(line), soft_wrap=True)
    steps = preview.steps(rollout, merged, kept, balancer)
    moved = kept if setup.switch else frozenset()  # --no-switch: no traffic moves
    after = preview.order(rollout) + preview.traffic(rollout, moved, balancer)
    for line in preview.lines(steps, after):
        console.print(view.plain(line), soft_wrap=True)
    return ExitCode.PREFLIGHT if any(step.error for step in steps) else ExitCode.OK

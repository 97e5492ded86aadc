"""Running a plan: the strategy built for it, the locks, the rollout, the summary.

Shared by deploy, stage, switch and rollback, so that no command calls another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ..app import artifact as artifacts
from ..cluster.manager import Manager
from ..cluster.node import Node
from ..engine import planning, strategies
from ..engine.clusterlock import ClusterLock
from ..engine.events import Events, Listener
from ..engine.hookrunner import HookRunner
from ..engine.notifications import Notifier
from ..engine.phase import Reporter
from ..engine.plan import Plan
from ..engine.rollout import Rollout
from ..engine.strategies.contract import Setup, Strategy
from ..engine.target import Outcome, Target
from ..errors import DeployError, ExitCode
from ..records.history import Action, History
from ..view import console as view
from ..view import progress
from ..words import some
from . import cutoff, retiring
from .locks import locked
from .options import Options, PaceFlags, record_refusal


def roll(
    options: Options,
    plan: Plan,
    switch: bool = True,
    lock: ClusterLock | None = None,
    rescue: bool = False,
) -> ExitCode:
    """Run ``plan`` under the locks: ``lock`` when the command took them already (to
    read its target under them, or to keep them into a rollback), else both taken here,
    the nodes' by pre-flight. ``rescue``: the rollback of a deploy that failed in this
    run (no ``pre_*`` hook: `listeners`)."""
    console = options.console
    balancer = options.balancers
    if balancer is None and options.strategy.restarts:
        console.print(
            "[yellow]warning:[/] no load balancer in .config (lb_socket): requests sent to a "
            "node while it restarts may fail"
        )
    for line in balancer.plan_lines() if balancer is not None else []:
        console.print(view.plain(line), soft_wrap=True)
    if plan.action != Action.ROLLBACK:  # rollback's first line said it (`go_back`)
        for run in cutoff.unfinished(History(options.app.history_path)):
            console.print(view.plain(cutoff.headline(run)), soft_wrap=True)
    console.print(f"{plan.action} {plan.release.label} to {len(plan.nodes)} node(s)")
    manager = Manager.for_nodes(plan.nodes)
    setup = Setup(
        rotation=balancer,
        sessions=manager,
        switch=switch,
        force=plan.force,
        distributable=_distributable(plan),
        rollback=plan.action == Action.ROLLBACK,
        manager=manager,
    )
    strategy = strategies.build(options.app.config.strategy, setup)
    with contextlib.ExitStack() as held:
        if lock is None:
            lock = held.enter_context(locked(options, plan.command))
        targets = run_plan(options, plan, strategy, lock=lock, rescue=rescue)
    summary(console, targets)
    if any(target.outcome == Outcome.VERIFIED for target in targets):
        console.print(plan.next_step)
    return ExitCode.OK


def _distributable(plan: Plan) -> bool | None:
    """Whether the release's WAR replicates sessions (None: no copy here to read)."""
    war = plan.sources.get(plan.release.war)
    return artifacts.distributable(war) if war else None


def run_plan(
    options: Options,
    plan: Plan,
    strategy: Strategy,
    stage_only: bool = False,
    lock: ClusterLock | None = None,
    rescue: bool = False,
) -> list[Target]:
    """The rollout, shown live on a terminal; ``lock``'s connections are the run's."""
    console = options.console
    hosts = [node.label for node in plan.nodes]
    factory = lock.node if lock is not None else Node
    try:
        events = Events(() if stage_only else listeners(options, rescue))
    except DeployError as error:  # unsafe hooks, a shared secret: refused, and recorded
        record_refusal(options, plan.action, plan.release.war_name, error)
        raise

    def rollout(reporter: Reporter) -> Rollout:
        return Rollout(options.app, plan, strategy, reporter, factory, lock, events)

    if console.is_terminal:
        with progress.LiveReporter(view.rich_of(console), hosts) as live:
            return rollout(live).run(stage_only)
    return rollout(progress.PlainReporter(console)).run(stage_only)


def listeners(options: Options, rescue: bool = False) -> list[Listener]:
    """Who hears the run's events: the app's hooks, then its notify_url. Unsafe hooks
    and an unreadable or shared secret file are refused here (`ConfigError`), before
    the run starts. A ``rescue`` (the rollback of a deploy that failed in the same run)
    runs no ``pre_*`` hook: the run started already, and a hook that refuses must not
    block the way back."""
    config, console = options.app.config, options.console

    def say(text: str) -> None:
        console.print(view.plain(text), soft_wrap=True)

    found: list[Listener] = []
    if config.hooks.commands:
        found.append(HookRunner(config.hooks, options.app.path, say, pre=not rescue))
    if config.notify_url:
        found.append(Notifier(config, say))
    return found


SUMMARY_NAMES = 8  # up to this many nodes, the summary names each one's outcome


# named in a fleet's summary: the nodes to look at (untouched ones are only counted)
_TROUBLE = (Outcome.FAILED, Outcome.INTERRUPTED, Outcome.INSTALLING, Outcome.INSTALLED)


def summary(console: view.Out, targets: Sequence[Target]) -> None:
    """Each node's outcome; past a few nodes, how many ended each way, and by name only
    those not on the release."""
    sent = sum(t.sent for t in targets)
    if len(targets) <= SUMMARY_NAMES:
        outcomes = ", ".join(f"{t.host}: {t.outcome.value}" for t in targets)
    else:
        by: dict[Outcome, list[str]] = {}
        for target in targets:
            by.setdefault(target.outcome, []).append(target.host)
        outcomes = ", ".join(
            f"{outcome.value}: {len(hosts)}" + (f" ({some(hosts)})" if outcome in _TROUBLE else "")
            for outcome, hosts in by.items()
        )
    console.print(view.plain(f"done: {outcomes}; {sent} bytes sent"))
    left = [f"{t.host} ({t.left_out})" for t in targets if t.left_out]
    if left:
        console.print(
            view.plain(
                f"left out of rotation as found, not by deploy: {some(left)}; "
                "--force puts them back"
            )
        )


def go_back(options: Options, flags: PaceFlags, lock: ClusterLock | None = None) -> ExitCode:
    """Roll back to the release before the current one (``deploy rollback``, and a guided
    failure's ``b``), then retire what parallel deployment leaves behind. What "before"
    means is read under the locks: a run that held them meanwhile is counted. With
    ``lock``, the deploy that failed in this run rolls back under its own locks, which
    it kept (none let go in between); it retires once it let go (`retiring`)."""
    if lock is not None:
        return _go_back(options, flags, lock, rescue=True)
    with locked(options, options.command("rollback")) as taken:
        code = _go_back(options, flags, taken)
    return retiring.retire_after(options, code)


def _go_back(
    options: Options, flags: PaceFlags, lock: ClusterLock, rescue: bool = False
) -> ExitCode:
    again = options.command("rollback")
    pace = flags.apply(options.app.config.pace, canary=False)
    lock.hold(read=True)  # the pre-flight's read, in the lock's round trip
    release, sources = planning.rollback_target(options.app, options.nodes)
    history = History(options.app.history_path)
    said = cutoff.rollback_line(cutoff.unfinished(history), history.current(), release)
    if said:
        options.console.print(view.plain(said), soft_wrap=True)
    finish = f"To finish the rollback, run it again: {again} (it aims at the same release)"
    plan = Plan(Action.ROLLBACK, release, sources, options.nodes, False, finish, again, pace)
    return roll(options, plan, lock=lock, rescue=rescue)

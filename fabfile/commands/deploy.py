"""``deploy WAR``: roll a release over the nodes in the app's strategy's order."""

from __future__ import annotations

from ..engine import planning
from ..engine.batches import RollBack
from ..engine.clusterlock import ClusterLock
from ..engine.plan import Plan
from ..errors import (
    DeployError,
    ExitCode,
    RolloutError,
    UsageError,
    explain,
)
from ..records.history import Action
from ..view import console as view
from . import execute, locks, retiring
from .options import NO_FLAGS, Options, PaceFlags, artifact, record_refusal


def deploy(
    options: Options,
    war: str | None,
    force: bool = False,
    latest: bool = False,
    switch: bool = True,
    pace_flags: PaceFlags = NO_FLAGS,
) -> ExitCode:
    """Roll ``war`` (or the newest WAR) over the nodes, in the app's strategy's order.

    ``switch=False`` (blue/green only) verifies it on the idle colours and stops there.
    """
    app = options.app
    if war and latest:
        raise UsageError("give a WAR or --latest, not both")
    if not switch:
        options.require("switch", "--no-switch")
    try:
        release, sources = planning.release_of(app, artifact(app, war, latest))
        options.nodes  # noqa: B018 - parse .config now, so a refusal is recorded
        pace = pace_flags.apply(app.config.pace, canary=switch)  # --no-switch: no traffic
    except DeployError as error:
        record_refusal(options, Action.DEPLOY, war or "(newest)", error)
        raise
    flags = [*(["--force"] if force else []), *([] if switch else ["--no-switch"])]
    again = options.command(release.war_name, *flags)
    if switch:
        next_step = planning.undo_line(app, release, options.command("rollback"))
    else:
        next_step = f"Nothing was switched. To send traffic to it: {options.command('switch')}"
    action = Action.DEPLOY if switch else Action.DARK
    plan = Plan(action, release, sources, options.nodes, force, next_step, again, pace)
    rescued: RollBack | None = None
    # one run: the locks taken for the deploy are kept into its rollback, if it rolls back
    with locks.locked(options, plan.command) as lock:
        try:
            code = execute.roll(options, plan, switch, lock=lock)
        except RollBack as chosen:
            if not switch:  # nothing users see changed: nothing to roll back
                raise RolloutError(
                    f"{chosen}; nothing was switched, so nothing to roll back"
                ) from None
            options.console.print(view.plain(explain(chosen)), soft_wrap=True)
            options.console.print(view.plain(f"{chosen}: rolling back now, in this run"))
            code, rescued = _roll_back(options, chosen, pace_flags, lock), chosen
    code = retiring.retire_after(options, code)
    if rescued is not None:
        raise RolloutError(f"{rescued}; rolled back to the release before")
    return code


def _roll_back(options: Options, chosen: RollBack, flags: PaceFlags, lock: ClusterLock) -> ExitCode:
    """The rollback a failed deploy chose, under the locks it holds still."""
    try:
        return execute.go_back(options, PaceFlags(flags.batch), lock=lock)
    except DeployError as failed:
        again = options.command("rollback")
        raise RolloutError(
            f"{chosen}; the rollback did not finish: {explain(failed)}\n"
            f"The release stays where the summary above says; run the rollback: {again}"
        ) from None

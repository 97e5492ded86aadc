"""``deploy switch``: blue/green, the traffic to the other colour."""

from __future__ import annotations

from pathlib import Path

from ..app.config import NodeConfig
from ..app.release import Release
from ..cluster.balancer import State
from ..engine import planning
from ..engine.plan import Plan
from ..errors import (
    ExitCode,
    NodeError,
    PreflightError,
)
from ..records.history import Action
from . import execute
from .locks import locked
from .options import Options, PaceFlags


def switch(options: Options) -> ExitCode:
    """Blue/green: send the traffic to the other colour, whatever release it runs
    (it must answer /status with it); run again, it switches back. Which colour is idle,
    and what it runs, is read under the locks."""
    options.require("switch", "deploy switch")
    again = options.command("switch")
    with locked(options, again) as lock:
        lock.hold(read=True)  # the pre-flight's read, in the lock's round trip
        _, release, sources = idle_and_target(options)
        finish = f"To finish the switch, run it again: {again} (it aims at the same release)"
        pace = PaceFlags().apply(options.app.config.pace, canary=False)
        plan = Plan(Action.SWITCH, release, sources, options.nodes, False, finish, again, pace)
        return execute.roll(options, plan, lock=lock)


def idle_and_target(options: Options) -> tuple[tuple[NodeConfig, ...], Release, dict[str, Path]]:
    """Each host's idle colour (``maint`` in haproxy), and the release they run, with
    the coordinator's files that match its blobs (`planning.switch_target`)."""
    balancer = options.balancers
    assert balancer is not None  # the strategy's `validate` requires one
    try:
        states = balancer.states(options.nodes)
    except NodeError as error:
        raise PreflightError(f"{error}; the switch needs it; nothing was changed") from None
    idle = tuple(node for node in options.nodes if states[node.label] == State.MAINT)
    release, sources = planning.switch_target(options.app, idle)
    return idle, release, sources

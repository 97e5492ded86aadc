"""What each command does, free of Invoke: status, deploy, rollback, history.

The tasks in `fabfile.tasks` parse flags and call these; tests call them too.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from . import artifact as artifacts
from . import console as view
from . import planning, probe, strategies
from .appdir import AppDir
from .balancer import Balancer
from .config import NodeConfig
from .errors import DeployError, ExitCode, NodeError, UsageError, explain
from .history import Action, History, Record, Result
from .lock import Lock
from .planning import Plan
from .rollout import Rollout
from .strategies.contract import Strategy
from .target import Target


@dataclasses.dataclass(frozen=True)
class Options:
    """What every command takes: where the app is, which nodes, how to print."""

    app: AppDir
    hosts: tuple[str, ...] | None = None
    console: Console = dataclasses.field(default_factory=view.make_console)

    @property
    def nodes(self) -> tuple[NodeConfig, ...]:
        return self.app.config.select(self.hosts)

    def command(self, *words: str) -> str:
        """The command line that repeats ``words`` for this app and these hosts."""
        line = ["deploy", *words, "--app-dir", str(self.app.path)]
        if self.hosts:
            line += ["--hosts", ",".join(self.hosts)]
        return shlex.join(line)


def status(options: Options, as_json: bool = False) -> ExitCode:
    """Print every node's /status (and haproxy state), probed in parallel.

    Non-zero when a node is not Ok or is out of rotation: a node left in
    maintenance serves nobody, however well its /status answers.
    """
    nodes = options.nodes
    statuses = probe.probe_all(nodes)
    current = History(options.app.history_path).current()
    expected = current.version if current else None
    rotation = _rotation(nodes)
    if as_json:
        options.console.file.write(view.status_json(statuses, expected, rotation) + "\n")
    else:
        options.console.print(view.status_table(statuses, expected, rotation))
    serving = all(state == "UP" for state in (rotation or {}).values())
    return ExitCode.OK if serving and all(s.ok for s in statuses) else ExitCode.NODE_FAILED


def _rotation(nodes: tuple[NodeConfig, ...]) -> dict[str, str] | None:
    """Each node's haproxy state, None without a load balancer in .config."""
    balancer = Balancer.for_nodes(nodes)
    if balancer is None:
        return None
    try:
        return balancer.states(nodes)
    except NodeError:
        return {node.label: "UNREACHABLE" for node in nodes}


def deploy(
    options: Options, war: str | None, force: bool = False, latest: bool = False
) -> ExitCode:
    """Roll ``war`` (or the newest WAR) over the nodes, one verified node at a time."""
    app = options.app
    if war and latest:
        raise UsageError("give a WAR or --latest, not both")
    try:
        found = (
            artifacts.read(_war_path(app, war), app.name)
            if war
            else artifacts.newest(app.path, app.name)
        )
        release, sources = planning.release_of(app, found)
        options.nodes  # noqa: B018 - parse .config now, so a refusal is recorded
    except DeployError as error:
        _record_refusal(options, Action.DEPLOY, war or "(newest)", error)
        raise
    again = options.command(release.war_name, *(["--force"] if force else []))
    undo = planning.undo_line(app, release, options.command("rollback"))
    plan = Plan(Action.DEPLOY, release, sources, options.nodes, force, undo, again)
    return _roll(options, plan)


def rollback(options: Options) -> ExitCode:
    """Go back to the release deployed before the current one, from the nodes' copies.

    What "back" means is the strategy's (`fabfile.strategies.contract.Rollback`);
    for rolling it is a rolling redeploy of the previous release.
    """
    release, sources = planning.rollback_target(options.app, options.nodes)
    again = options.command("rollback")
    finish = f"To finish the rollback, run it again: {again} (it aims at the same release)"
    plan = Plan(Action.ROLLBACK, release, sources, options.nodes, False, finish, again)
    return _roll(options, plan)


def history(options: Options, limit: int = 20, as_json: bool = False) -> ExitCode:
    """The last ``limit`` records, as a table or, for scripts, as JSON (a list, oldest first)."""
    entries = History(options.app.history_path).entries()[-limit:]
    if as_json:
        options.console.file.write(json.dumps(entries, indent=2) + "\n")
    elif not entries:
        options.console.print(f"no deploys recorded in {options.app.history_path} yet")
    else:
        options.console.print(view.history_table(entries))
    return ExitCode.OK


def _record_refusal(options: Options, action: Action, artifact: str, error: DeployError) -> None:
    """Bad input changes nothing, but the history still says it was tried and why."""
    record = Record(action, Result.REFUSED, Path(artifact).name, message=explain(error))
    History(options.app.history_path).append(record)


def _war_path(app: AppDir, war: str) -> Path:
    path = Path(war)
    return (path if path.is_absolute() or path.exists() else app.path / path).absolute()


def _roll(options: Options, plan: Plan) -> ExitCode:
    console = options.console
    balancer = Balancer.for_nodes(plan.nodes)
    if balancer is None:
        console.print(
            "[yellow]warning:[/] no load balancer in .config (lb_socket): requests sent to a "
            "node while it restarts may fail"
        )
    console.print(f"{plan.action} {plan.release.label} to {len(plan.nodes)} node(s)")
    strategy = strategies.build(options.app.config.strategy, balancer)
    with Lock(options.app.lock_path, plan.command):
        targets = _run(options, plan, strategy)
    _summary(console, targets)
    return ExitCode.OK


def _run(options: Options, plan: Plan, strategy: Strategy) -> list[Target]:
    console = options.console
    hosts = [node.label for node in plan.nodes]
    if console.is_terminal:
        with view.LiveReporter(console, hosts) as live:
            return Rollout(options.app, plan, strategy, live).run()
    return Rollout(options.app, plan, strategy, view.PlainReporter(console)).run()


def _summary(console: Console, targets: Sequence[Target]) -> None:
    sent = sum(t.sent for t in targets)
    outcomes = ", ".join(f"{t.host}: {t.outcome.value}" for t in targets)
    console.print(f"done: {outcomes}; {sent} bytes sent")

"""What each command does, free of Invoke: status, deploy, rollback, history.

The tasks in `fabfile.tasks` parse flags and call these; tests call them too.
"""

from __future__ import annotations

import dataclasses
import getpass
import shlex
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from . import artifact as artifacts
from . import console as view
from . import probe
from .appdir import AppDir
from .artifact import Artifact
from .balancer import Balancer
from .config import NodeConfig
from .errors import ArtifactError, DeployError, ExitCode, NodeError, UsageError
from .history import History, now
from .lock import Lock
from .release import Release
from .rollout import Plan, Rollout, Target
from .strategy import Rolling
from .version import MavenVersion


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
        return {node.host: "UNREACHABLE" for node in nodes}


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
        release, sources = _release(app, found)
        options.nodes  # noqa: B018 - parse .config now, so a refusal is recorded
    except DeployError as error:
        _record_refusal(options, "deploy", war or "(newest)", error)
        raise
    again = options.command(release.war_name, *(["--force"] if force else []))
    plan = Plan("deploy", release, sources, options.nodes, force, _undo(options, release), again)
    return _roll(options, plan)


def _undo(options: Options, release: Release) -> str:
    """The rollback command, only when a rollback will find something to go back to."""
    app = options.app
    earlier = [held for held in History(app.history_path).stack() if held != release]
    version = MavenVersion(release.version)
    older = [path for found, path in artifacts.candidates(app.path, app.name) if found < version]
    if earlier or older:
        return f"To roll back: {options.command('rollback')}"
    return "There is no earlier release to roll back to (no history and no older WAR here)."


def rollback(options: Options) -> ExitCode:
    """Go back to the release deployed before the current one, from the nodes' copies."""
    app = options.app
    previous = History(app.history_path).previous()
    if previous is None:
        return _rollback_without_history(options)
    sources = _local_sources(app, previous)
    return _roll_back_to(options, previous, sources)


def history(options: Options, limit: int = 20) -> ExitCode:
    entries = History(options.app.history_path).entries()[-limit:]
    if not entries:
        options.console.print(f"no deploys recorded in {options.app.history_path} yet")
    else:
        options.console.print(view.history_table(entries))
    return ExitCode.OK


def _record_refusal(options: Options, action: str, artifact: str, error: DeployError) -> None:
    """Bad input changes nothing, but the history still says it was tried and why."""
    History(options.app.history_path).append(
        {
            "action": action,
            "finished": now(),
            "user": getpass.getuser(),
            "artifact": Path(artifact).name,
            "outcome": "refused",
            "message": str(error),
            "hosts": {},
        }
    )


def _war_path(app: AppDir, war: str) -> Path:
    path = Path(war)
    return (path if path.is_absolute() or path.exists() else app.path / path).absolute()


def _release(app: AppDir, found: Artifact) -> tuple[Release, dict[str, Path]]:
    properties, jettyrc = app.payloads()
    release = Release(
        war=found.sha256,
        config=properties.sha256,
        jettyrc=jettyrc.sha256,
        version=str(found.version),
        coordinates=found.coordinates,
        war_name=found.path.name,
    )
    sources = {found.sha256: found.path, properties.sha256: properties.path}
    sources[jettyrc.sha256] = jettyrc.path
    return release, sources


def _local_sources(app: AppDir, release: Release) -> dict[str, Path]:
    """Coordinator files that match the release's blobs, for nodes that lack one."""
    sources: dict[str, Path] = {}
    war = app.path / release.war_name
    if war.is_file() and artifacts.file_sha256(war) == release.war:
        sources[release.war] = war
    for payload in app.payloads():
        if payload.sha256 in (release.config, release.jettyrc):
            sources[payload.sha256] = payload.path
    return sources


def _rollback_without_history(options: Options) -> ExitCode:
    """No history: go to the WAR just below the highest version the nodes run."""
    app = options.app
    running = [s.version for s in probe.probe_all(options.nodes) if s.ok]
    if not running:
        raise ArtifactError(
            f"no history in {app.history_path} and no node answers /status, so there is no "
            "'previous' version; deploy a WAR explicitly"
        )
    top = max(MavenVersion(v) for v in running)
    lower = [path for version, path in artifacts.candidates(app.path, app.name) if version < top]
    if not lower:
        raise ArtifactError(
            f"no history and no WAR below {top} in {app.path}; deploy one explicitly"
        )
    release, sources = _release(app, artifacts.read(lower[-1], app.name))
    return _roll_back_to(options, release, sources)


def _roll_back_to(options: Options, release: Release, sources: dict[str, Path]) -> ExitCode:
    again = options.command("rollback")
    return _roll(
        options, Plan("rollback", release, sources, options.nodes, False, _finish(options), again)
    )


def _finish(options: Options) -> str:
    return (
        f"To finish the rollback, run it again: {options.command('rollback')} "
        "(it aims at the same release)"
    )


def _roll(options: Options, plan: Plan) -> ExitCode:
    console = options.console
    balancer = Balancer.for_nodes(plan.nodes)
    if balancer is None:
        console.print(
            "[yellow]warning:[/] no load balancer in .config (lb_socket): requests sent to a "
            "node while it restarts may fail"
        )
    console.print(f"{plan.action} {plan.release.label} to {len(plan.nodes)} node(s)")
    with Lock(options.app.lock_path, plan.command):
        targets = _run(options, plan, Rolling(balancer))
    _summary(console, targets)
    return ExitCode.OK


def _run(options: Options, plan: Plan, strategy: Rolling) -> list[Target]:
    console = options.console
    hosts = [node.host for node in plan.nodes]
    if console.is_terminal:
        with view.LiveReporter(console, hosts) as live:
            return Rollout(options.app, plan, strategy, live).run()
    return Rollout(options.app, plan, strategy, view.PlainReporter(console)).run()


def _summary(console: Console, targets: Sequence[Target]) -> None:
    sent = sum(t.sent for t in targets)
    outcomes = ", ".join(f"{t.host}: {t.outcome}" for t in targets)
    console.print(f"done: {outcomes}; {sent} bytes sent")

"""The Invoke tasks: ``status``, ``deploy``, ``rollback``, ``switch``, ``retire``,
``logging``, ``unlock``, ``config-diff``, ``config-history``, ``history``, ``report``.

Each task is thin: it finds the app directory, builds `Options` and calls its
command's module in `fabfile.commands`; its flags and its boundary come from
`fabfile.cli.flags`. `COMMANDS` is the one table of the commands: it gives the
Invoke namespace, the help's list and each command's usage.

Outside this repository, ``inv`` finds the tasks through a one-line
``tasks.py`` in the app directory or any parent: ``from fabfile import ns``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invoke import Collection, Context, Task, task

from ..errors import ExitCode, UsageError
from .flags import LIMIT, DeployTask, boundary

if TYPE_CHECKING:
    from ..commands.options import Options

# Each task imports its command when it runs: ``deploy --help``, ``deploy --version``,
# ``inv -l`` and the status table load no SSH, no Tomcat manager and no drawing code
# they do not use (tests/unit/test_startup.py holds them to it).


def _options(
    hosts: str | None,
    app_dir: str | None,
    app: str | None,
    command: str,
    lock_wait: float = 0.0,
    lb: str | None = None,
) -> Options:
    """The app directory and nodes a command means; its config files are archived as
    the command sees them (`fabfile.records.archive`)."""
    if lock_wait < 0:
        raise UsageError(f"--lock-wait {lock_wait:g}: the seconds to wait cannot be negative")
    from ..app import appdir
    from ..commands.options import Options
    from ..records.archive import Archive

    chosen = tuple(h.strip() for h in hosts.split(",")) if hosts else None
    balancers = tuple(b.strip() for b in lb.split(",") if b.strip()) if lb is not None else None
    found = appdir.locate(app_dir, app)
    Archive(found.path).snapshot(found.config_files(), command)
    return Options(found, chosen, lock_wait=lock_wait, lbs=balancers)


@task(klass=DeployTask, name="status", default=True)
@boundary
def status_task(
    c: Context,
    hosts: str | None = None,
    lb: str | None = None,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show every node's /status: Ok or Fail, version.

    For each node: URL, Ok or Fail with the reason, groupId:artifactId, version
    and response time. Exits 1 when any node is not Ok.
    """
    from ..commands import status as statuses

    return statuses.status(_options(hosts, app_dir, app, "status", lb=lb), as_json=json)


@task(klass=DeployTask, name="deploy")
@boundary
def deploy_task(
    c: Context,
    artifact: str | None = None,
    latest: bool = False,
    force: bool = False,
    no_switch: bool = False,
    dry_run: bool = False,
    batch: str | None = None,
    confirm: bool = False,
    lock_wait: float = 0.0,
    hosts: str | None = None,
    lb: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Roll a WAR over the nodes, in the order of the app's strategy.

    A node counts as deployed when its /status answers 200 and names the new
    version. Rolling: one node at a time; the first failure stops the rollout
    and says how to roll back. Blue/green: the idle colour of every host is
    deployed and verified, then haproxy switches to it. Parallel: each host's
    Tomcat deploys it beside the running version, then old versions retire.
    """
    from ..commands import deploy as deploying
    from ..commands import dry_run as planned
    from ..commands.options import PaceFlags

    command = "deploy --dry-run" if dry_run else "deploy"
    options = _options(hosts, app_dir, app, command, lock_wait, lb)
    if dry_run:
        return planned.dry_run(options, artifact, force=force, latest=latest)
    pace = PaceFlags(batch, confirm)
    return deploying.deploy(
        options, artifact, force=force, latest=latest, switch=not no_switch, pace_flags=pace
    )


@task(klass=DeployTask, name="stage")
@boundary
def stage_task(
    c: Context,
    artifact: str | None = None,
    latest: bool = False,
    lock_wait: float = 0.0,
    hosts: str | None = None,
    lb: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Send a WAR to the nodes ahead of its deploy; nothing goes live.

    Pre-flight and staging only: each node gets the files it lacks, checked by
    sha256 on the node. The deploy of that WAR then sends 0 bytes and costs
    only the restarts.
    """
    from ..commands import stage

    options = _options(hosts, app_dir, app, "stage", lock_wait, lb)
    return stage.stage(options, artifact, latest=latest)


@task(klass=DeployTask, name="rollback")
@boundary
def rollback_task(
    c: Context,
    batch: str | None = None,
    lock_wait: float = 0.0,
    hosts: str | None = None,
    lb: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Go back to the release before the current one.

    From the copies the nodes kept (no bytes are sent), with the config files
    it was deployed with. Rolling back twice goes two releases back. Blue/green:
    a switch back to the colour that still runs it (no restart). Parallel: the
    previous release deployed again under a newer tag (no restart); users of
    the newer one keep it until their sessions end.
    """
    from ..commands import rollback
    from ..commands.options import PaceFlags

    options = _options(hosts, app_dir, app, "rollback", lock_wait, lb)
    return rollback.rollback(options, PaceFlags(batch))


@task(klass=DeployTask, name="switch")
@boundary
def switch_task(
    c: Context,
    lock_wait: float = 0.0,
    hosts: str | None = None,
    lb: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Blue/green: send the traffic to the other colour.

    The idle colours must answer /status with the release they run; haproxy
    then sends every host's traffic to them (new colour up, then old one out).
    """
    from ..commands import switch

    return switch.switch(_options(hosts, app_dir, app, "switch", lock_wait, lb))


@task(klass=DeployTask, name="retire")
@boundary
def retire_task(
    c: Context,
    now: bool = False,
    lock_wait: float = 0.0,
    hosts: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Parallel: undeploy old versions once their last session ends.

    Polls every host's sessions per version for up to retire_timeout; the
    newest version is never undeployed. With --now, old versions go at once
    (their users are logged out).
    """
    from ..commands import retire

    return retire.retire(_options(hosts, app_dir, app, "retire", lock_wait), now=now)


@task(klass=DeployTask, name="history")
@boundary
def history_task(
    c: Context,
    limit: int = LIMIT,
    stats: bool = False,
    since: str | None = None,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show the deploys and rollbacks recorded in the app directory.

    With --stats, the delivery metrics of the last --since (default 30d)
    instead: deploys a day, change failure rate, time to restore, median and
    p95 deploy duration, and each node's p95 restart-to-ready time against its
    ready_timeout.
    """
    from ..commands import history as records

    options = _options(None, app_dir, app, "history")
    return records.history(options, limit=limit, as_json=json, stats=stats, since=since)


@task(klass=DeployTask, name="report")
@boundary
def report_task(
    c: Context,
    run: int = 0,
    output: str | None = None,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show where a run's time went, and draw its timeline.

    Per node: seconds in each phase (pre-flight, staging, drain, restart,
    /status, warm-up, switch) and how it ended. The timeline, a row per node,
    goes to timeline-N.html here (a self-contained page), or to --output.
    """
    from ..commands import report

    options = _options(None, app_dir, app, "report")
    return report.report(options, run=run, output=output, as_json=json)


@task(klass=DeployTask, name="logging")
@boundary
def logging_task(
    c: Context,
    lock_wait: float = 0.0,
    hosts: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Push logback.xml to every node, live, without a restart.

    logback rereads it (the file must say scan="true"); each node is verified on
    /status: the same JVM (pid, start time) reports the file's root level. A node
    where it does not show gets its previous file back. Rollback restores the
    logging configuration of the release before.
    """
    from ..commands import push_logging

    return push_logging.logging(_options(hosts, app_dir, app, "logging", lock_wait))


@task(klass=DeployTask, name="unlock")
@boundary
def unlock_task(
    c: Context,
    force: bool = False,
    hosts: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show the deploy lock on the nodes; clear it where it is stale.

    Each node's lock names its holder (user, coordinator host, pid, command,
    start) and how long ago it was renewed. A stale one (its lease ended: the
    run was killed or cut off) is cleared; with --force a live one too, after
    saying whose it was. Exits 5 when a live lock is left.
    """
    from ..commands import unlock

    return unlock.unlock(_options(hosts, app_dir, app, "unlock"), force=force)


@task(klass=DeployTask, name="config-diff")
@boundary
def config_diff_task(
    c: Context,
    hosts: str | None = None,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Diff each node's config files against what deploy would send.

    A unified diff per node and file (config.properties, .jettyrc, logback.xml,
    each host's overrides applied). Exits 1 when a node differs (drift).
    """
    from ..commands import config_files

    return config_files.config_diff(_options(hosts, app_dir, app, "config diff"), as_json=json)


@task(klass=DeployTask, name="config-history")
@boundary
def config_history_task(
    c: Context,
    limit: int = LIMIT,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show every version of the config files the coordinator saw.

    .config, config.properties, .jettyrc, logback.xml and the per-host files;
    each version's content is kept by sha256 in .deploy-archive/.
    """
    from ..commands import config_files

    options = _options(None, app_dir, app, "config history")
    return config_files.config_history(options, limit=limit, as_json=json)


@dataclasses.dataclass(frozen=True)
class Command:
    """One command: its task and its usage line. `COMMANDS` gives the Invoke namespace,
    the help's list and each command's usage, so a command is added in one place."""

    task: Task[Callable[..., Any]]
    usage: str

    @property
    def name(self) -> str:
        return str(self.task.name)


COMMANDS = (
    Command(status_task, "[status] [FLAGS]"),
    Command(deploy_task, "[deploy] WAR|--latest [--dry-run] [FLAGS]"),
    Command(stage_task, "stage WAR|--latest [FLAGS]"),
    Command(rollback_task, "rollback [FLAGS]"),
    Command(switch_task, "switch [FLAGS]"),
    Command(retire_task, "retire [--now] [FLAGS]"),
    Command(logging_task, "logging [FLAGS]"),
    Command(unlock_task, "unlock [--force] [FLAGS]"),
    Command(config_diff_task, "config diff [FLAGS]"),
    Command(config_history_task, "config history [FLAGS]"),
    Command(history_task, "history [--stats] [--since AGE] [FLAGS]"),
    Command(report_task, "report [--run N] [--output FILE] [FLAGS]"),
)


def namespace() -> Collection:
    """A fresh collection of the tasks, for ``deploy``, ``inv`` and ``fab``."""
    return Collection(*(command.task for command in COMMANDS))

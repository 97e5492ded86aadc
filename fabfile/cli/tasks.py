"""The Invoke tasks: ``status``, ``deploy``, ``rollback``, ``switch``, ``retire``,
``logging``, ``unlock``, ``config-diff``, ``config-history``, ``history``, ``report``.

Each task is thin: it finds the app directory, builds `Options` and calls its
command's module in `fabfile.commands`; its flags come from the table in
`fabfile.cli.flags` (`Flag`, `DeployTask`), its boundary from `fabfile.cli.boundary`,
its `Options` from `fabfile.cli.scope`. `COMMANDS` is the one table of the commands: it gives the
Invoke namespace, the help's list and each command's usage.

Outside this repository, ``inv`` finds the tasks through a one-line
``tasks.py`` in the app directory or any parent: ``from fabfile import ns``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from invoke import Argument, Collection, Context, Task, task
from invoke.exceptions import ParseError

from ..errors import ExitCode
from .boundary import boundary
from .flags import FLAGS, LIMIT
from .scope import options as _options

# Each task imports its command when it runs: ``deploy --help``, ``deploy --version``,
# ``inv -l`` and the status table load no SSH, no Tomcat manager and no drawing code
# they do not use (tests/unit/test_startup.py holds them to it).


class Flag(Argument):
    """An Invoke `Argument` that knows its spelling and the name of its value."""

    def __init__(self, value_name: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value_name = value_name

    @classmethod
    def of(cls, arg: Argument) -> Flag:
        """The task argument Invoke built, with the value name from `FLAGS`."""
        return cls(
            FLAGS[arg.names[0]].value,
            names=arg.names,
            kind=arg.kind,
            default=arg.default,
            help=arg.help,
            positional=arg.positional,
            optional=arg.optional,
            incrementable=arg.incrementable,
            attr_name=arg.attr_name,
        )

    @property
    def spelling(self) -> str:
        """``-H, --hosts LIST``: what help shows."""
        long = next(f"--{n}" for n in self.names if len(n) > 1)
        short = [f"-{n}" for n in self.names if len(n) == 1]
        words = [", ".join([*short, long])]
        if self.value_name:
            words.append(f"[{self.value_name}]" if self.optional else self.value_name)
        return " ".join(words)

    def __repr__(self) -> str:
        # Invoke's own messages show the flag with !r ("Flag ... needed value").
        return next(f"--{n}" for n in self.names if len(n) > 1)

    def set_value(self, value: Any, cast: bool = True) -> None:
        if cast and value == "" and self.takes_value:
            raise ParseError(f"{self!r} needs a value")  # --hosts= would mean every node
        try:
            super().set_value(value, cast=cast)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(self.kind, self.kind.__name__)
            raise ParseError(f"{self!r} takes {kind}, not {value!r}") from None


class DeployTask(Task[Callable[..., Any]]):
    """A task whose flags come from `FLAGS`, not from Invoke's first-free-letter guess."""

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        long = opts["names"][0]
        spec = FLAGS[long]
        opts["names"] = [long, spec.short] if spec.short else [long]
        opts["help"] = spec.help  # from the table: Invoke pops its help dict on first use
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        return [Flag.of(arg) for arg in super().get_arguments(ignore_unknown_help)]


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
        return planned.dry_run(options, artifact, force, latest, switch=not no_switch)
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
    dry_run: bool = False,
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
    from ..commands import dry_run as planned
    from ..commands import rollback
    from ..commands.options import PaceFlags

    command = "rollback --dry-run" if dry_run else "rollback"
    options = _options(hosts, app_dir, app, command, lock_wait, lb)
    if dry_run:
        return planned.rollback(options, PaceFlags(batch))
    return rollback.rollback(options, PaceFlags(batch))


@task(klass=DeployTask, name="switch")
@boundary
def switch_task(
    c: Context,
    dry_run: bool = False,
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
    from ..commands import dry_run as planned
    from ..commands import switch

    command = "switch --dry-run" if dry_run else "switch"
    options = _options(hosts, app_dir, app, command, lock_wait, lb)
    return planned.switch(options) if dry_run else switch.switch(options)


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
    Command(rollback_task, "rollback [--dry-run] [FLAGS]"),
    Command(switch_task, "switch [--dry-run] [FLAGS]"),
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

"""The Invoke tasks: ``status``, ``deploy``, ``rollback``, ``switch``, ``retire``,
``logging``, ``config-diff``, ``config-history``, ``history``, ``report``.

Each task is thin: it finds the app directory, builds `Options` and calls
`fabfile.commands.actions`. The `boundary` decorator is the one place where a
`DeployError` becomes the message the user reads and its exit code, for
``deploy`` and ``inv`` alike.

`FLAGS` is the one table of the tasks' flags: the short letter (the same in
every command), the name of the value and the help line. `DeployTask` builds
Invoke's arguments from it, so ``deploy``, ``inv`` and ``fab`` agree.

Outside this repository, ``inv`` finds the tasks through a one-line
``tasks.py`` in the app directory or any parent: ``from fabfile import ns``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Argument, Collection, Context, Task, task
from invoke.exceptions import Exit, ParseError

from ..app import appdir
from ..app.credentials import redact
from ..commands import actions
from ..errors import DeployError, ExitCode, explain

F = TypeVar("F", bound=Callable[..., Any])
LIMIT = 20


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one flag is spelled and explained: ``-H, --hosts LIST  Only these nodes...``."""

    short: str
    value: str  # the value's name in help; empty for an on/off flag
    help: str


FLAGS = {
    "hosts": Spec("H", "LIST", "Only these nodes: a,b."),
    "app-dir": Spec("C", "DIR", "The app directory (default: the current directory)."),
    "app": Spec("", "NAME", "An app by name, in $DEPLOY_APPS_ROOT (default ./apps)."),
    "artifact": Spec("", "WAR", "The WAR (default: the newest version)."),
    "latest": Spec("l", "", "Use the newest WAR by Maven version."),
    "force": Spec("f", "", "Redo nodes on it; past switch, heap checks."),
    "now": Spec("", "", "Undeploy old versions now, sessions or not."),
    "no-switch": Spec("", "", "Blue/green: verify the idle colours, no switch."),
    "dry-run": Spec("", "", "Print the plan and config diffs; change nothing."),
    "batch": Spec("b", "N|P%", "Nodes at once (default: .config batch)"),
    "confirm": Spec("", "", "Ask to go on after the canary."),
    "json": Spec("j", "", "As JSON."),
    "limit": Spec("n", "N", f"Last N records (default {LIMIT})."),
    "run": Spec("", "N", "A run by its # in history (default: the last)."),
    "output": Spec("o", "FILE", "Draw it here: .svg or .html."),
}
DRY_RUN = "the dry run is `deploy WAR --dry-run` (it prints the plan); nothing was done"


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
            kind = "a whole number" if self.kind is int else self.kind.__name__
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


def boundary(function: F) -> F:
    """Turn our errors into their message and exit code; exit non-zero on failure."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        if args and isinstance(args[0], Context) and args[0].config.run.dry:
            # ``inv --dry`` only echoes c.run(); our tasks would deploy for real.
            raise Exit(f"error: --dry: {DRY_RUN}", code=int(ExitCode.USAGE))
        try:
            code = function(*args, **kwargs)
        except DeployError as error:
            raise Exit(f"error: {redact(explain(error))}", code=int(error.exit_code)) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=int(ExitCode.INTERRUPTED)) from None
        if code:
            raise Exit(code=int(code))

    return wrapper  # type: ignore[return-value]


def _options(
    hosts: str | None, app_dir: str | None, app: str | None, command: str
) -> actions.Options:
    """The app directory and nodes a command means; its config files are archived as
    the command sees them (`fabfile.records.archive`)."""
    chosen = tuple(h.strip() for h in hosts.split(",")) if hosts else None
    found = appdir.locate(app_dir, app)
    found.snapshot(command)
    return actions.Options(found, chosen)


@task(klass=DeployTask, default=True)
@boundary
def status(
    c: Context,
    hosts: str | None = None,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show every node's /status: Ok or Fail, version.

    For each node: URL, Ok or Fail with the reason, groupId:artifactId, version
    and response time. Exits 1 when any node is not Ok.
    """
    return actions.status(_options(hosts, app_dir, app, "status"), as_json=json)


@task(klass=DeployTask)
@boundary
def deploy(
    c: Context,
    artifact: str | None = None,
    latest: bool = False,
    force: bool = False,
    no_switch: bool = False,
    dry_run: bool = False,
    batch: str | None = None,
    confirm: bool = False,
    hosts: str | None = None,
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
    options = _options(hosts, app_dir, app, "deploy --dry-run" if dry_run else "deploy")
    if dry_run:
        return actions.dry_run(options, artifact, force=force, latest=latest)
    pace = actions.PaceFlags(batch, confirm)
    return actions.deploy(
        options, artifact, force=force, latest=latest, switch=not no_switch, pace_flags=pace
    )


@task(klass=DeployTask)
@boundary
def stage(
    c: Context,
    artifact: str | None = None,
    latest: bool = False,
    hosts: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Send a WAR to the nodes ahead of its deploy; nothing goes live.

    Pre-flight and staging only: each node gets the files it lacks, checked by
    sha256 on the node. The deploy of that WAR then sends 0 bytes and costs
    only the restarts.
    """
    return actions.stage(_options(hosts, app_dir, app, "stage"), artifact, latest=latest)


@task(klass=DeployTask)
@boundary
def rollback(
    c: Context,
    batch: str | None = None,
    hosts: str | None = None,
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
    return actions.rollback(_options(hosts, app_dir, app, "rollback"), actions.PaceFlags(batch))


@task(klass=DeployTask)
@boundary
def switch(
    c: Context, hosts: str | None = None, app_dir: str | None = None, app: str | None = None
) -> ExitCode:
    """Blue/green: send the traffic to the other colour.

    The idle colours must answer /status with the release they run; haproxy
    then sends every host's traffic to them (new colour up, then old one out).
    """
    return actions.switch(_options(hosts, app_dir, app, "switch"))


@task(klass=DeployTask)
@boundary
def retire(
    c: Context,
    now: bool = False,
    hosts: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Parallel: undeploy old versions once their last session ends.

    Polls every host's sessions per version for up to retire_timeout; the
    newest version is never undeployed. With --now, old versions go at once
    (their users are logged out).
    """
    return actions.retire(_options(hosts, app_dir, app, "retire"), now=now)


@task(klass=DeployTask)
@boundary
def history(
    c: Context,
    limit: int = LIMIT,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show the deploys and rollbacks recorded in the app directory."""
    return actions.history(_options(None, app_dir, app, "history"), limit=limit, as_json=json)


@task(klass=DeployTask)
@boundary
def report(
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
    options = _options(None, app_dir, app, "report")
    return actions.report(options, run=run, output=output, as_json=json)


@task(klass=DeployTask)
@boundary
def logging(
    c: Context, hosts: str | None = None, app_dir: str | None = None, app: str | None = None
) -> ExitCode:
    """Push logback.xml to every node, live, without a restart.

    logback rereads it (the file must say scan="true"); each node is verified on
    /status: the same JVM (pid, start time) reports the file's root level. A node
    where it does not show gets its previous file back. Rollback restores the
    logging configuration of the release before.
    """
    return actions.logging(_options(hosts, app_dir, app, "logging"))


@task(klass=DeployTask, name="config-diff")
@boundary
def config_diff(
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
    return actions.config_diff(_options(hosts, app_dir, app, "config diff"), as_json=json)


@task(klass=DeployTask, name="config-history")
@boundary
def config_history(
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
    options = _options(None, app_dir, app, "config history")
    return actions.config_history(options, limit=limit, as_json=json)


def namespace() -> Collection:
    """A fresh collection of the tasks, for ``deploy``, ``inv`` and ``fab``."""
    return Collection(
        status,
        deploy,
        stage,
        rollback,
        switch,
        retire,
        logging,
        config_diff,
        config_history,
        history,
        report,
    )

"""The Invoke tasks: ``status``, ``deploy``, ``rollback``, ``history``.

Each task is thin: it finds the app directory, builds `Options` and calls
`fabfile.actions`. The `boundary` decorator is the one place where a
`DeployError` becomes the message the user reads and its exit code, for
``deploy`` and ``inv`` alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Collection, Context, task
from invoke.exceptions import Exit

from . import actions, appdir
from .errors import DeployError, ExitCode
from .secrets import redact

F = TypeVar("F", bound=Callable[..., Any])

_COMMON = {
    "hosts": "Only these nodes, comma-separated (a partial deploy).",
    "app-dir": "The app directory (default: the current directory).",
    "app": "An app by name, under $DEPLOY_APPS_ROOT (default ./apps).",
}


def boundary(function: F) -> F:
    """Turn our errors into their message and exit code; exit non-zero on failure."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = function(*args, **kwargs)
        except DeployError as error:
            raise Exit(f"error: {redact(str(error))}", code=int(error.exit_code)) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=int(ExitCode.INTERRUPTED)) from None
        if code:
            raise Exit(code=int(code))

    return wrapper  # type: ignore[return-value]


def _options(hosts: str | None, app_dir: str | None, app: str | None) -> actions.Options:
    chosen = tuple(h.strip() for h in hosts.split(",")) if hosts else None
    return actions.Options(appdir.locate(app_dir, app), chosen)


@task(default=True, help={**_COMMON, "json": "Print JSON for scripts."})
@boundary
def status(
    c: Context,
    hosts: str | None = None,
    json: bool = False,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Show every node's /status: URL, Ok/Fail, artifact, version, response time."""
    return actions.status(_options(hosts, app_dir, app), as_json=json)


@task(
    help={
        **_COMMON,
        "artifact": "The WAR to deploy (default: the newest by Maven version).",
        "latest": "Deploy the newest WAR by Maven version.",
        "force": "Restart nodes that already run this release.",
    },
)
@boundary
def deploy(
    c: Context,
    artifact: str | None = None,
    latest: bool = False,
    force: bool = False,
    hosts: str | None = None,
    app_dir: str | None = None,
    app: str | None = None,
) -> ExitCode:
    """Roll a WAR over the nodes, one verified node at a time."""
    return actions.deploy(_options(hosts, app_dir, app), artifact, force=force, latest=latest)


@task(help=_COMMON)
@boundary
def rollback(
    c: Context, hosts: str | None = None, app_dir: str | None = None, app: str | None = None
) -> ExitCode:
    """Redeploy the release deployed before the current one, from the nodes' copies."""
    return actions.rollback(_options(hosts, app_dir, app))


@task(help={"app-dir": _COMMON["app-dir"], "app": _COMMON["app"], "limit": "How many."})
@boundary
def history(
    c: Context, limit: int = 20, app_dir: str | None = None, app: str | None = None
) -> ExitCode:
    """Show the deploys and rollbacks recorded in the app directory."""
    return actions.history(_options(None, app_dir, app), limit=limit)


def namespace() -> Collection:
    """A fresh collection of the tasks, for ``deploy``, ``inv`` and ``fab``."""
    return Collection(status, deploy, rollback, history)

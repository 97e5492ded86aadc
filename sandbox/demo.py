"""``inv demo``: a real deploy on the local cluster, start to finish."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from invoke import Context, task

from fabfile.app.appdir import AppDir
from fabfile.cli.boundary import boundary
from fabfile.commands import deploy, history, report, rollback, status
from fabfile.commands.options import Options
from fabfile.view.console import rich_of

from . import tasks as sandbox_tasks


@task
@boundary
def demo(c: Context) -> None:
    """Bring up 3 nodes, show status, deploy the newest WAR, show status, roll back,
    show the history and where the rollback's time went."""
    sandbox_tasks.up(c)
    options = Options(AppDir(sandbox_tasks.DEFAULT_APP_DIR))
    picture = str(Path(sandbox_tasks.DEFAULT_APP_DIR) / "timeline.html")
    steps: tuple[tuple[str, Callable[[], object]], ...] = (
        ("$ deploy", lambda: status.status(options)),
        ("$ deploy --latest", lambda: deploy.deploy(options, None, latest=True)),
        ("$ deploy", lambda: status.status(options)),
        ("$ inv rollback", lambda: rollback.rollback(options)),
        ("$ deploy", lambda: status.status(options)),
        ("$ inv history", lambda: history.history(options)),
        (f"$ deploy report --output {picture}", lambda: report.report(options, output=picture)),
    )
    for title, step in steps:
        rich_of(options.console).rule(title)  # rich's rule, piped too
        step()
    print("The sandbox keeps running; stop it with: inv sandbox.down")

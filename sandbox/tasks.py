"""``inv sandbox.up`` and ``inv sandbox.down``: the local real cluster."""

from __future__ import annotations

from pathlib import Path

from invoke import Context, task

from fabfile import actions
from fabfile.appdir import AppDir
from fabfile.tasks import boundary

from . import app, cluster, haproxy

REPO = Path(__file__).resolve().parent.parent
DEFAULT_APP_DIR = REPO / "apps" / app.APP


@task(
    help={
        "nodes": "How many nodes (default 3).",
        "first": "The first node's loopback address (default 127.0.0.2).",
        "app-dir": "The app directory to write (default apps/search-web-frontend).",
        "root": "Where the sandbox keeps its files (default /tmp/wardeploy-sandbox).",
    }
)
@boundary
def up(
    c: Context,
    nodes: int = 3,
    first: str = "127.0.0.2",
    app_dir: str | None = None,
    root: str | None = None,
) -> None:
    """Start N nodes (sshd + Jetty) on loopback and deploy the sample app's 1.0.125."""
    started = cluster.up(Path(root) if root else cluster.DEFAULT_ROOT, nodes, first)
    socket = haproxy.up(started)
    target = Path(app_dir) if app_dir else DEFAULT_APP_DIR
    wars = app.write(started, target, balancer=str(socket))
    print(f"sandbox: {nodes} node(s) at {', '.join(started.addresses)} behind haproxy at")
    print(f"{haproxy.url(started)}; app directory {target}")
    options = actions.Options(AppDir(target.resolve()))
    initial = next(war for war in wars if app.INITIAL in war.name)
    actions.deploy(options, str(initial))


@task(help={"root": "Where the sandbox keeps its files (default /tmp/wardeploy-sandbox)."})
def down(c: Context, root: str | None = None) -> None:
    """Stop every Jetty and sshd the sandbox started (by their recorded PIDs)."""
    path = Path(root) if root else cluster.DEFAULT_ROOT
    found = cluster.Cluster.load(path)
    stopped = haproxy.down(found) if found else []
    stopped += cluster.down(path)
    print(f"sandbox: stopped {len(stopped)} process(es)")

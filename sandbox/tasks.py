"""``inv sandbox.up`` and ``inv sandbox.down``: the local real cluster."""

from __future__ import annotations

from pathlib import Path

from invoke import Context, Exit, task

from fabfile.app.appdir import AppDir
from fabfile.cli.boundary import boundary
from fabfile.commands.deploy import deploy
from fabfile.commands.options import Options

from . import app, cluster, haproxy, prod, prod_app, tomcat, tomcat_app

REPO = Path(__file__).resolve().parent.parent
DEFAULT_APP_DIR = REPO / "apps" / app.APP
KINDS = ("jetty", "tomcat", "tomcat-bg", "tomcat-parallel", "prod")
OPERATOR_VENV = "/opt/wardeploy"  # where the prod sandbox says to install a shared deploy


@task(
    help={
        "nodes": "How many nodes (default 3).",
        "first": "The first node's loopback address (default 127.0.0.2).",
        "app-dir": "The app directory to write (default apps/search-web-frontend).",
        "root": "Where the sandbox keeps its files (default /tmp/wardeploy-sandbox).",
        "kind": "jetty (default); tomcat: one Tomcat 10 per node; tomcat-bg: blue and green "
        "Tomcat 10 instances per node, sessions replicated; tomcat-parallel: one Tomcat 10 "
        "per node, versions side by side (app directory under the root); prod: Jetty nodes "
        "reached only through a bastion (at the nodes' .254), as wd-deploy with sudo, deploy "
        "run as wd-operator (see README, 'A production-shaped sandbox').",
    }
)
@boundary
def up(
    c: Context,
    nodes: int = 3,
    first: str = "127.0.0.2",
    app_dir: str | None = None,
    root: str | None = None,
    kind: str = "jetty",
) -> None:
    """Start N nodes (sshd + Jetty, or Tomcat: --kind) on loopback and deploy the sample
    app's 1.0.125."""
    if kind == "prod":
        _up_prod(nodes, first, app_dir, Path(root) if root else cluster.DEFAULT_ROOT)
        return
    if kind != "jetty":
        _up_tomcat(nodes, first, app_dir, Path(root) if root else cluster.DEFAULT_ROOT, kind)
        return
    started = cluster.up(Path(root) if root else cluster.DEFAULT_ROOT, nodes, first)
    socket = haproxy.up(started)
    target = Path(app_dir) if app_dir else DEFAULT_APP_DIR
    wars = app.write(started, target, balancer=str(socket))
    print(f"sandbox: {nodes} node(s) at {', '.join(started.addresses)} behind haproxy at")
    print(f"{haproxy.url(started)}; app directory {target}")
    options = Options(AppDir(target.resolve()))
    initial = next(war for war in wars if app.INITIAL in war.name)
    deploy(options, str(initial))


def _up_tomcat(nodes: int, first: str, app_dir: str | None, root: Path, kind: str) -> None:
    """Tomcat hosts instead of Jetty ones. ``tomcat``: the deploy tool brings 1.0.125 to
    each host's one instance. ``tomcat-bg``: blue and green start on 1.0.125 directly,
    haproxy sends traffic to blue; the app directory is a blue-green one.
    ``tomcat-parallel``: the deploy tool has each host's manager deploy 1.0.125 as a
    version; users stick to a host by cookie."""
    if kind not in KINDS:
        raise Exit(f"error: --kind must be one of {', '.join(KINDS)}, not {kind!r}", code=2)
    _refuse_running(root)
    started = cluster.up(root, nodes, first)
    blue_green, parallel = kind == "tomcat-bg", kind == "tomcat-parallel"
    layout = tomcat.Tomcats(
        started, tomcat.BLUE_GREEN if blue_green else tomcat.SINGLE, replicate=blue_green
    )
    socket = haproxy.up(started, haproxy.tomcat_config_text(layout, sticky=parallel))
    target = Path(app_dir) if app_dir else root / "apps" / app.APP
    strategy = "blue-green" if blue_green else "parallel" if parallel else "rolling"
    wars = tomcat_app.write(layout, target, balancer=str(socket), strategy=strategy)
    initial = next(war for war in wars if app.INITIAL in war.name)
    print(f"sandbox: {nodes} Tomcat host(s) ({', '.join(layout.instances)}) at")
    print(f"{', '.join(started.addresses)} behind haproxy at {haproxy.url(started)};")
    print(f"app directory {target}")
    if blue_green:
        properties = target / "config.properties"
        tomcat.up(started, layout.instances, True, war=initial, properties=properties)
    else:
        tomcat.up(started, layout.instances, False)
        if parallel:
            tomcat.start_empty(layout)
        deploy(Options(AppDir(target.resolve())), str(initial))


def _up_prod(nodes: int, first: str, app_dir: str | None, root: Path) -> None:
    """Jetty nodes behind a bastion (`sandbox.prod`); 1.0.125 deployed through it."""
    _refuse_running(root)
    box = prod.up(root, nodes, first)
    prod.haproxy_up(box)
    target = Path(app_dir) if app_dir else root / "apps" / app.APP
    wars = prod_app.write_jetty(box, target)
    print(f"sandbox: {nodes} node(s) ({', '.join(box.aliases)}) at")
    print(f"{', '.join(box.cluster.addresses)}, reached only through the bastion at {box.bastion};")
    print(
        f"haproxy at {haproxy.url(box.cluster)}; app directory {target}; deploy as {prod.OPERATOR}:"
    )
    deploy_bin = f"{OPERATOR_VENV}/bin/deploy"
    print(f"  cd {target} && sudo -u {prod.OPERATOR} env HOME={box.operator_home} {deploy_bin}")
    print(f"with a deploy {prod.OPERATOR} can run, installed once as root in this clone:")
    print(f"  /usr/bin/python3 -m venv {OPERATOR_VENV} && {OPERATOR_VENV}/bin/pip install .")
    initial = next(war for war in wars if app.INITIAL in war.name)
    try:
        deploy(Options(AppDir(target.resolve())), str(initial))
    finally:
        prod_app.hand_over(target)  # the first run's history is wd-operator's too


def _refuse_running(root: Path) -> None:
    """One sandbox per root: Tomcat's and Jetty's JVMs would want the same ports."""
    jetty = [p for p in root.glob("nodes/*/run/jetty.pid") if cluster.alive(cluster.read_pid(p))]
    if jetty or tomcat.running_jvms(root):
        raise Exit(f"error: a sandbox runs at {root}; stop it first: inv sandbox.down", code=2)


@task(help={"root": "Where the sandbox keeps its files (default /tmp/wardeploy-sandbox)."})
def down(c: Context, root: str | None = None) -> None:
    """Stop every Jetty, Tomcat and sshd the sandbox started (by their recorded PIDs)."""
    path = Path(root) if root else cluster.DEFAULT_ROOT
    found = cluster.Cluster.load(path)
    tomcat_hosts = (path / tomcat.STATE).exists()
    stopped = prod.down(path)  # the bastion, the firewall rules, the sudoers file
    stopped += haproxy.down(found) if found else []
    stopped += tomcat.down(path)
    if found is None or not tomcat_hosts or any(path.glob("nodes/*/run/jetty.pid")):
        stopped += cluster.down(path)
    else:  # Tomcat hosts only: spare cluster.down its 2.5 s per node of watching for a Jetty
        stopped += _stop_sshds(found)
    print(f"sandbox: stopped {len(stopped)} process(es)")


def _stop_sshds(nodes: cluster.Cluster) -> list[int]:
    """Stop every node's sshd (tini, the listener and its sessions); return tini's PIDs."""
    stopped = []
    for address in nodes.addresses:
        pid = cluster.read_pid(nodes.home(address) / "run" / "tini.pid")
        if cluster.alive(pid):
            assert pid is not None
            cluster.stop_sshd(nodes, address)
            stopped.append(pid)
    return stopped

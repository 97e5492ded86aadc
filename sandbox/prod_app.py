"""The app directory of a production-shaped sandbox (`sandbox.prod`), owned by ``wd-operator``.

The same files as the other sandboxes' (`sandbox.app`, `sandbox.tomcat_app`), with a
``.config`` that names the nodes by alias, reaches them through the bastion as
``wd-deploy`` and installs and restarts through ``sudo -n -u root``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from . import app, haproxy, prod, tomcat_app
from .prod import Prod
from .tomcat import Tomcats


def write_jetty(
    box: Prod,
    app_dir: Path,
    versions: tuple[str, ...] = app.VERSIONS,
    warmup: float = 1,
    ready_timeout: float = 30,
) -> list[Path]:
    """The Jetty nodes' app directory (rolling); return the WARs built."""
    socket = str(haproxy.socket_path(box.cluster))
    wars = app.write(box.cluster, app_dir, versions, 0, warmup, socket, ready_timeout)

    def per_host(address: str) -> dict[str, str]:
        return {"restart": f"{shlex.quote(str(box.script(address)))} restart"}

    _rewrite(box, app_dir, per_host)
    return wars


def write_tomcat(
    box: Prod,
    tomcats: Tomcats,
    app_dir: Path,
    versions: tuple[str, ...] = app.VERSIONS,
    strategy: str = "blue-green",
    warmup: float = 1,
    ready_timeout: float = 30,
) -> list[Path]:
    """The Tomcat hosts' app directory (``blue-green`` or ``parallel``); return the WARs."""
    socket = str(haproxy.socket_path(box.cluster))
    wars = tomcat_app.write(
        tomcats, app_dir, versions, 0, warmup, socket, ready_timeout, strategy=strategy
    )
    several = len(tomcats.instances) > 1

    def per_host(address: str) -> dict[str, str]:
        name = "{instance}" if several else tomcats.instances[0]
        return {
            "restart": f"{shlex.quote(str(box.script(address)))} {name} restart",
            # haproxy's servers are named by address (`sandbox.haproxy.tomcat_config_text`)
            "lb_server": f"{address}-{{instance}}" if several else address,
        }

    _rewrite(box, app_dir, per_host)
    return wars


def _rewrite(box: Prod, app_dir: Path, per_host: prod.PerHost) -> None:
    config = app_dir / ".config"
    config.write_text(prod.config_text(box, config.read_text(), per_host))
    hand_over(app_dir)


def hand_over(app_dir: Path) -> None:
    """The app directory is ``wd-operator``'s: deploy writes its history and lock there."""
    prod.chown(app_dir, prod.OPERATOR, recursive=True)

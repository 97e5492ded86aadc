"""A real haproxy (Debian's) in front of the sandbox's nodes.

Health checks are ``GET /status`` expecting 200 every second (``fall 2``);
the runtime API listens on a Unix socket at admin level, which is what the
deploy tool drains and re-enables nodes through.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .cluster import Cluster, alive, read_pid, stop_pid_file

if TYPE_CHECKING:
    from .tomcat import Tomcats

PORT = 8000

_CONFIG = """global
    stats socket {socket} mode 600 level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend web
    bind {address}:{port}
    default_backend web

backend web
    balance roundrobin
    option httpchk GET /status
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
{servers}
"""


def socket_path(cluster: Cluster) -> Path:
    return cluster.root / "haproxy.sock"


def frontend(cluster: Cluster) -> str:
    """The address haproxy listens on: the node range's .1 address."""
    first = cluster.addresses[0].rsplit(".", 1)[0]
    return f"{first}.1"


def url(cluster: Cluster, path: str = "/") -> str:
    return f"http://{frontend(cluster)}:{PORT}{path}"


def config_text(cluster: Cluster) -> str:
    servers = "\n".join(
        f"    server node{i} {address}:{cluster.http_port} check"
        for i, address in enumerate(cluster.addresses, start=1)
    )
    return _CONFIG.format(
        socket=socket_path(cluster),
        address=frontend(cluster),
        port=PORT,
        servers=servers,
    )


def tomcat_config_text(tomcats: Tomcats, port: int = PORT) -> str:
    """haproxy in front of Tomcat instances: one server per instance, named as the deploy
    tool's ``lb_server`` defaults (the host; ``host-instance`` with several per host).

    Of a host's instances only the first takes traffic (blue); the others start in
    maintenance (green, idle), as a blue/green switch expects to find them."""
    servers = "\n".join(
        f"    server {tomcats.server_name(address, name)} {address}:{tomcats.http_port(name)} "
        f"check{'' if name == tomcats.instances[0] else ' disabled'}"
        for address, name in tomcats.all()
    )
    return _CONFIG.format(
        socket=socket_path(tomcats.cluster),
        address=frontend(tomcats.cluster),
        port=port,
        servers=servers,
    )


def up(cluster: Cluster, text: str | None = None) -> Path:
    """Start haproxy (unless it runs) and wait for its socket; return the socket path.

    ``text`` replaces the Jetty nodes' configuration (see `tomcat_config_text`)."""
    pid_file = cluster.root / "haproxy.pid"
    if alive(read_pid(pid_file)):
        return socket_path(cluster)
    config = cluster.root / "haproxy.cfg"
    config.write_text(config_text(cluster) if text is None else text)
    log = (cluster.root / "haproxy.log").open("ab")
    process = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + 10
    while not socket_path(cluster).exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"haproxy did not start; see {cluster.root / 'haproxy.log'}")
        time.sleep(0.05)
    return socket_path(cluster)


def down(cluster: Cluster) -> list[int]:
    stopped = stop_pid_file(cluster.root / "haproxy.pid", settle=0)
    socket_path(cluster).unlink(missing_ok=True)
    return stopped

"""A real haproxy (Debian's) in front of the sandbox's nodes.

Health checks are ``GET /status`` expecting 200 every second (``fall 2``);
the runtime API listens on a Unix socket at admin level, which is what the
deploy tool drains and re-enables nodes through. haproxy runs in master-worker
mode, so `reload` is a real reload (SIGUSR2: a new worker reads the
configuration); it starts from the server states the deploy tool last wrote
to ``haproxy.state`` (``lb_state_file``), as a production reload would. The socket
is root's (mode 600) unless ``socket_user`` names the user who drains nodes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .cluster import Cluster, alive, read_pid, stop_pid_file

if TYPE_CHECKING:
    from .tomcat import Tomcats

PORT = 8000

_CONFIG = """global
    stats socket {socket}{owner} mode 600 level admin
    server-state-file {state}
    maxconn 4096

defaults
    mode http
    load-server-state-from-file global
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
    default-server inter 1s fall 2 rise 1 weight 100
{servers}
"""


def socket_path(cluster: Cluster) -> Path:
    return cluster.root / "haproxy.sock"


def master_socket_path(cluster: Cluster) -> Path:
    """The master process's CLI (``-S``): it answers once a reload is over."""
    return cluster.root / "haproxy-master.sock"


def state_path(cluster: Cluster) -> Path:
    """Where haproxy reads server states at a reload: the deploy tool's ``lb_state_file``."""
    return cluster.root / "haproxy.state"


def frontend(cluster: Cluster) -> str:
    """The address haproxy listens on: the node range's .1 address."""
    first = cluster.addresses[0].rsplit(".", 1)[0]
    return f"{first}.1"


def url(cluster: Cluster, path: str = "/") -> str:
    return f"http://{frontend(cluster)}:{PORT}{path}"


def config_text(cluster: Cluster, socket_user: str = "") -> str:
    """haproxy in front of the Jetty nodes; ``socket_user`` owns the runtime API socket."""
    servers = "\n".join(
        f"    server node{i} {address}:{cluster.http_port} check"
        for i, address in enumerate(cluster.addresses, start=1)
    )
    return _format(cluster, PORT, servers, socket_user)


def _format(cluster: Cluster, port: int, servers: str, socket_user: str) -> str:
    return _CONFIG.format(
        socket=socket_path(cluster),
        owner=f" user {socket_user}" if socket_user else "",
        state=state_path(cluster),
        address=frontend(cluster),
        port=port,
        servers=servers,
    )


def tomcat_config_text(
    tomcats: Tomcats, port: int = PORT, sticky: bool = False, socket_user: str = ""
) -> str:
    """haproxy in front of Tomcat instances: one server per instance, named as the deploy
    tool's ``lb_server`` defaults (the host; ``host-instance`` with several per host).

    Of a host's instances only the first takes traffic (blue); the others start in
    maintenance (green, idle), as a blue/green switch expects to find them. A user
    sticks to a host (sessions are replicated between the colours of a host, not
    across hosts): a cookie names the host, and both colours carry its value, so
    haproxy sends the user to whichever colour of that host is live. ``sticky`` keeps
    users on their host with one instance too (parallel deployment: a user's session,
    and so the version they use, lives on one host). ``socket_user`` owns the runtime
    API socket (root when empty)."""
    sticky = sticky or len(tomcats.instances) > 1
    servers = "\n".join(
        f"    server {tomcats.server_name(address, name)} {address}:{tomcats.http_port(name)} "
        f"check{'' if name == tomcats.instances[0] else ' disabled'}"
        + (f" cookie {address}" if sticky else "")
        for address, name in tomcats.all()
    )
    if sticky:
        servers = "    cookie HOST insert indirect nocache\n" + servers
    return _format(tomcats.cluster, port, servers, socket_user)


def up(cluster: Cluster, text: str | None = None) -> Path:
    """Start haproxy (unless it runs) and wait for its socket; return the socket path.

    ``text`` replaces the Jetty nodes' configuration (see `tomcat_config_text`)."""
    pid_file = cluster.root / "haproxy.pid"
    if alive(read_pid(pid_file)):
        return socket_path(cluster)
    config = cluster.root / "haproxy.cfg"
    config.write_text(config_text(cluster) if text is None else text)
    state_path(cluster).unlink(missing_ok=True)  # a new haproxy starts from its config
    log = (cluster.root / "haproxy.log").open("ab")
    process = subprocess.Popen(
        ["haproxy", "-W", "-db", "-S", str(master_socket_path(cluster)), "-f", str(config)],
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


def worker_pid(cluster: Cluster) -> int:
    """The PID of the worker that answers the runtime API now."""
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(socket_path(cluster)))
        client.sendall(b"show info\n")
        text = b"".join(iter(lambda: client.recv(65536), b"")).decode()
    return int(next(ln.split()[1] for ln in text.splitlines() if ln.startswith("Pid:")))


def reload(cluster: Cluster, timeout: float = 10) -> int:
    """Reload haproxy as an operator would (SIGUSR2 to the master); return once the new
    worker answers the runtime API, with its PID.

    The master re-executes itself on a reload and handles no signal until it is done: a
    second SIGUSR2 sent meanwhile is lost (seen here: 1 in about 12 back-to-back
    reloads). So a reload starts and ends with the master's CLI answering."""
    master = read_pid(cluster.root / "haproxy.pid")
    if not alive(master):
        raise RuntimeError("haproxy is not running")
    assert master is not None
    deadline = time.monotonic() + timeout
    _wait_master(cluster, deadline)
    old = worker_pid(cluster)
    os.kill(master, signal.SIGUSR2)
    while time.monotonic() < deadline:
        try:
            new = worker_pid(cluster)
        except (OSError, StopIteration, ValueError):
            new = old  # the socket is being rebound
        if new != old:
            _wait_master(cluster, deadline)
            return new
        time.sleep(0.05)
    raise RuntimeError(f"haproxy did not reload within {timeout} s")


def _wait_master(cluster: Cluster, deadline: float) -> None:
    """Wait until the master process's CLI answers: no reload is under way."""
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(1)
                client.connect(str(master_socket_path(cluster)))
                client.sendall(b"show proc;quit\n")
                text = b"".join(iter(lambda: client.recv(65536), b"")).decode()
            if "master" in text:
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError("haproxy's master process does not answer its CLI")
        time.sleep(0.05)


def down(cluster: Cluster) -> list[int]:
    stopped = stop_pid_file(cluster.root / "haproxy.pid", settle=0)
    socket_path(cluster).unlink(missing_ok=True)
    master_socket_path(cluster).unlink(missing_ok=True)
    return stopped

"""A real haproxy (Debian's) in front of the sandbox's nodes.

Health checks are ``GET /status`` expecting 200 every second (``fall 2``);
the runtime API listens on a Unix socket at admin level, which is what the
deploy tool drains and re-enables nodes through. haproxy runs in master-worker
mode, so `reload` is a real reload (SIGUSR2: a new worker reads the
configuration); it starts from the server states the deploy tool last wrote
to ``haproxy.state`` (``lb_state_file``), as a production reload would. The socket
is root's (mode 600) unless ``socket_user`` names the user who drains nodes.

By default haproxy lives in the cluster's root and listens on the node range's .1
address; a `Site` puts one elsewhere (a load-balancer host of its own, with its socket
in haproxy's group: `sandbox.balancers`).
"""

from __future__ import annotations

import dataclasses
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
    stats socket {socket}{owner} level admin
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


@dataclasses.dataclass(frozen=True)
class Site:
    """Where one haproxy lives when not in a cluster's root: its directory (socket,
    master CLI, state file, PID, log) and the address its frontend binds."""

    root: Path
    address: str
    socket_group: str = ""  # the runtime API socket's group (mode 660); root's alone if ""


Where = Cluster | Site  # what every function below needs: a ``root`` (and an address)


def socket_path(where: Where) -> Path:
    return where.root / "haproxy.sock"


def master_socket_path(where: Where) -> Path:
    """The master process's CLI (``-S``): it answers once a reload is over."""
    return where.root / "haproxy-master.sock"


def state_path(where: Where) -> Path:
    """Where haproxy reads server states at a reload: the deploy tool's ``lb_state_file``."""
    return where.root / "haproxy.state"


def frontend(where: Where) -> str:
    """The address haproxy listens on: a site's own, or the node range's .1 address."""
    if isinstance(where, Site):
        return where.address
    first = where.addresses[0].rsplit(".", 1)[0]
    return f"{first}.1"


def url(where: Where, path: str = "/") -> str:
    return f"http://{frontend(where)}:{PORT}{path}"


def config_text(cluster: Cluster, socket_user: str = "", site: Site | None = None) -> str:
    """haproxy in front of the Jetty nodes; ``socket_user`` owns the runtime API socket;
    ``site`` places haproxy elsewhere than the cluster's root and .1 address."""
    servers = "\n".join(
        f"    server node{i} {address}:{cluster.http_port} check"
        for i, address in enumerate(cluster.addresses, start=1)
    )
    return _format(site or cluster, PORT, servers, socket_user)


def _format(where: Where, port: int, servers: str, socket_user: str) -> str:
    if isinstance(where, Site) and where.socket_group:
        owner = f" group {where.socket_group} mode 660"
    else:
        owner = (f" user {socket_user}" if socket_user else "") + " mode 600"
    return _CONFIG.format(
        socket=socket_path(where),
        owner=owner,
        state=state_path(where),
        address=frontend(where),
        port=port,
        servers=servers,
    )


def tomcat_config_text(
    tomcats: Tomcats,
    port: int = PORT,
    sticky: bool = False,
    socket_user: str = "",
    site: Site | None = None,
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
    API socket (root when empty); ``site`` places haproxy (see `config_text`)."""
    sticky = sticky or len(tomcats.instances) > 1
    servers = "\n".join(
        f"    server {tomcats.server_name(address, name)} {address}:{tomcats.http_port(name)} "
        f"check{'' if name == tomcats.instances[0] else ' disabled'}"
        + (f" cookie {address}" if sticky else "")
        for address, name in tomcats.all()
    )
    if sticky:
        servers = "    cookie HOST insert indirect nocache\n" + servers
    return _format(site or tomcats.cluster, port, servers, socket_user)


def up(where: Where, text: str | None = None) -> Path:
    """Start haproxy (unless it runs) and wait for its socket; return the socket path.

    ``text`` replaces the Jetty nodes' configuration (see `tomcat_config_text`); a
    `Site` has no nodes of its own, so it needs one."""
    pid_file = where.root / "haproxy.pid"
    if alive(read_pid(pid_file)):
        return socket_path(where)
    config = where.root / "haproxy.cfg"
    if text is None:
        assert isinstance(where, Cluster), "a Site's haproxy needs its configuration text"
        text = config_text(where)
    config.write_text(text)
    state_path(where).unlink(missing_ok=True)  # a new haproxy starts from its config
    log = (where.root / "haproxy.log").open("ab")
    process = subprocess.Popen(
        ["haproxy", "-W", "-db", "-S", str(master_socket_path(where)), "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + 10
    while not socket_path(where).exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"haproxy did not start; see {where.root / 'haproxy.log'}")
        time.sleep(0.05)
    return socket_path(where)


def command(where: Where, line: str) -> str:
    """One runtime API command through the local socket (one per connection); its answer."""
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(5)
        client.connect(str(socket_path(where)))
        client.sendall(f"{line}\n".encode())
        return b"".join(iter(lambda: client.recv(65536), b"")).decode()


def worker_pid(where: Where) -> int:
    """The PID of the worker that answers the runtime API now."""
    text = command(where, "show info")
    return int(next(ln.split()[1] for ln in text.splitlines() if ln.startswith("Pid:")))


def reload(where: Where, timeout: float = 10) -> int:
    """Reload haproxy as an operator would (SIGUSR2 to the master); return once the new
    worker answers the runtime API, with its PID.

    The master re-executes itself on a reload and handles no signal until it is done: a
    second SIGUSR2 sent meanwhile is lost (seen here: 1 in about 12 back-to-back
    reloads). So a reload starts and ends with the master's CLI answering."""
    master = read_pid(where.root / "haproxy.pid")
    if not alive(master):
        raise RuntimeError("haproxy is not running")
    assert master is not None
    deadline = time.monotonic() + timeout
    _wait_master(where, deadline)
    old = worker_pid(where)
    os.kill(master, signal.SIGUSR2)
    while time.monotonic() < deadline:
        try:
            new = worker_pid(where)
        except (OSError, StopIteration, ValueError):
            new = old  # the socket is being rebound
        if new != old:
            _wait_master(where, deadline)
            return new
        time.sleep(0.05)
    raise RuntimeError(f"haproxy did not reload within {timeout} s")


def _wait_master(where: Where, deadline: float) -> None:
    """Wait until the master process's CLI answers: no reload is under way."""
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(1)
                client.connect(str(master_socket_path(where)))
                client.sendall(b"show proc;quit\n")
                text = b"".join(iter(lambda: client.recv(65536), b"")).decode()
            if "master" in text:
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError("haproxy's master process does not answer its CLI")
        time.sleep(0.05)


def down(where: Where) -> list[int]:
    stopped = stop_pid_file(where.root / "haproxy.pid", settle=0)
    socket_path(where).unlink(missing_ok=True)
    master_socket_path(where).unlink(missing_ok=True)
    return stopped

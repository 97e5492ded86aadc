"""Light nodes: a sandbox of up to 250 nodes on loopback, for measuring the tool at scale.

A light node is a real sshd, as in `sandbox.cluster` (under ``tini -s``, its own
address, its own ``HOME``), but no Jetty: ``~/bin/light`` runs a small stdlib HTTP
server (`sandbox.light_server`, ~10 MiB instead of Jetty's ~105) that answers
``/status`` with the installed WAR's version after a start delay, as a JVM would.
So 100 nodes fit on a 2-core machine and a rolling deploy exercises everything real
(ssh, staging, the restart command, /status polls, haproxy drain and weights) with
the JVM's start time replaced by a delay we choose.

The deploy tool starts each server with its first deploy (the restart command).
Only processes started here are ended, by the PIDs recorded here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from pathlib import Path

from . import app, cluster
from .cluster import Cluster, alive, read_pid, terminate_all
from .sample import build_war

DEFAULT_ROOT = Path(os.environ.get("WARDEPLOY_SCALE", "/tmp/wardeploy-scale"))
MAX_NODES = 250  # a bound on what one `up` may start (each node: tini, sshd, a server)
SERVER = Path(__file__).with_name("light_server.py")
PYTHON = "/usr/bin/python3"  # the system's, not a virtualenv's: nodes have nothing else

# The tool delivers a .jettyrc to every node; a light node has no JVM to read it.
JETTYRC = "# Delivered to every light node (sandbox.scale); no JVM reads it there.\n"

_NODE_LIGHT = r"""#!/bin/sh
# This node's light server (sandbox.scale), on {address}:{port}.
#   ~/bin/light restart  stop the server ~/run/light.pid names (that PID only) and start a
#                        new one; returns at once: the work goes on detached (setsid, every
#                        fd redirected), so `ssh node ~/bin/light restart` ends now
#   ~/bin/light start    the same, unless it runs already
#   ~/bin/light stop     stop it; returns once it is gone
# Restarts take turns (flock), so two never start two servers.
set -u
pid_file=$HOME/run/light.pid
server=$HOME/bin/light-server.py
log=$HOME/light.log

running() {{  # the PID file names a live process running this node's server script
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1;; esac
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
  case $state in Z*|X*|'') return 1;; esac
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$server"
}}

stop() {{
  running || {{ rm -f "$pid_file"; return 0; }}
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 250); do running || break; sleep 0.02; done  # a restart waits on this
  if running; then kill -KILL "$pid"; sleep 0.2; fi
  rm -f "$pid_file"
}}

take_turn() {{ exec 9>>"$HOME/run/light.lock"; flock 9; }}

case ${{1:-}} in
  _run)  # the detached part: the PID file names this process, which becomes the server
    take_turn
    stop
    echo $$ >"$pid_file"
    exec 9>&-
    exec {python} -S -u "$server" {address} {port} "$HOME/etc/light.delay" \
      "$HOME/jetty-base/webapps/root.war" ;;
  restart|start)
    if [ "$1" = start ] && running; then exit 0; fi
    echo "$(date +%T.%N) ~/bin/light $1" >>"$log"
    setsid "$(readlink -f "$0")" _run </dev/null >>"$log" 2>&1 &
    ;;
  stop) take_turn; stop ;;
  *) echo "usage: light restart|start|stop" >&2; exit 2 ;;
esac
"""


def up(
    root: Path = DEFAULT_ROOT, nodes: int = 100, first: str = "127.0.12.2", start_delay: float = 1
) -> Cluster:
    """Start sshd on ``nodes`` light nodes (their servers start with the first deploy)."""
    if not 1 <= nodes <= MAX_NODES:
        raise ValueError(f"a light sandbox has 1 to {MAX_NODES} nodes, not {nodes}")
    if start_delay < 0:
        raise ValueError(f"the start delay is a number of seconds >= 0, not {start_delay}")

    def prepare(nodes: Cluster, address: str) -> str:
        return _prepare(nodes, address, start_delay)

    return cluster.up(root, nodes, first, prepare=prepare)


def _prepare(nodes: Cluster, address: str, start_delay: float) -> str:
    """Write sshd's files, ``~/bin/light``, the server and its delay; the known_hosts line."""
    line = cluster.prepare_ssh(nodes, address)
    home = nodes.home(address)
    for sub in ("jetty-base/webapps", "jetty-base/resources"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    script = home / "bin" / "light"
    script.write_text(
        _NODE_LIGHT.format(
            address=shlex.quote(address), port=nodes.http_port, python=shlex.quote(PYTHON)
        )
    )
    script.chmod(0o755)
    shutil.copy(SERVER, home / "bin" / "light-server.py")
    (home / "etc" / "light.delay").write_text(f"{start_delay:g}\n")
    return line


def server_pid(nodes: Cluster, address: str) -> int | None:
    """The PID of the node's running light server (None when none runs): the PID file's,
    checked to run this node's server script (a stale file may name a reused PID)."""
    home = nodes.home(address)
    pid = read_pid(home / "run" / "light.pid")
    if not alive(pid):
        return None
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if str(home / "bin" / "light-server.py").encode() in words else None


def server_pids(nodes: Cluster) -> dict[str, int]:
    """Every node's running light server, by address."""
    found = {address: server_pid(nodes, address) for address in nodes.addresses}
    return {address: pid for address, pid in found.items() if pid is not None}


def down(root: Path = DEFAULT_ROOT) -> list[int]:
    """Stop every sshd (with its tini) and light server of the sandbox, by PID; the PIDs.

    All at once, sshd first (no new restart can begin). A restart in flight starts a new
    server within a moment of the old one's end, so the PID files are read until quiet
    for a second."""
    nodes = Cluster.load(root)
    if nodes is None:
        return []
    tinis = [read_pid(nodes.home(a) / "run" / "tini.pid") for a in nodes.addresses]
    stopped = [pid for pid in tinis if pid is not None and alive(pid)]
    terminate_all(stopped)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1:
        found = [pid for pid in server_pids(nodes).values() if pid not in stopped]
        if found:
            terminate_all(found)
            stopped += found
            quiet_since = time.monotonic()
        time.sleep(0.1)
    for address in nodes.addresses:
        for name in ("tini.pid", "light.pid"):
            (nodes.home(address) / "run" / name).unlink(missing_ok=True)
    return stopped


# `sandbox.app`'s keys, with the light server's restart command and PID file, and no
# logback.xml (no JVM reads one).
LIGHT = app.Runtime(
    "# A light sandbox (sandbox.scale): every node is a real sshd and a light HTTP\n"
    "# server on its own loopback address. See README, '.config'.",
    restart="~/bin/light restart",
    pid_file="~/run/light.pid",
    logback_path="",
)


def write(
    nodes: Cluster,
    app_dir: Path,
    versions: tuple[str, ...] = app.VERSIONS,
    warmup: float = 1,
    balancer: str = "",
    ready_timeout: float = 30,
) -> list[Path]:
    """Write the app directory (.config, config.properties, .jettyrc) and build the WARs;
    the WARs."""
    app_dir.mkdir(parents=True, exist_ok=True)
    text = app.config_text(nodes, warmup, balancer, ready_timeout, LIGHT)
    (app_dir / ".config").write_text(text)
    (app_dir / "config.properties").write_text(app.PROPERTIES)
    (app_dir / ".jettyrc").write_text(JETTYRC)
    return [build_war(v, app_dir, artifact_id=app.APP) for v in versions]

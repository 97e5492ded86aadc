"""A real cluster on loopback: per node an OpenSSH sshd and a Jetty 9 base.

Node *i* listens on its own address (127.0.0.2, 127.0.0.3, ...) with sshd on
port 22 and Jetty on the HTTP port, so the deploy tool sees distinct hosts
with the real ports. Each sshd runs under ``tini -s`` (a subreaper: a Jetty
that exits is reaped at once, not 2 s later by this sandbox's PID 1) and sets
``HOME`` to the node's own directory, so ``~/.jettyrc``, ``~/releases`` and
``~/jetty-base`` differ per node while the ``.config`` stays the same for all,
as on real hosts. Jetty is started by the deploy tool's restart command over
the node's own ssh.

Only processes started here are ended, by the PIDs recorded here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_ROOT = Path(os.environ.get("WARDEPLOY_SANDBOX", "/tmp/wardeploy-sandbox"))
JETTY_HOME = Path("/usr/share/jetty9")
STATE = "cluster.json"

_NODE_JETTY = """#!/bin/sh
# This node's Jetty: its own base, run directory and log; detached from the
# ssh session (setsid, every fd redirected) so `ssh node ~/bin/jetty restart`
# returns at once while jetty.sh stops the old JVM and starts the new one.
export JETTY_HOME={home} JETTY_BASE="$HOME/jetty-base" JETTY_RUN="$HOME/run"
mkdir -p "$JETTY_RUN"
echo "$(date +%T.%N) ~/bin/jetty $*" >>"$HOME/jetty-base/logs/jetty-sh.log"
setsid {home}/bin/jetty.sh "$@" </dev/null >>"$HOME/jetty-base/logs/jetty-sh.log" 2>&1 &
"""

_NODE_JETTY_WAIT = """#!/bin/sh
# This node's Jetty, controlled in the foreground: `restart` returns once the
# old JVM is gone and the new one is launched, like `service jetty restart`.
export JETTY_HOME={home} JETTY_BASE="$HOME/jetty-base" JETTY_RUN="$HOME/run"
mkdir -p "$JETTY_RUN"
{home}/bin/jetty.sh "$@" </dev/null >>"$HOME/jetty-base/logs/jetty-sh.log" 2>&1
"""

# console-capture: jetty.sh (start-stop-daemon -b) sends the JVM's stdout and stderr to
# /dev/null; captured, Jetty's log and the webapp's (logback's console appender) go to
# ~/jetty-base/logs/YYYY_MM_DD.jetty.log.
_START_INI = """--module=server,http,deploy,resources,stats,console-capture
jetty.http.host={address}
jetty.http.port={port}
# The restart is the deploy: no hot deploy of a half-copied WAR.
jetty.deploy.scanInterval=0
# Graceful stop: requests in flight finish before the JVM exits.
jetty.server.stopTimeout=5000
jetty.statistics.gracefulShutdownWaitsForRequests=true
"""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where a sandbox lives and which addresses its nodes have."""

    root: Path
    addresses: tuple[str, ...]
    http_port: int = 8080

    @property
    def key(self) -> Path:
        return self.root / "coordinator" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "coordinator" / "known_hosts"

    def home(self, address: str) -> Path:
        return self.root / "nodes" / address

    def url(self, address: str, path: str = "/status") -> str:
        return f"http://{address}:{self.http_port}{path}"

    def save(self) -> None:
        data = {"addresses": list(self.addresses), "http_port": self.http_port}
        (self.root / STATE).write_text(json.dumps(data))

    @classmethod
    def load(cls, root: Path) -> Cluster | None:
        try:
            data = json.loads((root / STATE).read_text())
        except (OSError, ValueError):
            return None
        return cls(root, tuple(data["addresses"]), int(data["http_port"]))


def addresses(count: int, first: str = "127.0.0.2") -> tuple[str, ...]:
    """``count`` consecutive loopback addresses; refuse anything off loopback."""
    start = ipaddress.IPv4Address(first)
    chosen = tuple(str(start + i) for i in range(count))
    if not all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("127.0.0.0/8") for a in chosen):
        raise ValueError("sandbox nodes live on 127.0.0.0/8 only")
    return chosen


def up(
    root: Path = DEFAULT_ROOT,
    nodes: int = 3,
    first: str = "127.0.0.2",
    port: int = 8080,
    prepare: Callable[[Cluster, str], str] | None = None,
) -> Cluster:
    """Start sshd on every node (Jetty starts with the first deploy).

    ``prepare`` writes a node's files and returns its known_hosts line; by default
    sshd's and a Jetty base (`sandbox.scale` gives light nodes instead)."""
    cluster = Cluster(root, addresses(nodes, first), port)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    _coordinator_key(cluster)
    lines = []
    for address in cluster.addresses:
        lines.append((prepare or _prepare_node)(cluster, address))
    cluster.known_hosts.write_text("".join(lines))
    cluster.save()
    for address in cluster.addresses:
        _start_sshd(cluster, address)
    for address in cluster.addresses:
        _wait_port(address, 22, timeout=10)
    return cluster


def _coordinator_key(cluster: Cluster) -> None:
    cluster.key.parent.mkdir(parents=True, exist_ok=True)
    if not cluster.key.exists():
        _keygen(cluster.key)


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _prepare_node(cluster: Cluster, address: str) -> str:
    """Write the node's sshd config, keys and Jetty base; return its known_hosts line."""
    line = prepare_ssh(cluster, address)
    home = cluster.home(address)
    for sub in ("jetty-base/webapps", "jetty-base/resources", "jetty-base/logs", "jetty-base/work"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for name, script in (("jetty", _NODE_JETTY), ("jetty-wait", _NODE_JETTY_WAIT)):
        path = home / "bin" / name
        path.write_text(script.format(home=JETTY_HOME))
        path.chmod(0o755)
    ini = _START_INI.format(address=address, port=cluster.http_port)
    (home / "jetty-base" / "start.ini").write_text(ini)
    return line


def prepare_ssh(cluster: Cluster, address: str) -> str:
    """Write what any node needs (sshd config, host key, the coordinator's key, ``etc``,
    ``bin``, ``run``); return its known_hosts line."""
    home = cluster.home(address)
    for sub in ("etc", "bin", "run"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    host_key = home / "etc" / "ssh_host_ed25519_key"
    if not host_key.exists():
        _keygen(host_key)
    shutil.copy(f"{cluster.key}.pub", home / "etc" / "authorized_keys")
    (home / "etc" / "sshd_config").write_text(_sshd_config(home, address))
    key_type, key_body = Path(f"{host_key}.pub").read_text().split()[:2]
    return f"{address} {key_type} {key_body}\n"


def _sshd_config(home: Path, address: str) -> str:
    etc = home / "etc"
    return "\n".join(
        [
            f"ListenAddress {address}:22",
            f"HostKey {etc}/ssh_host_ed25519_key",
            f"PidFile {home}/run/sshd.pid",
            f"AuthorizedKeysFile {etc}/authorized_keys",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "MaxStartups 100:30:200",
            "Subsystem sftp internal-sftp",
            f"SetEnv HOME={home}",
            "",
        ]
    )


def _start_sshd(cluster: Cluster, address: str) -> None:
    home = cluster.home(address)
    if alive(read_pid(home / "run" / "tini.pid")):
        return
    log = (home / "sshd.log").open("ab")
    process = subprocess.Popen(
        ["tini", "-s", "--", "/usr/sbin/sshd", "-D", "-e", "-f", str(home / "etc" / "sshd_config")],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    (home / "run" / "tini.pid").write_text(str(process.pid))


def _wait_port(address: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{address}:{port} did not open within {timeout} s")


def start_bastion(cluster: Cluster, address: str) -> str:
    """A jump host for ProxyJump: one more sshd (no Jetty is ever started there) that
    lets the coordinator's key in and forwards TCP; return its known_hosts line."""
    addresses(1, address)  # loopback only
    line = _prepare_node(cluster, address)
    _start_sshd(cluster, address)
    _wait_port(address, 22, timeout=10)
    return line


def stop_bastion(cluster: Cluster, address: str) -> list[int]:
    return stop_sshd(cluster, address)


def down(root: Path = DEFAULT_ROOT) -> list[int]:
    """Stop every Jetty and sshd this sandbox started, by PID; return the PIDs."""
    cluster = Cluster.load(root)
    if cluster is None:
        return []
    stopped = []
    for address in cluster.addresses:
        home = cluster.home(address)
        stopped += stop_sshd(cluster, address)
        # A restart in flight (jetty.sh waiting for the old JVM) starts a new
        # JVM and rewrites the PID file within a second of the old one's end.
        stopped += stop_pid_file(home / "run" / "jetty.pid", settle=2.5)
    return stopped


def stop_pid_file(pid_file: Path, settle: float) -> list[int]:
    """End the process a PID file names, and any it names within ``settle`` s after."""
    stopped: list[int] = []
    deadline = time.monotonic() + settle
    while True:
        pid = read_pid(pid_file)
        if alive(pid) and pid not in stopped:
            assert pid is not None
            _terminate(pid)
            stopped.append(pid)
            deadline = time.monotonic() + settle
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return stopped


def stop_sshd(cluster: Cluster, address: str) -> list[int]:
    """Take one node's sshd down, open sessions included (a fault for tests, and
    `down`); return the PIDs ended.

    Each connection's sshd is a child of the listener in a session of its own,
    so they are found through /proc and ended by PID; Jetty keeps running. A session
    whose client vanished behind a partition (its FIN or RST dropped) never ends by
    itself, and its title no longer names the sandbox: only this finds it.
    """
    pid_file = cluster.home(address) / "run" / "tini.pid"
    pid = read_pid(pid_file)
    names = ("sshd", "sshd-session")  # OpenSSH 9.8 renamed the per-connection process
    sessions = [p for p in _descendants(pid) if _name(p) in names] if pid else []
    stopped = []
    if alive(pid):
        assert pid is not None
        _terminate(pid)
        stopped.append(pid)
    for session in sessions:
        if alive(session):
            _terminate(session, timeout=5)
            stopped.append(session)
    pid_file.unlink(missing_ok=True)
    return stopped


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def start_sshd(cluster: Cluster, address: str) -> None:
    _start_sshd(cluster, address)
    _wait_port(address, 22, timeout=10)


def ssh(cluster: Cluster, address: str, command: str, timeout: float = 30) -> str:
    """Run ``command`` on a node over its own sshd, host key checked; return its stdout.

    Nothing of the caller's ssh setup is used (no config file, agent or keys)."""
    argv = [
        "ssh", "-F", "/dev/null", "-i", str(cluster.key), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={cluster.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
        f"root@{address}", command,
    ]  # fmt: skip
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"ssh {address} {command}: exit {done.returncode}: {done.stderr}")
    return done.stdout


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _terminate(pid: int, timeout: float = 15) -> None:
    """SIGTERM, wait, then SIGKILL: only ever a PID this sandbox recorded."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def terminate_all(pids: list[int], timeout: float = 15) -> None:
    """SIGTERM every one, wait for all, then SIGKILL what is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (0 when it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    found = [line.split()[1] for line in lines if line.startswith("VmRSS:")]
    return int(found[0]) if found else 0


def leftovers(root: Path) -> list[tuple[int, str]]:
    """Processes still running that a sandbox at ``root`` started (their command
    line or environment names the root, or their stderr is a log under it, as an
    sshd session's is once its title replaced its command line): after `down`,
    there must be none."""
    marker = f"{root}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        stderr = _link(entry / "fd" / "2").encode()
        named = marker in command or marker in environment or stderr.startswith(marker)
        if named and alive(int(entry.name)):
            found.append((int(entry.name), command.replace(b"\0", b" ").decode(errors="replace")))
    return found


def _link(path: Path) -> str:
    """Where a /proc fd link points; "" when the fd is closed or not ours to read."""
    try:
        return os.readlink(path)
    except OSError:
        return ""


def end_leftovers(root: Path) -> list[tuple[int, str]]:
    """End (by PID) what `leftovers` finds and return it, so one leak fails one run only."""
    found = leftovers(root)
    for pid, _ in found:
        _terminate(pid, timeout=5)
    return found


def jvms(cluster: Cluster, address: str) -> list[int]:
    """PIDs of the JVMs running this node's Jetty base (there should be one at most)."""
    base = f"-Djetty.base={cluster.home(address) / 'jetty-base'}".encode()
    # The program must be java: start-stop-daemon carries the same words after `--`.
    return [
        pid for pid, _ in _processes(lambda words, _: words[0].endswith(b"java") and base in words)
    ]


def jetty_stops(cluster: Cluster, address: str) -> list[int]:
    """PIDs of ``jetty.sh stop`` runs for this node (a restart runs one, then a start).

    Two at once are restarts that overlap: both read and remove the PID file,
    and both then start a JVM. Only the first process of each run counts, not
    the subshells bash forks for it (each read with its parent in one pass,
    so a subshell that ends meanwhile is not taken for a run of its own)."""
    base = f"JETTY_BASE={cluster.home(address) / 'jetty-base'}".encode()
    found = _processes(
        lambda words, env: (
            any(w.endswith(b"/jetty.sh") for w in words) and b"stop" in words and base in env
        )
    )
    pids = {pid for pid, _ in found}
    return [pid for pid, parent in found if parent not in pids]


def _processes(match: Callable[[list[bytes], list[bytes]], bool]) -> list[tuple[int, int]]:
    """(PID, parent PID) of the live processes whose command line and environment match."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            words = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat[0] not in ("Z", "X") and match(words, env):
            found.append((int(entry.name), int(stat[1])))
    return sorted(found)


def stop_jetty(cluster: Cluster, address: str) -> None:
    """Stop one node's Jetty (a fault for tests) by the PID jetty.sh recorded."""
    stop_pid_file(cluster.home(address) / "run" / "jetty.pid", settle=0)

"""Tomcat 10 hosts in the sandbox, beside (or instead of) the Jetty ones.

`up` turns the nodes of a running `sandbox.cluster` (sshd under ``tini -s`` on
its own loopback address) into Tomcat hosts: per host one or more instances
(``main``; or ``blue`` and ``green``), each its own ``CATALINA_BASE`` under
``~/tomcat/NAME`` with its own ports (HTTP 8080, 8081, ...; shutdown 8005, ...;
cluster 4000, ...), optionally replicating sessions between the instances of a
host. Every instance is started and restarted over its node's own ssh with
``~/bin/tomcat NAME restart``, so the JVM is a child of that node's subreaper,
as with Jetty. The manager app answers ``/manager/text`` to the user
``deploy``, whose password lives in a file only its owner reads.

Only processes started here are ended, by the PID files of the instances.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import secrets
import shlex
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .cluster import Cluster, alive, read_pid, ssh, terminate_all
from .tomcat_conf import MANAGER_USER, Base, Member, node_script, write_base

HTTP_PORT = 8080
SHUTDOWN_PORT = 8005
CLUSTER_PORT = 4000
STATE = "tomcat.json"
BLUE_GREEN = ("blue", "green")
SINGLE = ("main",)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PID_FILES = "nodes/*/run/tomcat-*.pid"


@dataclasses.dataclass(frozen=True)
class Tomcats:
    """The Tomcat instances every host of a sandbox cluster runs, and where they live."""

    cluster: Cluster
    instances: tuple[str, ...] = SINGLE
    replicate: bool = False

    def __post_init__(self) -> None:
        if not self.instances or not all(_NAME.match(n) for n in self.instances):
            raise ValueError(f"instance names are a-z, 0-9, - and _: {self.instances!r}")
        if len(set(self.instances)) != len(self.instances):
            raise ValueError(f"an instance is named twice: {self.instances!r}")
        if self.replicate and len(self.instances) < 2:
            raise ValueError("session replication needs two instances per host")

    def _offset(self, name: str) -> int:
        return self.instances.index(name)

    def http_port(self, name: str) -> int:
        return HTTP_PORT + self._offset(name)

    def base(self, address: str, name: str) -> Path:
        return self.cluster.home(address) / "tomcat" / name

    def pid_file(self, address: str, name: str) -> Path:
        return self.cluster.home(address) / "run" / f"tomcat-{name}.pid"

    def war(self, address: str, name: str) -> Path:
        """Where the instance's WAR goes: ``ROOT.war`` is served at ``/``."""
        return self.base(address, name) / "webapps" / "ROOT.war"

    def url(self, address: str, name: str, path: str = "/status") -> str:
        return f"http://{address}:{self.http_port(name)}{path}"

    def server_name(self, address: str, name: str) -> str:
        """The instance's haproxy server: what the deploy tool's ``lb_server`` defaults to
        (the host alone, or ``host-instance`` when a host runs several instances)."""
        return address if len(self.instances) == 1 else f"{address}-{name}"

    @property
    def password_file(self) -> Path:
        """The manager user's password, for the deploy tool and the tests (mode 600)."""
        return self.cluster.root / "coordinator" / "tomcat-manager.password"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def all(self) -> list[tuple[str, str]]:
        """Every (address, instance name), host by host."""
        return [(a, n) for a in self.cluster.addresses for n in self.instances]

    def save(self) -> None:
        data = {"instances": list(self.instances), "replicate": self.replicate}
        (self.cluster.root / STATE).write_text(json.dumps(data))

    @classmethod
    def load(cls, cluster: Cluster) -> Tomcats | None:
        try:
            data = json.loads((cluster.root / STATE).read_text())
        except (OSError, ValueError):
            return None
        return cls(cluster, tuple(data["instances"]), bool(data["replicate"]))


def up(
    cluster: Cluster,
    instances: tuple[str, ...] = BLUE_GREEN,
    replicate: bool = True,
    war: Path | None = None,
    properties: Path | None = None,
) -> Tomcats:
    """Make every node of ``cluster`` a Tomcat host; with ``war`` (and the app's
    ``properties``), deploy it to every instance and start them all, and return once each
    answers ``/status``.

    Instances start in turn per host (every host's first, then every host's second):
    two members of a cluster started at once each wait for the other's sessions."""
    tomcats = Tomcats(cluster, instances, replicate)
    password = _password(tomcats.password_file)
    for address in cluster.addresses:
        _prepare_host(tomcats, address, password)
    tomcats.save()
    if war is not None:
        for address, name in tomcats.all():
            install(tomcats, address, name, war, properties)
        for name in instances:
            start_all(tomcats, [(address, name) for address in cluster.addresses])
    return tomcats


def _password(path: Path) -> str:
    """The manager password: made once per sandbox, in a file only its owner reads."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _prepare_host(tomcats: Tomcats, address: str, password: str) -> None:
    home = tomcats.cluster.home(address)
    script = home / "bin" / "tomcat"
    script.write_text(node_script())
    script.chmod(0o755)
    for name in tomcats.instances:
        write_base(base_of(tomcats, address, name), password)


def base_of(tomcats: Tomcats, address: str, name: str) -> Base:
    offset = tomcats.instances.index(name)
    members: tuple[Member, ...] = ()
    if tomcats.replicate:
        members = tuple(Member(address, CLUSTER_PORT + i, i) for i in range(len(tomcats.instances)))
    return Base(
        tomcats.base(address, name),
        address,
        tomcats.http_port(name),
        SHUTDOWN_PORT + offset,
        CLUSTER_PORT + offset,
        members,
    )


def install(
    tomcats: Tomcats, address: str, name: str, war: Path, properties: Path | None = None
) -> None:
    """Put ``war`` where the instance deploys it from at its next start, and
    ``properties`` on its class path, as the deploy tool does (copy, then rename)."""
    targets = [(war, tomcats.war(address, name))]
    if properties is not None:
        targets.append((properties, tomcats.base(address, name) / "lib" / "config.properties"))
    for source, target in targets:
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)


def control(tomcats: Tomcats, address: str, name: str, action: str = "restart") -> None:
    """``~/bin/tomcat NAME ACTION`` on the node, as an operator or the deploy tool runs it."""
    command = f"~/bin/tomcat {shlex.quote(name)} {shlex.quote(action)}"
    ssh(tomcats.cluster, address, command)


def restart(
    tomcats: Tomcats, address: str, name: str, version: str = "", timeout: float = 60
) -> int:
    """Restart the instance over ssh and wait until its new JVM answers /status; return its PID.

    The command returns at once and the old JVM answers 200 until it stops, so the new one
    is known by its PID first: the PID file names it only once the old one is gone."""
    old = jvm(tomcats, address, name)
    control(tomcats, address, name, "restart")
    deadline = time.monotonic() + timeout
    while (new := jvm(tomcats, address, name)) in (None, old):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address}/{name}: no new JVM within {timeout} s (old: {old})")
        time.sleep(0.02)
    assert new is not None
    wait_ready(tomcats, address, name, version, max(0.1, deadline - time.monotonic()))
    return new


def start_all(tomcats: Tomcats, which: Iterable[tuple[str, str]], timeout: float = 60) -> None:
    """(Re)start these instances at once and wait until every one answers /status."""
    chosen = list(which)
    with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:
        list(pool.map(lambda pair: restart(tomcats, pair[0], pair[1], "", timeout), chosen))


def status(tomcats: Tomcats, address: str, name: str, timeout: float = 2) -> tuple[int, str]:
    """What the instance's /status answers: (HTTP status, body); (0, reason) when nothing."""
    try:
        with urllib.request.urlopen(tomcats.url(address, name), timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (OSError, ValueError) as error:
        return 0, str(error)


def wait_ready(
    tomcats: Tomcats, address: str, name: str, version: str = "", timeout: float = 60
) -> str:
    """Wait until /status answers 200 (naming ``version`` on its first line, when given);
    return the body."""
    deadline = time.monotonic() + timeout
    seen: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        seen = status(tomcats, address, name)
        words = seen[1].partition("\n")[0].split()  # the lines after it are facts
        if seen[0] == 200 and (not version or words[-1:] == [version]):
            return seen[1]
        time.sleep(0.05)
    log = tomcats.base(address, name) / "logs" / "catalina.out"
    raise RuntimeError(f"{tomcats.url(address, name)} not ready in {timeout} s: {seen}; see {log}")


def start_empty(tomcats: Tomcats, timeout: float = 60) -> None:
    """Start every instance with no app of its own (parallel deployment: the manager
    deploys the versions) and wait until each one's manager answers."""
    for address, name in tomcats.all():
        control(tomcats, address, name, "start")
    for address, name in tomcats.all():
        wait_manager(tomcats, address, name, timeout)


def manager_get(tomcats: Tomcats, address: str, name: str, command: str) -> str:
    """GET ``/manager/text/COMMAND`` as the sandbox's manager user; the body."""
    request = urllib.request.Request(tomcats.url(address, name, "/manager/text/" + command))
    token = base64.b64encode(f"{MANAGER_USER}:{tomcats.password()}".encode()).decode()
    request.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(answer.read().decode())


def wait_manager(tomcats: Tomcats, address: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if manager_get(tomcats, address, name, "list").startswith("OK"):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{address}/{name}: no manager within {timeout} s: {error}"
                ) from None
        time.sleep(0.1)


def jvm(tomcats: Tomcats, address: str, name: str) -> int | None:
    """The PID of the instance's running JVM, from its PID file (None when it does not run)."""
    pid = read_pid(tomcats.pid_file(address, name))
    return pid if _of_base(pid, tomcats.base(address, name)) else None


def down(root: Path) -> list[int]:
    """End every Tomcat JVM this sandbox started, by the instances' PID files; return the PIDs.

    All at once: SIGTERM is an orderly stop (~0.3 s each). A restart in flight writes its
    new PID within a moment of the old JVM's end, so the files are read until quiet
    for half a second (not at all in a sandbox without Tomcat)."""
    stopped: list[int] = []
    quiet_since = time.monotonic()
    while any(root.glob(_PID_FILES)) and time.monotonic() - quiet_since < 0.5:
        found = [pid for pid in running_jvms(root) if pid not in stopped]
        if found:
            terminate_all(found)
            stopped += found
            quiet_since = time.monotonic()
        time.sleep(0.1)
    for pid_file in root.glob(_PID_FILES):
        pid_file.unlink(missing_ok=True)
    (root / STATE).unlink(missing_ok=True)
    return stopped


def running_jvms(root: Path) -> list[int]:
    """Live processes the instances' PID files name, each checked to run one of their bases
    (a PID file left by a crash may name a PID the system gave to someone else since)."""
    found = []
    for pid_file in sorted(root.glob(_PID_FILES)):
        name = pid_file.name.removeprefix("tomcat-").removesuffix(".pid")
        pid = read_pid(pid_file)
        if pid is not None and _of_base(pid, pid_file.parent.parent / "tomcat" / name):
            found.append(pid)
    return found


def _of_base(pid: int | None, base: Path) -> bool:
    """Whether ``pid`` is alive and was started for this ``CATALINA_BASE``."""
    if not alive(pid):
        return False
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"CATALINA_BASE={base}".encode() in environment

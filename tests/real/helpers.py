"""Reading the real cluster's state in tests."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import requests

from fabfile.cluster.balancer import Balancer
from fabfile.records.history import History
from sandbox import cluster as cluster_module
from sandbox import haproxy, tomcat
from sandbox.cluster import Cluster
from tests.real import as_operator


@dataclasses.dataclass(frozen=True)
class TomcatSandbox:
    """A Tomcat cluster behind haproxy that a test module brought up, and its WARs."""

    tomcats: tomcat.Tomcats
    wars: dict[str, Path]  # by version, and the bad ones by what is wrong with them

    @property
    def addresses(self) -> list[str]:
        return list(self.tomcats.cluster.addresses)

    def url(self, path: str = "/status") -> str:
        return haproxy.url(self.tomcats.cluster, path)

    def page(self, address: str, instance: str, path: str = "/status") -> str:
        """A page of one instance, asked directly (not through haproxy)."""
        url = f"http://{address}:{self.tomcats.http_port(instance)}{path}"
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.text

    def facts(self, address: str, instance: str) -> dict[str, str]:
        """The ``name: value`` lines of an instance's /status (pid, log-level, ...)."""
        lines = self.page(address, instance).splitlines()[1:]
        return dict(line.split(": ", 1) for line in lines if ": " in line)

    def wait_in_rotation(self, seconds: float = 10) -> None:
        """Until haproxy has every enabled server UP. After the first deploy to an empty
        Tomcat, haproxy marks it UP at its next health check (``inter 1s``), not at once."""
        balancer = Balancer(str(haproxy.socket_path(self.tomcats.cluster)))
        deadline = time.monotonic() + seconds
        while True:
            rows = csv.DictReader(io.StringIO(balancer.command("show stat").lstrip("# ")))
            states = [
                r["status"]
                for r in rows
                if r["pxname"] == "web" and r["svname"] not in ("FRONTEND", "BACKEND")
            ]
            if all(state in ("UP", "MAINT") for state in states) or time.monotonic() > deadline:
                assert all(state in ("UP", "MAINT") for state in states), states
                return
            time.sleep(0.1)

    def jvms(self) -> dict[str, int | None]:
        return {f"{a}/{n}": tomcat.jvm(self.tomcats, a, n) for a, n in self.tomcats.all()}


def versions(sandbox: Cluster) -> dict[str, str]:
    """What each node's /status says right now ('' when it does not answer 200)."""
    found = {}
    for address in sandbox.addresses:
        try:
            response = requests.get(sandbox.url(address), timeout=2)
            first = response.text.partition("\n")[0]  # the lines after it are facts
            found[address] = first.split()[-1] if response.status_code == 200 else ""
        except requests.RequestException:
            found[address] = ""
    return found


def history(app_dir: Path) -> list[dict[str, Any]]:
    """Each run as ``deploy history --json`` shows it: a run's lines folded into one."""
    return [record.to_json() for record in History(app_dir / ".deploy-history.jsonl").records()]


def verdicts(entry: dict[str, Any]) -> str:
    """A history entry's verdicts, joined as ``deploy history`` shows them."""
    return "; ".join(text for _, text in entry.get("verdicts", []))


def override(app_dir: Path, host: str, **keys: str) -> None:
    """Add keys to the ``[host:NAME]`` section the sandbox's .config already has."""
    config = app_dir / ".config"
    section = f"[host:{host}]\n"
    text = config.read_text()
    assert section in text, f"no {section.strip()} in {config}"
    lines = "".join(f"{key} = {value}\n" for key, value in keys.items())
    config.write_text(text.replace(section, section + lines))


def second_copy(app_dir: Path, tmp_path: Path) -> Path:
    """The app directory as a second coordinator has it: the same .config, files and
    WARs, its own history and its own .deploy.lock."""
    other = tmp_path / "coordinator-b" / app_dir.name
    other.mkdir(parents=True)
    for path in app_dir.iterdir():
        if path.is_file() and not path.name.startswith(".deploy"):
            shutil.copy(path, other / path.name)
    return other


def server_states(where: Cluster) -> list[tuple[str, str, str]]:
    """Each haproxy server of backend ``web``: its name, operational and administrative
    state (``show servers state``, without its clock)."""
    rows = haproxy.command(where, "show servers state web").splitlines()[2:]
    return sorted((f[3], f[5], f[6]) for f in (row.split() for row in rows) if len(f) > 6)


def all_on(sandbox: Cluster, version: str) -> dict[str, str]:
    return {address: version for address in sandbox.addresses}


def stop_clusters(root: Path, started: list[Cluster]) -> list[tuple[int, str]]:
    """Stop haproxy, every Tomcat and sshd of ``started`` by PID (once); end and return
    what is left under ``root``."""
    while started:
        nodes = started.pop()
        haproxy.down(nodes)
        tomcat.down(nodes.root)
        for address in nodes.addresses:
            cluster_module.stop_sshd(nodes, address)
    return cluster_module.end_leftovers(root)


def fail_on_leftovers(left: list[tuple[int, str]], who: str) -> None:
    """Fail the session when ``who`` left processes running (already ended by then)."""
    if left:
        pytest.fail(
            f"processes {who} started were still running after it stopped (ended now): "
            + "; ".join(f"pid {pid}: {cmd[:160]}" for pid, cmd in left),
            pytrace=False,
        )


def kill_when(argv: list[str], cwd: Path, when: Callable[[str], bool]) -> str:
    """Run ``argv`` (a ``deploy`` command line) and SIGKILL it at the first output line
    ``when`` accepts, as a coordinator that dies there; return what it printed."""
    process = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen = []
    for text in process.stdout:
        seen.append(text)
        if when(text):
            process.kill()
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    return "".join(seen)


def clear_deploy_locks(sandbox: Cluster) -> None:
    """Remove every deploy lock a test left on the sandbox's nodes, as the next test's
    cluster (a new one, in effect) has none."""
    for address in sandbox.addresses:
        for lock in sandbox.home(address).glob("releases/*/deploy.lock"):
            lock.unlink(missing_ok=True)


def signal_when(
    argv: list[str],
    cwd: Path,
    number: int,
    when: Callable[[str], bool],
    before: Callable[[], None] = lambda: None,
    after: Callable[[], None] = lambda: None,
) -> tuple[int, float, str]:
    """Run ``argv`` (a ``deploy`` command line); at the first output line ``when`` accepts,
    call ``before``, send ``number``, then call ``after``. The exit code, the seconds from
    the signal to the exit, the output."""
    process = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen, sent = [], 0.0
    try:
        for line in process.stdout:
            seen.append(line)
            if not sent and when(line):
                before()
                sent = time.monotonic()
                os.kill(process.pid, number)
                after()
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:  # it did not stop: the test fails, the process must not live
            process.kill()
            process.wait()
    assert sent, "".join(seen)
    return code, time.monotonic() - sent, "".join(seen)


class Closing(Protocol):
    def close(self) -> None: ...


Boxed = TypeVar("Boxed", bound=Closing)


@contextlib.contextmanager
def sandboxes(prefix: str, make: Callable[[Path], Boxed]) -> Iterator[Boxed]:
    """A directory under WARDEPLOY_SANDBOX for production-shaped sandboxes, given to
    ``make``; what it made is closed, and the directory removed, at the end."""
    parent = Path(os.environ.get("WARDEPLOY_SANDBOX", "/tmp/wardeploy-sandbox"))
    parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    base.chmod(0o755)  # its users (wd-operator, wd-deploy, jetty, tomcat) go through it
    made: Boxed | None = None
    try:
        made = make(base)
        yield made
    finally:
        if made is not None:
            made.close()
        shutil.rmtree(base, ignore_errors=True)


class ProdBox:
    """One production-shaped sandbox, its app directory and what runs ``deploy`` there
    (as wd-operator: `tests.real.as_operator`)."""

    def __init__(self, prod_box: Any, app_dir: Path, tomcats: tomcat.Tomcats | None) -> None:
        self.prod = prod_box  # a `sandbox.prod.Prod`
        self.app_dir = app_dir
        self.tomcats = tomcats
        self.deploy_exe = Path()

    @property
    def cluster(self) -> Cluster:
        cluster: Cluster = self.prod.cluster
        return cluster

    def deploy(self, *argv: str) -> as_operator.Result:
        """``deploy ARGV`` as wd-operator, in the app directory."""
        return as_operator.run(self.deploy_exe, argv, self.app_dir, self.prod.operator_home)

"""Non-root nodes on the real stack: ``become_user`` installs and restarts through
``sudo -n -u jetty`` (Debian's jetty9 user), and a file an admin locked down (mode 600,
another owner) keeps its mode and owner through a deploy and a rollback.

The nodes of the ``become_user`` test are this module's own (two, ten addresses above
``WARDEPLOY_TEST_FIRST``'s), under a directory ``jetty`` can reach (pytest's own is
0700), their homes owned by ``jetty``: Jetty is started by the deploy's restart, as
``jetty``. The SSH user stays root, as the session's sandbox has it.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import app, cluster
from tests import cli
from tests.real.conftest import FIRST
from tests.real.helpers import all_on, fail_on_leftovers, versions

pytestmark = pytest.mark.real

OLD, NEW = "1.0.125", "1.0.126"
JETTY = pwd.getpwnam("jetty")
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture(scope="module")
def jetty_nodes() -> Iterator[cluster.Cluster]:
    root = Path(tempfile.mkdtemp(prefix="wardeploy-become-"))
    root.chmod(0o755)  # jetty reaches the nodes' homes through it
    try:
        first = str(ipaddress.IPv4Address(FIRST) + 10)
        started = cluster.up(root / "cluster", nodes=2, first=first)
        for address in started.addresses:
            home = started.home(address)
            subprocess.run(["chown", "-R", "jetty:jetty", str(home)], check=True)
        yield started
    finally:
        cluster.down(root / "cluster")  # Jetty and sshd, by PID
        left = cluster.end_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)
        fail_on_leftovers(left, "the become_user sandbox")


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)


def installed_files(nodes: cluster.Cluster, address: str) -> list[Path]:
    base = nodes.home(address) / "jetty-base"
    home = nodes.home(address)
    return [
        base / "webapps" / "root.war",
        base / "resources" / "config.properties",
        home / ".jettyrc",
    ]


def test_become_user_installs_as_jetty_and_restarts_jetty_as_jetty(
    jetty_nodes: cluster.Cluster,
    wars: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / app.APP
    app.write(jetty_nodes, path, versions=(), warmup=0, ready_timeout=15)
    nodes = jetty_nodes.root / "nodes"
    config = path / ".config"
    text = config.read_text().replace(
        "restart = ~/bin/jetty restart",  # under sudo, ~ is jetty's own home
        f"restart = HOME={nodes}/{{host}} {nodes}/{{host}}/bin/jetty restart\nbecome_user = jetty",
    )
    assert "become_user = jetty" in text
    config.write_text(text)
    for version in (OLD, NEW):
        shutil.copy(wars[version], path / wars[version].name)
    for argv, version in (([wars[OLD].name], OLD), ([wars[NEW].name], NEW), (["rollback"], OLD)):
        result = cli.run(argv, path, capsys)
        assert result.code == 0, result.text
        assert versions(jetty_nodes) == all_on(jetty_nodes, version)
        for address in jetty_nodes.addresses:
            for file in installed_files(jetty_nodes, address):
                assert file.stat().st_uid == JETTY.pw_uid, file
            port_owner = subprocess.run(
                ["ss", "-Hltnp", f"src {address}:{jetty_nodes.http_port}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            pid = int(port_owner.split("pid=")[1].split(",")[0])
            assert os.stat(f"/proc/{pid}").st_uid == JETTY.pw_uid  # restarted as jetty
        releases = jetty_nodes.home(jetty_nodes.addresses[0]) / "releases" / app.APP
        assert releases.stat().st_uid == 0  # the SSH user's own


def test_a_locked_down_config_keeps_its_mode_and_owner_through_deploy_and_rollback(
    sandbox: cluster.Cluster, on_125: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No become_user: the SSH user (root) writes, and gives the new file the old one's
    mode and owner."""
    locked = [
        sandbox.home(address) / "jetty-base" / "resources" / "config.properties"
        for address in sandbox.addresses
    ]
    try:
        for file in locked:
            os.chown(file, NOBODY.pw_uid, NOBODY.pw_gid)
            file.chmod(0o600)
        deploy_and_roll_back(sandbox, on_125, locked, capsys)
    finally:  # the session's nodes as the other tests know them
        for file in locked:
            os.chown(file, 0, 0)
            file.chmod(0o644)


def deploy_and_roll_back(
    sandbox: cluster.Cluster, on_125: Path, locked: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    properties = (on_125 / "config.properties").read_text()
    (on_125 / "config.properties").write_text(properties + "db.password=changed\n")
    deployed = cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys)
    assert deployed.code == 0, deployed.text
    assert versions(sandbox) == all_on(sandbox, NEW)
    for file in locked:
        assert "db.password=changed" in file.read_text()
        assert owner_and_mode(file) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o600)
    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, OLD)
    for file in locked:
        assert "db.password=changed" not in file.read_text()
        assert owner_and_mode(file) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o600)

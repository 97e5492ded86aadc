"""Production's shape on the real stack (`sandbox.prod`): a bastion is the only way in.

``deploy`` (this checkout's wheel, installed by pip in a fresh virtualenv: the
session's ``installed_deploy``) runs as ``wd-operator``, whose TCP to every node
address iptables rejects;
it logs in to the nodes as ``wd-deploy`` through the bastion, installs and restarts
through ``sudo -n -u root`` (``become_user``), and reaches /status and Tomcat's
manager over its SSH connection (``http_via``, ssh by default behind a jump host).
Jetty runs as ``jetty``, Tomcat as ``tomcat``. One sandbox at a time (Jetty, then
blue/green, then parallel Tomcat hosts) on WARDEPLOY_PROD_NET: nodes .2-.4, haproxy
.1, bastion .254.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.load import Load
from fabfile.cluster.balancer import Balancer
from sandbox import app, cluster, haproxy, prod, prod_app, tomcat
from sandbox.prod import Prod
from tests.real import as_operator
from tests.real.helpers import ProdBox, all_on, fail_on_leftovers, sandboxes, versions

pytestmark = pytest.mark.real

NET = os.environ.get("WARDEPLOY_PROD_NET", "127.0.12")
OLD, NEW = "1.0.125", "1.0.126"
RATE = 300  # requests/s through haproxy while deploying: paced, on a 2-core machine


class Box(ProdBox):
    """One production-shaped sandbox, its app directory and what runs ``deploy``."""

    def served(self) -> str:
        answer = requests.get(haproxy.url(self.cluster, "/status"), timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.text.partition("\n")[0].split()[-1]

    def haproxy_states(self) -> dict[str, str]:
        balancer = Balancer(str(haproxy.socket_path(self.cluster)))
        text = balancer.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            r["svname"]: r["status"]
            for r in rows
            if r["pxname"] == "web" and r["svname"] not in ("FRONTEND", "BACKEND")
        }


class Boxes:
    """Starts the sandbox a test asks for, stopping the one before (all share NET)."""

    def __init__(self, base: Path, deploy_exe: Path) -> None:
        self.base = base
        self.kind = ""
        self.box: Box | None = None
        self.deploy_exe = deploy_exe

    def get(self, kind: str) -> Box:
        if self.kind != kind:
            self.close()
            self.kind = kind
            root = self.base / kind
            self.box = {"jetty": _jetty, "blue-green": _blue_green, "parallel": _parallel}[kind](
                root
            )
            self.box.deploy_exe = self.deploy_exe
        assert self.box is not None
        return self.box

    def close(self) -> None:
        if not self.kind:
            return
        root = self.base / self.kind
        self.kind, self.box = "", None
        found = cluster.Cluster.load(root)
        prod.down(root)  # bastion, iptables rules, sudoers file
        if found is not None:
            haproxy.down(found)
        tomcat.down(root)
        cluster.down(root)
        left = cluster.end_leftovers(root)
        fail_on_leftovers(left, "the production-shaped sandbox")


@pytest.fixture(scope="module")
def boxes(installed_deploy: Path) -> Iterator[Boxes]:
    deploy = as_operator.runnable(installed_deploy)
    with sandboxes("prod-", lambda base: Boxes(base, deploy)) as made:
        yield made


def _up(root: Path, runtime: str, count: int) -> Prod:
    return prod.up(root, count, f"{NET}.2", f"{NET}.254", runtime)


def _jetty(root: Path) -> Box:
    box = _up(root, "jetty", 3)
    prod.haproxy_up(box)
    app_dir = root / "apps" / app.APP
    wars = prod_app.write_jetty(box, app_dir, (OLD, NEW), warmup=0, ready_timeout=15)
    prod.start_jetty(box, wars[0])  # as its admin would have it before any deploy
    return Box(box, app_dir, None)


def _blue_green(root: Path) -> Box:
    box = _up(root, "tomcat", 2)
    tomcats = prod.tomcat_hosts(box, tomcat.BLUE_GREEN, replicate=True)
    prod.haproxy_up(box, tomcats)
    app_dir = root / "apps" / app.APP
    wars = prod_app.write_tomcat(
        box, tomcats, app_dir, (OLD, NEW), "blue-green", warmup=0, ready_timeout=20
    )
    prod.start_tomcats(tomcats, wars[0], app_dir / "config.properties")
    return Box(box, app_dir, tomcats)


def _parallel(root: Path) -> Box:
    box = _up(root, "tomcat", 2)
    tomcats = prod.tomcat_hosts(box, tomcat.SINGLE, replicate=False)
    prod.haproxy_up(box, tomcats, sticky=True)
    app_dir = root / "apps" / app.APP
    prod_app.write_tomcat(box, tomcats, app_dir, (OLD, NEW), "parallel", warmup=0)
    tomcat.start_empty(tomcats)
    return Box(box, app_dir, tomcats)


def _uid(pid: int | None) -> str:
    assert pid is not None
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = int(next(ln for ln in lines if ln.startswith("Uid:")).split()[1])
    return pwd.getpwuid(uid).pw_name


def _logins(box: Box, user: str) -> int:
    return sum(
        (box.cluster.home(a) / "sshd.log")
        .read_text(errors="replace")
        .count(f"Accepted publickey for {user} ")
        for a in box.cluster.addresses
    )


_PROBE = """
import json, socket, sys
seen = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        seen[target] = "open"
    except OSError as error:
        seen[target] = type(error).__name__
print(json.dumps(seen))
"""


# -- the sandbox itself -----------------------------------------------------------------


def test_the_operator_reaches_the_bastion_and_no_node(boxes: Boxes) -> None:
    box = boxes.get("jetty")
    nodes = [f"{a}:{p}" for a in box.cluster.addresses for p in (22, box.cluster.http_port)]
    bastion = f"{box.prod.bastion}:22"
    probe = as_operator.command(["/usr/bin/python3", "-c", _PROBE, *nodes, bastion])
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert seen == {**dict.fromkeys(nodes, "ConnectionRefusedError"), bastion: "open"}
    # the same ports answer anyone else: the rules, not the nodes, keep wd-operator out
    assert versions(box.cluster) == all_on(box.cluster, OLD)

    config = str(box.prod.ssh_config)
    through = as_operator.command(["ssh", "-F", config, "-o", "BatchMode=yes", "web1", "id -un"])
    assert (through.returncode, through.stdout) == (0, f"{prod.DEPLOY_USER}\n"), through.stderr
    direct = as_operator.command(
        ["ssh", "-F", config, "-o", "BatchMode=yes", "-o", "ProxyJump=none",
         box.cluster.addresses[0], "id -un"]
    )  # fmt: skip
    assert direct.returncode == 255 and "Connection refused" in direct.stderr, direct.stderr


def test_nodes_run_their_servers_as_their_own_users(boxes: Boxes) -> None:
    box = boxes.get("jetty")
    for address in box.cluster.addresses:
        assert [_uid(pid) for pid in cluster.jvms(box.cluster, address)] == [prod.JETTY_USER]
    script = (
        "id -un; touch ~/jetty-base/webapps/x 2>/dev/null && echo writes || echo no-write; "
        "touch ~/releases/x && rm ~/releases/x && echo releases; "
        "sudo -n -u root true && echo sudo"
    )
    config = str(box.prod.ssh_config)
    seen = as_operator.command(["ssh", "-F", config, "-o", "BatchMode=yes", "web2", script])
    assert seen.stdout.split() == [prod.DEPLOY_USER, "no-write", "releases", "sudo"], seen.stderr


# -- deploys through it (become_user, http_via) -----------------------------------------


def test_status_rolling_deploy_and_rollback_through_the_bastion_under_load(
    boxes: Boxes,
) -> None:
    box = boxes.get("jetty")
    # host keys as `ssh -F` finds them: ssh_config's UserKnownHostsFile, no known_hosts key
    assert "known_hosts" not in (box.app_dir / ".config").read_text()
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    status = box.deploy("status")
    assert status.code == 0, status.text
    for address in box.cluster.addresses:
        assert f"http://{address}:{box.cluster.http_port}/status" in status.out

    roots = _logins(box, "root")
    with Load(haproxy.url(box.cluster, "/status"), RATE) as load:
        deployed = box.deploy(f"{app.APP}-{NEW}.war")
        assert deployed.code == 0, deployed.text
        assert versions(box.cluster) == all_on(box.cluster, NEW)
        back = box.deploy("rollback")
        assert back.code == 0, back.text
        assert versions(box.cluster) == all_on(box.cluster, OLD)
    assert load.figures.requests > RATE and load.figures.failed == 0, load.figures
    assert _logins(box, "root") == roots  # every login of the deploys was wd-deploy's
    for address in box.cluster.addresses:
        assert [_uid(pid) for pid in cluster.jvms(box.cluster, address)] == [prod.JETTY_USER]
    assert set(box.haproxy_states().values()) == {"UP"}


def test_a_sudo_that_wants_a_password_is_refused_before_anything_changes(boxes: Boxes) -> None:
    box = boxes.get("jetty")
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    wars = {a: _war(box, a) for a in box.cluster.addresses}
    config = box.app_dir / ".config"
    text = config.read_text()
    assert f"become_user = {prod.BECOME}\n" in text
    # a user the sandbox's sudoers lets wd-deploy become with a password only (root's rule,
    # which other sandboxes share, is left alone)
    config.write_text(text.replace(f"become_user = {prod.BECOME}\n", "become_user = nobody\n"))
    try:
        refused = box.deploy(f"{app.APP}-{NEW}.war")
    finally:
        config.write_text(text)
    assert refused.code != 0, refused.text
    for alias in box.prod.aliases:
        assert f"sudo on {alias} wants a password for {prod.DEPLOY_USER}" in refused.err
        assert f"as {prod.ASKS_PASSWORD} (" in refused.err
    assert versions(box.cluster) == all_on(box.cluster, OLD)
    assert {a: _war(box, a) for a in box.cluster.addresses} == wars
    assert set(box.haproxy_states().values()) == {"UP"}


def _war(box: Box, address: str) -> tuple[int, int, str]:
    """The node's live WAR: (size, mtime in ns, owner)."""
    path = box.cluster.home(address) / "jetty-base" / "webapps" / "root.war"
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, pwd.getpwuid(stat.st_uid).pw_name


@pytest.mark.parametrize("kind", ["blue-green", "parallel"])
def test_tomcat_strategies_deploy_and_roll_back_through_the_bastion_under_load(
    boxes: Boxes, kind: str
) -> None:
    """Blue/green switches colours, parallel has the manager run two versions: both as
    wd-deploy through the bastion, with Tomcat still its own user afterwards."""
    box = boxes.get(kind)
    assert box.tomcats is not None
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    with Load(haproxy.url(box.cluster, "/status"), RATE) as load:
        deployed = box.deploy(f"{app.APP}-{NEW}.war")
        assert deployed.code == 0, deployed.text
        assert box.served() == NEW
        back = box.deploy("rollback")
        assert back.code == 0, back.text
        assert box.served() == OLD
    assert load.figures.requests > RATE and load.figures.failed == 0, load.figures
    for address, name in box.tomcats.all():
        assert _uid(tomcat.jvm(box.tomcats, address, name)) == prod.TOMCAT_USER

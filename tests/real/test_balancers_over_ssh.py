"""haproxy where it really runs: two balancers on hosts of their own, over SSH.

A production-shaped sandbox (`sandbox.prod`) on WARDEPLOY_LB_NET (nodes .2-.4, bastion
.254) with two load-balancer hosts (`sandbox.balancers`: ``lb1`` on .250, ``lb2`` on
.251), each an sshd that ``wd-operator`` reaches only through the bastion as
``wd-deploy``, and a haproxy of its own in front of the same nodes, whose runtime API
socket is root's and haproxy's group (``wd-deploy`` needs ``sudo -n``). ``deploy``
runs as ``wd-operator`` from the installed wheel with ``lb_socket = lb1:/path,
lb2:/path`` and ``lb_state_file = ROOT/{balancer}/haproxy.state``. Load goes through
both frontends at once. One sandbox per runtime (Jetty, then blue/green Tomcat).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.load import Load
from sandbox import app, balancers, cluster, haproxy, prod, prod_app, tomcat
from sandbox.balancers import Lb
from sandbox.prod import Prod
from tests.real import as_operator
from tests.real.helpers import ProdBox, all_on, fail_on_leftovers, sandboxes, versions

pytestmark = pytest.mark.real

NET = os.environ.get("WARDEPLOY_LB_NET", "127.0.14")
OLD, NEW = "1.0.125", "1.0.126"
RATE = 200  # requests/s through EACH balancer while deploying: paced, on a 2-core machine


class Box(ProdBox):
    """One production-shaped sandbox with its balancers, its app directory, and what
    runs ``deploy``."""

    def __init__(
        self, prod_box: Prod, lbs: list[Lb], app_dir: Path, tomcats: tomcat.Tomcats | None
    ) -> None:
        super().__init__(prod_box, app_dir, tomcats)
        self.lbs = lbs

    def states(self) -> dict[str, dict[str, str]]:
        """Every server's status in each balancer's haproxy, by balancer."""
        return {lb.name: balancers.states(lb) for lb in self.lbs}


class Boxes:
    """Starts the sandbox a test asks for, stopping the one before (all share NET)."""

    def __init__(self, base: Path, deploy_exe: Path) -> None:
        self.base = base
        self.box: Box | None = None
        self.kind = ""
        self.deploy_exe = deploy_exe

    def get(self, kind: str) -> Box:
        if self.kind != kind:
            self.close()
            self.kind = kind
            self.box = {"jetty": _jetty, "blue-green": _blue_green}[kind](self.base / kind)
            self.box.deploy_exe = self.deploy_exe
        assert self.box is not None
        return self.box

    def close(self) -> None:
        """Stop everything the sandbox started and check nothing of it is left: no
        process, no iptables rule, no sudoers file."""
        if not self.kind:
            return
        root = self.base / self.kind
        self.kind, self.box = "", None
        found = Prod.load(root)
        balancers.down(root)  # haproxy and sshd of each balancer host (needs prod.json)
        prod.down(root)  # bastion, iptables rules, sudoers file
        tomcat.down(root)
        cluster.down(root)
        fail_on_leftovers(cluster.end_leftovers(root), "the balancers' sandbox")
        if found is not None:
            left = prod.unblock(found)  # 0 when prod.down removed them all, as it must
            if left or found.sudoers.exists():
                found.sudoers.unlink(missing_ok=True)
                pytest.fail(f"{root}: {left} iptables rules or its sudoers file were left")


@pytest.fixture(scope="module")
def boxes(installed_deploy: Path) -> Iterator[Boxes]:
    deploy = as_operator.runnable(installed_deploy)
    with sandboxes("lbs-", lambda base: Boxes(base, deploy)) as made:
        yield made


def _up(root: Path, runtime: str, count: int) -> Prod:
    return prod.up(root, count, f"{NET}.2", f"{NET}.254", runtime, balancers=2)


def _jetty(root: Path) -> Box:
    box = _up(root, "jetty", 3)
    lbs = balancers.up(box)
    app_dir = root / "apps" / app.APP
    wars = prod_app.write_jetty(box, app_dir, (OLD, NEW), warmup=0, ready_timeout=15)
    balancers.configure(app_dir, box, lbs)
    prod.start_jetty(box, wars[0])  # as its admin would have it before any deploy
    return Box(box, lbs, app_dir, None)


def _blue_green(root: Path) -> Box:
    box = _up(root, "tomcat", 2)
    tomcats = prod.tomcat_hosts(box, tomcat.BLUE_GREEN, replicate=True)
    lbs = balancers.up(box, tomcats)
    app_dir = root / "apps" / app.APP
    wars = prod_app.write_tomcat(
        box, tomcats, app_dir, (OLD, NEW), "blue-green", warmup=0, ready_timeout=20
    )
    balancers.configure(app_dir, box, lbs)
    prod.start_tomcats(tomcats, wars[0], app_dir / "config.properties")
    return Box(box, lbs, app_dir, tomcats)


def _ssh(
    box: Box, host: str, words: list[str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``ssh -F`` the coordinator's ssh_config to ``host`` as wd-operator, ``stdin`` fed."""
    argv = ["ssh", "-F", str(box.prod.ssh_config), "-o", "BatchMode=yes", host, shlex.join(words)]
    return subprocess.run(
        argv,
        cwd="/",
        user=prod.OPERATOR,
        group=prod.OPERATOR,
        extra_groups=[],
        env={"HOME": f"/home/{prod.OPERATOR}", "PATH": "/usr/bin:/bin"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _served(lb: Lb, times: int = 4) -> set[str]:
    """The versions a few requests through this balancer's frontend were answered by."""
    seen = set()
    for _ in range(times):
        answer = requests.get(lb.url("/status"), timeout=5)
        assert answer.status_code == 200, answer.text
        seen.add(answer.text.partition("\n")[0].split()[-1])
    return seen


def _live(lb: Lb) -> set[str]:
    """The servers this balancer sends traffic to (blue/green: the live colour): UP, or
    'UP 1/2' just after a reload that did not restore its checks' health."""
    states = balancers.states(lb).items()
    return {server for server, state in states if state.split()[0] == "UP"}


def _state_file(lb: Lb) -> dict[str, int]:
    """Each server of backend ``web`` in the balancer's server-state file, with its
    admin state (haproxy's ``show servers state``: be_id be_name srv_id srv_name
    srv_addr srv_op_state srv_admin_state ...), a bit field: 1 is maintenance forced
    through the runtime API (4, disabled in the configuration file, may stay set on a
    server made ready since)."""
    rows = [ln.split() for ln in lb.state_file.read_text().splitlines()]
    return {r[3]: int(r[6]) for r in rows if len(r) > 6 and r[0] != "#" and r[1] == "web"}


def _staged(box: Box, version: str) -> dict[Path, int]:
    """Files of ``version`` in the nodes' releases directories, with their mtimes: what a
    deploy copies there (a test before may have kept that release already)."""
    homes = [box.cluster.home(a) / "releases" for a in box.cluster.addresses]
    return {path: path.stat().st_mtime_ns for home in homes for path in home.rglob(f"*{version}*")}


def _other_sudoers(box: Box) -> str:
    """Other production-shaped sandboxes' sudoers files, said when status finds a balancer
    UNREACHABLE: they share wd-deploy, and the last rule sudo reads wins (every sandbox
    writes the same rules, `sandbox.prod.NOPASSWD`, so none should take another's away)."""
    found = sorted(p.name for p in prod.SUDOERS_DIR.glob("wardeploy-prod-*"))
    others = [name for name in found if name != box.prod.sudoers.name]
    return (
        f"\nother sandboxes' sudoers files, in the order sudo reads them: {found}" if others else ""
    )


def _loads(box: Box) -> tuple[Load, Load]:
    first, second = box.lbs
    return Load(first.url("/status"), RATE), Load(second.url("/status"), RATE)


# -- the sandbox itself -----------------------------------------------------------------


def test_each_balancer_answers_wd_deploy_over_ssh_through_sudo_only(boxes: Boxes) -> None:
    box = boxes.get("jetty")
    for lb in box.lbs:
        socat = ["socat", "-", f"UNIX-CONNECT:{lb.socket}"]
        seen = _ssh(box, lb.name, ["sudo", "-n", *socat], "show stat\n")
        assert seen.returncode == 0 and seen.stdout.startswith("# pxname,"), seen.stderr
        rows = {tuple(ln.split(",")[:2]) for ln in seen.stdout.splitlines()}
        assert {("web", f"node{i}") for i in (1, 2, 3)} <= rows, seen.stdout
        refused = _ssh(box, lb.name, socat, "show stat\n")
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused
        who = _ssh(box, lb.name, ["id", "-un"])
        assert who.stdout == f"{prod.DEPLOY_USER}\n", who.stderr
        # wd-operator itself reaches neither the balancer's sshd nor its frontend
        config = str(box.prod.ssh_config)
        direct = as_operator.command(
            ["ssh", "-F", config, "-o", "BatchMode=yes", "-o", "ProxyJump=none", lb.name, "true"]
        )
        assert direct.returncode == 255 and "Connection refused" in direct.stderr, direct.stderr
        curl = as_operator.command(["curl", "-sS", "-o", "/dev/null", lb.url("/status")])
        assert curl.returncode != 0, curl.stdout

    one, two = _loads(box)
    with one, two:
        assert all(_served(lb) == {OLD} for lb in box.lbs)
    for load in (one, two):
        assert load.figures.requests > 0 and load.figures.failed == 0, load.figures
    assert box.states() == {lb.name: dict.fromkeys(("node1", "node2", "node3"), "UP")
                            for lb in box.lbs}  # fmt: skip


def test_a_balancer_reload_starts_from_its_state_file(boxes: Boxes) -> None:
    """What the blue/green test relies on: a reload reads ``server-state-file``."""
    box = boxes.get("jetty")
    lb1 = box.lbs[0]
    balancers.set_state(lb1, "node3", "maint")
    try:
        state = haproxy.command(lb1.site, "show servers state")
        lb1.state_file.write_text(state)
        balancers.reload(lb1)
        assert balancers.states(lb1)["node3"] == "MAINT"
        assert balancers.states(box.lbs[1])["node3"] == "UP"
    finally:
        balancers.set_state(lb1, "node3", "ready")
        balancers.wait_up(lb1, "node3")
        lb1.state_file.unlink(missing_ok=True)


# -- deploys through both balancers -----------------------------------------------------


def test_rolling_deploy_and_rollback_keep_both_balancers_in_step_under_load(
    boxes: Boxes,
) -> None:
    box = boxes.get("jetty")
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    for lb in box.lbs:
        lb.state_file.unlink(missing_ok=True)  # what is there next, the deploy wrote
    one, two = _loads(box)
    with one, two:
        deployed = box.deploy(f"{app.APP}-{NEW}.war")
        assert deployed.code == 0, deployed.text
        assert versions(box.cluster) == all_on(box.cluster, NEW)
        back = box.deploy("rollback")
        assert back.code == 0, back.text
        assert versions(box.cluster) == all_on(box.cluster, OLD)
    for load in (one, two):
        assert load.figures.requests > RATE and load.figures.failed == 0, load.figures
    for lb in box.lbs:
        servers = balancers.states(lb)
        assert set(servers.values()) == {"UP"}, (lb.name, servers)
        assert lb.state_file.is_file(), f"{lb.name}: no {lb.state_file} written"
        assert set(_state_file(lb)) == set(servers), lb.state_file.read_text()


def test_an_unreachable_balancer_is_refused_before_any_change(boxes: Boxes) -> None:
    box = boxes.get("jetty")
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    before, staged = box.states(), _staged(box, NEW)
    lb2 = box.lbs[1]
    balancers.stop_sshd(box.prod, lb2)
    try:
        refused = box.deploy(f"{app.APP}-{NEW}.war")
        assert refused.code != 0, refused.text
        assert "lb2" in refused.text and "--lb" in refused.text, refused.text
        assert versions(box.cluster) == all_on(box.cluster, OLD)
        assert box.states() == before
        assert _staged(box, NEW) == staged, "the refused deploy copied the release"
        seen = box.deploy("status")
        assert seen.code != 0, seen.text
        assert "balancer lb2 could not be read: " in seen.text, seen.text

        alone = box.deploy(f"{app.APP}-{NEW}.war", "--lb", "lb1")
        assert alone.code == 0, alone.text
        said = [ln.strip() for ln in alone.text.splitlines() if ln.strip().startswith("balancers:")]
        assert said and "lb1" in said[0] and "left out by --lb: lb2" in said[0], alone.text
        assert versions(box.cluster) == all_on(box.cluster, NEW)
    finally:
        balancers.start_sshd(box.prod, lb2)
    assert set(balancers.states(box.lbs[0]).values()) == {"UP"}


def test_a_balancer_whose_server_points_elsewhere_is_refused_in_pre_flight(
    boxes: Boxes,
) -> None:
    box = boxes.get("jetty")
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    staged = _staged(box, NEW)
    lb2 = box.lbs[1]
    elsewhere = f"{NET}.9"  # no node there: lb2 alone sends node2's traffic to it
    balancers.set_address(lb2, "node2", elsewhere, box.cluster.http_port)
    try:
        refused = box.deploy(f"{app.APP}-{NEW}.war")
        assert refused.code != 0, refused.text
        assert "lb2" in refused.text and f"{elsewhere}:{box.cluster.http_port}" in refused.text
        assert versions(box.cluster) == all_on(box.cluster, OLD)
        assert _staged(box, NEW) == staged, "the refused deploy copied the release"
    finally:
        balancers.set_address(lb2, "node2", box.cluster.addresses[1], box.cluster.http_port)
        balancers.wait_up(lb2, "node2")


def test_status_shows_each_balancer_and_says_when_they_disagree(boxes: Boxes) -> None:
    box = boxes.get("jetty")
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    for lb in box.lbs:
        for server in ("node1", "node2", "node3"):
            balancers.wait_up(lb, server)  # after the test before, lb2's checks may lag
    agreed = box.deploy("status", "--json")
    assert agreed.code == 0, agreed.text
    rows = json.loads(agreed.out)
    views = [row["balancers"] for row in rows]
    assert views == [{"lb1": "UP", "lb2": "UP"}] * 3, agreed.text + _other_sudoers(box)
    assert {row["haproxy"] for row in rows} == {"UP"}, agreed.text

    lb2 = box.lbs[1]
    balancers.set_state(lb2, "node2", "maint")
    try:
        seen = box.deploy("status", "--json")
        assert seen.code != 0, seen.text
        views = [row["balancers"] for row in json.loads(seen.out)]
        assert {"lb1": "UP", "lb2": "MAINT"} in views, seen.text
        assert "balancers disagree" in seen.err, seen.text
        table = box.deploy("status")
        assert table.code != 0 and "balancers disagree" in table.text, table.text
    finally:
        balancers.set_state(lb2, "node2", "ready")
        balancers.wait_up(lb2, "node2")


def test_blue_green_switches_both_balancers_under_load_and_a_reload_keeps_it(
    boxes: Boxes,
) -> None:
    box = boxes.get("blue-green")
    first = box.deploy(f"{app.APP}-{OLD}.war")
    assert first.code == 0, first.text
    lb1, lb2 = box.lbs
    before = _live(lb1)
    assert _live(lb2) == before and before, box.states()

    one, two = _loads(box)
    with one, two:
        deployed = box.deploy(f"{app.APP}-{NEW}.war")
        assert deployed.code == 0, deployed.text
        assert [_served(lb) for lb in box.lbs] == [{NEW}, {NEW}]
    for load in (one, two):
        assert load.figures.requests > RATE and load.figures.failed == 0, load.figures
    switched = _live(lb1)
    assert switched and switched.isdisjoint(before), box.states()  # the other colour
    assert _live(lb2) == switched, box.states()
    _reload_keeps(lb1, switched, NEW)

    back = box.deploy("rollback")
    assert back.code == 0, back.text
    assert [_served(lb) for lb in box.lbs] == [{OLD}, {OLD}]
    assert _live(lb1) == _live(lb2) == before, box.states()
    # One of the two colours is the one haproxy's configuration file starts in
    # maintenance: only the state file can keep it live through a reload.
    _reload_keeps(lb2, before, OLD)


def _reload_keeps(lb: Lb, live: set[str], version: str) -> None:
    """The balancer's state file (written by the deploy on its host) has the servers
    out of ``live`` forced into maintenance, and only them; after a reload the balancer
    still sends to ``live``."""
    written = _state_file(lb)
    assert {s for s, admin in written.items() if not admin & 1} == live, written
    balancers.reload(lb)
    assert _live(lb) == live, balancers.states(lb)
    assert _served(lb) == {version}

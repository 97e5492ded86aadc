"""The sandbox's Tomcat 10 hosts, on the real servers (sshd, Tomcat, haproxy on 127.0.3.x).

Two blue/green hosts with sessions replicated between their instances
(127.0.3.2-3) and one single-instance host the deploy tool deploys to
(127.0.3.4). Every instance starts and restarts over its node's own ssh.
The last test tears everything down and checks that nothing is left running.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox import app, cluster, haproxy, tomcat, tomcat_app
from sandbox.sample import DEFAULT_GROUP_ID, build_war
from tests import cli
from tests.real.helpers import fail_on_leftovers, stop_clusters

pytestmark = pytest.mark.real

# WARDEPLOY_TOMCAT_NET moves these hosts, like WARDEPLOY_TEST_FIRST the Jetty ones.
NET = os.environ.get("WARDEPLOY_TOMCAT_NET", "127.0.3")
BLUE_GREEN_FIRST = f"{NET}.2"  # .2 and .3: blue and green, sessions replicated
SINGLE = f"{NET}.4"  # one instance, `main`, deployed to by the deploy tool
SINGLE_LB_PORT = haproxy.PORT + 1  # both haproxies listen on 127.0.3.1
OLD, NEW = "1.0.125", "1.0.126"
MEASURED: dict[str, float] = {}  # seconds and MiB, shown by the last test


@dataclasses.dataclass(frozen=True)
class Hosts:
    """This module's Tomcat hosts; ``started`` is what `down` still has to stop."""

    root: Path
    blue_green: tomcat.Tomcats
    single: tomcat.Tomcats
    wars: dict[str, Path]
    started: list[cluster.Cluster]


@pytest.fixture(scope="session")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    root = tmp_path_factory.mktemp("tomcat")
    wars = {v: build_war(v, root, artifact_id=app.APP, container="tomcat") for v in (OLD, NEW)}
    started: list[cluster.Cluster] = []
    try:
        started.append(cluster.up(root / "single", 1, SINGLE))
        single = tomcat.up(started[-1], tomcat.SINGLE, replicate=False)
        tomcat.install(single, SINGLE, "main", wars[OLD])
        (single.base(SINGLE, "main") / "lib" / "logback.xml").write_text(tomcat_app.LOGBACK)
        begin = time.monotonic()
        tomcat.start_all(single, single.all())  # alone on the machine: a fair cold start
        MEASURED["cold start to /status 200 (s)"] = time.monotonic() - begin
        haproxy.up(single.cluster, haproxy.tomcat_config_text(single, SINGLE_LB_PORT))
        started.append(cluster.up(root / "blue-green", 2, BLUE_GREEN_FIRST))
        blue_green = tomcat.up(started[-1], tomcat.BLUE_GREEN, replicate=True, war=wars[OLD])
        haproxy.up(blue_green.cluster, haproxy.tomcat_config_text(blue_green))
        yield Hosts(root, blue_green, single, wars, started)
    finally:
        left = stop_clusters(root, started)
        fail_on_leftovers(left, "the Tomcat sandbox")


def answer(version: str) -> tuple[int, str]:
    """What /status says first for ``version``: exactly what the Jetty build says."""
    return 200, f"{DEFAULT_GROUP_ID}:{app.APP} {version}"


def identity(tomcats: tomcat.Tomcats, address: str, name: str) -> tuple[int, str]:
    """The instance's /status: HTTP status and first line (the lines after it are facts)."""
    code, body = tomcat.status(tomcats, address, name)
    return code, body.partition("\n")[0]


def facts(body: str) -> dict[str, str]:
    """The ``name: value`` lines of a /status body after its first."""
    pairs = (line.partition(":") for line in body.splitlines()[1:])
    return {key.strip(): value.strip() for key, _, value in pairs}


def test_every_instance_answers_its_version_after_its_first_start(hosts: Hosts) -> None:
    every = [(hosts.blue_green, *pair) for pair in hosts.blue_green.all()]
    every += [(hosts.single, *pair) for pair in hosts.single.all()]
    for tomcats, address, name in every:
        assert identity(tomcats, address, name) == answer(OLD), (address, name)
        pid = tomcat.jvm(tomcats, address, name)
        assert pid is not None, f"{address}/{name}: its PID file names no JVM of its base"
    rss = [cluster.rss_kib(tomcat.jvm(t, a, n) or 0) / 1024 for t, a, n in every]
    MEASURED["RSS per instance, max (MiB)"] = max(rss)
    MEASURED["RSS per instance, min (MiB)"] = min(rss)


def test_logback_xml_in_lib_is_read_and_rescanned(hosts: Hosts) -> None:
    """~/tomcat/NAME/lib/logback.xml (Tomcat's common class path) configures the webapp's
    logback and is rescanned: a new root level shows on /status within seconds, from the
    same JVM, and the DEBUG line each /status logs reaches catalina.out."""
    tomcats = hosts.single
    base = tomcats.base(SINGLE, "main")
    before = facts(tomcat.status(tomcats, SINGLE, "main")[1])
    assert before["pid"] == str(tomcat.jvm(tomcats, SINGLE, "main"))
    assert before["log-level"] == "INFO"
    assert int(before["started"]) > 0 and 0 < int(before["heap-max-mb"]) <= 192
    debug = tomcat_app.LOGBACK.replace('<root level="INFO">', '<root level="DEBUG">')
    try:
        (base / "lib" / "logback.xml").write_text(debug)
        begin, after = time.monotonic(), before
        while after["log-level"] != "DEBUG" and time.monotonic() - begin < 5:
            time.sleep(0.1)
            after = facts(tomcat.status(tomcats, SINGLE, "main")[1])
        MEASURED["logback.xml edit to new level on /status (s)"] = time.monotonic() - begin
        assert after == {**before, "log-level": "DEBUG"}
        tomcat.status(tomcats, SINGLE, "main")  # logged at DEBUG, whatever the race above
        assert "sample.StatusServlet - status asked" in (base / "logs" / "catalina.out").read_text()
    finally:
        (base / "lib" / "logback.xml").write_text(tomcat_app.LOGBACK)


def test_restart_over_ssh_replaces_the_jvm_and_returns_at_once(hosts: Hosts) -> None:
    tomcats, address, name = hosts.blue_green, hosts.blue_green.cluster.addresses[1], "blue"
    old = tomcat.jvm(tomcats, address, name)
    tomcat.install(tomcats, address, name, hosts.wars[NEW])
    begin = time.monotonic()
    tomcat.control(tomcats, address, name, "restart")
    under_way = identity(tomcats, address, name)
    tomcat.wait_ready(tomcats, address, name, NEW, timeout=30)
    MEASURED["restart to new version (s)"] = time.monotonic() - begin
    new = tomcat.jvm(tomcats, address, name)
    assert under_way != answer(NEW), "the restart command waited for the new JVM"
    assert new is not None and new != old
    assert not cluster.alive(old)
    assert identity(tomcats, address, name) == answer(NEW)
    assert identity(tomcats, address, "green") == answer(OLD)  # its neighbour untouched


def test_manager_text_api_answers_the_script_user_only(hosts: Hosts) -> None:
    tomcats, address = hosts.blue_green, hosts.blue_green.cluster.addresses[0]
    url = tomcats.url(address, "blue", "/manager/text/list")
    mode = stat.S_IMODE(tomcats.password_file.stat().st_mode)
    assert mode == 0o600, f"{tomcats.password_file} has mode {mode:o}"
    good = requests.get(url, auth=("deploy", tomcats.password()), timeout=5)
    assert good.status_code == 200, good.text
    assert good.text.startswith("OK - Listed applications")
    assert "/:running:" in good.text and "/manager:running:" in good.text
    wrong = requests.get(url, auth=("deploy", "not-the-password"), timeout=5)
    assert wrong.status_code == 401


def test_a_session_survives_a_restart_of_the_other_instance(hosts: Hosts) -> None:
    tomcats, address = hosts.blue_green, hosts.blue_green.cluster.addresses[0]
    begin = time.monotonic()
    login = requests.post(tomcats.url(address, "blue", "/login"), {"user": "alice"}, timeout=5)
    assert login.status_code == 200, login.text
    cookie = {"JSESSIONID": login.cookies["JSESSIONID"]}
    old = tomcat.jvm(tomcats, address, "green")
    assert tomcat.restart(tomcats, address, "green", OLD, timeout=30) != old
    whoami = requests.get(tomcats.url(address, "green", "/whoami"), cookies=cookie, timeout=5)
    MEASURED["replication check (s)"] = time.monotonic() - begin
    assert (whoami.status_code, whoami.text) == (200, "alice\n")
    stranger = requests.get(tomcats.url(address, "green", "/whoami"), timeout=5)
    assert stranger.status_code == 401


def test_haproxy_sends_traffic_to_blue_and_keeps_green_idle(hosts: Hosts) -> None:
    tomcats = hosts.blue_green
    for _ in range(4):
        response = requests.get(haproxy.url(tomcats.cluster, "/status"), timeout=5)
        assert response.status_code == 200
    states = servers_state(haproxy.socket_path(tomcats.cluster))
    for address in tomcats.cluster.addresses:
        assert states[tomcats.server_name(address, "blue")] == ("2", "0")  # running, ready
        assert states[tomcats.server_name(address, "green")][1] != "0"  # in maintenance


def servers_state(path: Path) -> dict[str, tuple[str, str]]:
    """haproxy's ``show servers state web``: server name -> (operational, admin) state."""
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))
        client.sendall(b"show servers state web\n")
        text = b"".join(iter(lambda: client.recv(65536), b"")).decode()
    rows = [line.split() for line in text.splitlines()[1:] if line and not line.startswith("#")]
    return {row[3]: (row[5], row[6]) for row in rows}


def test_the_deploy_tool_sees_and_rolls_every_instance_of_a_host(
    hosts: Hosts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host with two instances: status lists both, a rolling deploy takes each in turn."""
    app_dir = tmp_path / app.APP
    tomcat_app.write(hosts.blue_green, app_dir, versions=(), warmup=0)
    for war in hosts.wars.values():
        shutil.copy(war, app_dir / war.name)
    labels = [f"{a}/{n}" for a in hosts.blue_green.cluster.addresses for n in ("blue", "green")]
    shown = json.loads(cli.run(["--json"], app_dir, capsys).out)
    assert [row["host"] for row in shown] == labels
    assert len({row["url"] for row in shown}) == 4  # each instance on its own port
    result = cli.run([hosts.wars[NEW].name], app_dir, capsys)
    assert result.code == 0, result.text
    restarted = [ln.split()[1] for ln in result.out.splitlines() if ln.endswith(" restarting")]
    assert restarted == labels  # one instance after the other, in .config order
    for address, name in hosts.blue_green.all():
        assert identity(hosts.blue_green, address, name) == answer(NEW), (address, name)
    history = json.loads((app_dir / ".deploy-history.jsonl").read_text().splitlines()[-1])
    assert list(history["hosts"]) == labels


def test_the_deploy_tool_deploys_to_a_tomcat_host(
    hosts: Hosts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_dir = tmp_path / app.APP
    socket_path = str(haproxy.socket_path(hosts.single.cluster))
    tomcat_app.write(hosts.single, app_dir, versions=(), warmup=0, balancer=socket_path)
    for war in hosts.wars.values():
        shutil.copy(war, app_dir / war.name)
    result = cli.run([hosts.wars[NEW].name], app_dir, capsys)
    assert result.code == 0, result.text
    assert identity(hosts.single, SINGLE, "main") == answer(NEW)
    status = cli.run([], app_dir, capsys)
    assert status.code == 0, status.text
    assert NEW in status.text


def test_tear_down_leaves_no_jvm_sshd_or_tini_behind(
    hosts: Hosts, capsys: pytest.CaptureFixture[str]
) -> None:
    begin = time.monotonic()
    left = stop_clusters(hosts.root, hosts.started)
    MEASURED["tear-down (s)"] = time.monotonic() - begin
    assert left == [], f"still running after tear-down (ended now): {left}"
    with capsys.disabled():
        print("\ntomcat sandbox: " + ", ".join(f"{k} {v:.2f}" for k, v in MEASURED.items()))

"""Parallel deployment on the real stack: one Tomcat 10 per host, versions deployed
beside each other by its manager, haproxy in front keeping each user on one host
(sshd, Tomcat, haproxy on 127.0.8.x).

Every test gets a fresh app directory and starts from one version, 1.0.125,
deployed and the others retired (``retire --now``), so the tests do not depend
on each other's order.
"""

from __future__ import annotations

import json
import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fabfile.app import extensions
from fabfile.cluster import deadline
from fabfile.engine.phase import Phase
from fabfile.engine.retirement import Retirement
from sandbox import app, cluster, haproxy, tomcat, tomcat_app
from sandbox.sample import build_extension_jar, build_war
from tests import cli
from tests.real.helpers import TomcatSandbox as Sandbox
from tests.real.helpers import fail_on_leftovers, history, kill_when, stop_clusters
from tests.real.test_faults import on_phase

pytestmark = pytest.mark.real

# WARDEPLOY_PARALLEL_NET moves these hosts, like WARDEPLOY_BG_NET the blue/green ones.
NET = os.environ.get("WARDEPLOY_PARALLEL_NET", "127.0.8")
OLD, NEW, OTHER = "1.0.125", "1.0.126", "1.0.127"


def unstartable(war: Path) -> Path:
    """``war`` with a web.xml Tomcat cannot parse: the context fails to start."""
    broken = war.with_name("unstartable-" + war.name)
    with zipfile.ZipFile(war) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"<web-app" if item.filename == "WEB-INF/web.xml" else data)
    final = war.parent / "unstartable" / war.name
    final.parent.mkdir(exist_ok=True)
    broken.rename(final)
    return final


@pytest.fixture(scope="module")
def par(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("parallel")
    out = root / "wars"
    wars = {v: build_war(v, out, artifact_id=app.APP, container="tomcat") for v in (OLD, NEW)}
    wars["broken"] = build_war(
        OTHER, out / "broken", artifact_id=app.APP, container="tomcat", mode="broken"
    )
    wars["unstartable"] = unstartable(
        build_war(OTHER, out / "plain", artifact_id=app.APP, container="tomcat")
    )
    started: list[cluster.Cluster] = []
    try:
        started.append(cluster.up(root / "cluster", 2, f"{NET}.2"))
        tomcats = tomcat.up(started[-1], tomcat.SINGLE, replicate=False)
        tomcat.start_empty(tomcats)
        haproxy.up(tomcats.cluster, haproxy.tomcat_config_text(tomcats, sticky=True))
        yield Sandbox(tomcats, wars)
    finally:
        left = stop_clusters(root, started)
        fail_on_leftovers(left, "the parallel-deployment sandbox")


def set_keys(app_dir: Path, **keys: str) -> None:
    config = app_dir / ".config"
    names = {f"{key} =" for key in keys}
    kept = [ln for ln in config.read_text().splitlines() if ln.split(" =")[0] + " =" not in names]
    config.write_text("\n".join([*kept, *(f"{k} = {v}" for k, v in keys.items())]) + "\n")


@pytest.fixture
def app_dir(par: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A parallel app directory; every host runs OLD, and no other version."""
    return fresh_app(par, tmp_path, capsys)


def fresh_app(
    par: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], balancer: str = ""
) -> Path:
    """`app_dir`, with ``balancer`` as its lb_socket when given (haproxy's counters)."""
    path = tmp_path / app.APP
    tomcat_app.write(
        par.tomcats, path, (), warmup=0, balancer=balancer, ready_timeout=15, strategy="parallel"
    )
    set_keys(path, retire="manual", retire_timeout="2")
    for version in (OLD, NEW):
        (path / par.wars[version].name).write_bytes(par.wars[version].read_bytes())
    first = cli.run([par.wars[OLD].name], path, capsys)
    assert first.code == 0, first.text
    now = cli.run(["retire", "--now"], path, capsys)
    assert now.code == 0, now.text
    assert versions(path, capsys) == {a: [OLD] for a in par.addresses}
    par.wait_in_rotation()  # the first test: haproxy has just seen the app come up
    return path


def rows(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    result = cli.run(["--json"], app_dir, capsys)
    return {str(row["host"]): row for row in json.loads(result.out)}


def versions(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    """Every host's deployed Maven versions, oldest tag first."""
    listed = {host: row["versions"] for host, row in rows(app_dir, capsys).items()}
    return {host: [v["version"] for v in found] for host, found in listed.items()}  # type: ignore[attr-defined]


def sessions(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], int]:
    found = {host: row["versions"] for host, row in rows(app_dir, capsys).items()}
    return {
        (host, v["version"]): v["sessions"]
        for host, listed in found.items()
        for v in listed  # type: ignore[attr-defined]
    }


def served(par: Sandbox) -> set[str]:
    """The versions new users get (no session), asked of every host through haproxy."""
    seen = set()
    for _ in range(4):
        answer = requests.get(par.url("/extension"), timeout=5)
        assert answer.status_code == 200, answer.text
        seen.add(answer.text.split()[0])
    return seen


def logged_in(par: Sandbox, timeout: int = 0) -> tuple[requests.Session, str]:
    """A user logged in through haproxy, and the host its cookie keeps it on."""
    session = requests.Session()
    form = {"user": "alice", **({"timeout": str(timeout)} if timeout else {})}
    answer = session.post(par.url("/login"), form, timeout=5)
    assert answer.status_code == 200, answer.text
    return session, session.cookies["HOST"]


def uses(par: Sandbox, session: requests.Session) -> str:
    """The version that serves this user, and checks it still knows them."""
    me = session.get(par.url("/whoami"), timeout=5)
    assert me.status_code == 200, me.text
    answer = session.get(par.url("/extension"), timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.text.split()[0]


def assert_serving(par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every host serves a verified version (status exits 0)."""
    status = cli.run([], app_dir, capsys)
    assert status.code == 0, status.text
    assert served(par) <= {OLD, NEW}


# -- deploy, sessions and retire ---------------------------------------------------


def test_a_logged_in_user_stays_on_the_old_version_until_logout_then_retire_removes_it(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, home = logged_in(par)
    pids = {a: tomcat.jvm(par.tomcats, a, "main") for a in par.addresses}
    result = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert result.code == 0, result.text
    assert {a: tomcat.jvm(par.tomcats, a, "main") for a in par.addresses} == pids  # no restart
    assert uses(par, alice) == OLD
    assert served(par) == {NEW}
    assert sessions(app_dir, capsys)[(home, OLD)] == 1
    status = cli.run([], app_dir, capsys)
    assert "1.0.125 (##" in status.out and f"is still on {home} (1)" in status.out, status.out

    waited = cli.run(["retire"], app_dir, capsys)
    assert waited.code == 1, waited.text
    assert "still hold sessions" in waited.out and "retire --now" in waited.out
    other = next(a for a in par.addresses if a != home)
    assert versions(app_dir, capsys) == {home: [OLD, NEW], other: [NEW]}
    assert uses(par, alice) == OLD

    assert alice.post(par.url("/logout"), timeout=5).status_code == 200
    done = cli.run(["retire"], app_dir, capsys)
    assert done.code == 0, done.text
    assert versions(app_dir, capsys) == {a: [NEW] for a in par.addresses}
    assert [e["action"] for e in history(app_dir)][-2:] == ["retire", "retire"]
    secret = par.tomcats.password()  # used all along, shown nowhere
    shown = [result.text, status.text, waited.text, done.text, cli.run(["-j"], app_dir, capsys).out]
    assert all(secret not in text for text in shown)
    assert secret not in (app_dir / ".deploy-history.jsonl").read_text()


def test_retire_after_a_deploy_waits_for_a_session_to_expire_and_never_takes_the_newest(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(app_dir, retire="auto", retire_timeout="20")
    _, home = logged_in(par, timeout=2)  # expires 2 s after its last request
    started = time.monotonic()
    result = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert result.code == 0, result.text
    assert f"{home}: undeployed 1.0.125 (##" in result.out and "no old version left" in result.out
    assert time.monotonic() - started >= 2
    assert versions(app_dir, capsys) == {a: [NEW] for a in par.addresses}
    now = cli.run(["retire", "--now"], app_dir, capsys)  # the newest stays, even --now
    assert now.code == 0 and versions(app_dir, capsys) == {a: [NEW] for a in par.addresses}


@pytest.mark.parametrize(("first", "second"), [("1.0.9", "1.0.10"), ("9", "10")])
def test_tags_sort_like_the_releases_so_the_later_one_serves_new_sessions(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str], first: str, second: str
) -> None:
    for version in (first, second):
        war = build_war(version, app_dir, artifact_id=app.APP, container="tomcat")
        result = cli.run([war.name], app_dir, capsys)
        assert result.code == 0, result.text
    assert served(par) == {second}
    listed = rows(app_dir, capsys)[par.addresses[0]]["versions"]
    tags = [v["tag"] for v in listed]  # type: ignore[attr-defined]
    assert tags == sorted(tags) and tags[-1].endswith("-" + second)
    assert [v["newest"] for v in listed] == [False, False, True]  # type: ignore[attr-defined]


# -- what fails, and what it leaves -------------------------------------------------


@pytest.mark.parametrize("kind", ["broken", "unstartable"])
def test_a_version_that_fails_is_undeployed_and_the_old_one_keeps_serving(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    result = cli.run([str(par.wars[kind])], app_dir, capsys)
    assert result.code == 1, result.text
    first = par.addresses[0]
    if kind == "broken":
        assert f"{first}: not verified: http://{first}:8080/status answered '" in result.err
        assert "500" in result.err
    else:  # the manager's own words
        assert "said deploying" in result.err and "FAIL - " in result.err, result.err
    assert f"{first}: ##" in result.err and "was undeployed again; 1.0.125 (##" in result.err
    assert "keeps serving" in result.err
    assert versions(app_dir, capsys) == {a: [OLD] for a in par.addresses}  # none reached
    assert served(par) == {OLD}


def test_a_version_not_ready_in_time_names_ready_timeout_and_what_versions_took_before(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fixture's first deploy recorded how long its version took from deploy to ready;
    a version whose /status answers 500 for less than error_grace fails at ready_timeout,
    which the error names."""
    took = history(app_dir)[0]["hosts"][par.addresses[0]]["restart_to_ready"]
    set_keys(app_dir, ready_timeout="10", error_grace="30")
    result = cli.run([str(par.wars["broken"])], app_dir, capsys)
    assert result.code == 1, result.text
    first = par.addresses[0]
    assert f"{first}: not verified within 10 s (ready_timeout): " in result.err, result.err
    assert f"The limit was ready_timeout = 10 s ({app_dir / '.config'}:" in result.err
    assert f"{first} took {took:.1f} s from deploy to ready in its last recorded" in result.err
    assert "was undeployed again; 1.0.125 (##" in result.err
    assert versions(app_dir, capsys) == {a: [OLD] for a in par.addresses}
    assert served(par) == {OLD}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("manager_url", "http://{host}:8080/nomanager/text", "is not there (HTTP 404)"),
        ("manager_url", "http://{host}:9/manager/text", "does not answer"),
        ("password", "not-the-password", "refused user 'deploy' (HTTP 401)"),
    ],
)
def test_manager_problems_are_refused_in_preflight_and_nothing_is_deployed(
    par: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    value: str,
    expected: str,
) -> None:
    if key == "password":
        monkeypatch.setenv("DEPLOY_SECRET_MANAGER_PASSWORD", value)
    else:
        set_keys(app_dir, **{key: value})
    result = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert result.code == 4, result.text
    assert expected in result.err and "nothing was changed" in result.err
    if key == "password":  # the secret is named by its source, never shown
        assert "$DEPLOY_SECRET_MANAGER_PASSWORD" in result.err
        assert value not in result.text and value not in json.dumps(history(app_dir))
    monkeypatch.undo()
    set_keys(app_dir, manager_url="")
    assert versions(app_dir, capsys) == {a: [OLD] for a in par.addresses}


def test_a_version_tag_this_tool_did_not_write_is_refused_in_preflight(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = par.addresses[0]  # the node is a directory here: its manager reads the WAR as is
    war = f"file:{par.wars[OLD]}"
    deployed = tomcat.manager_get(par.tomcats, host, "main", f"deploy?path=/&version=9&war={war}")
    assert deployed.startswith("OK"), deployed
    try:
        result = cli.run([par.wars[NEW].name], app_dir, capsys)
        assert result.code == 4, result.text
        assert f"{host}: the Tomcat manager lists version(s) ##9, not tagged by this tool" in (
            result.err
        )
        assert "Tomcat compares tags as strings" in result.err
    finally:
        tomcat.manager_get(par.tomcats, host, "main", "undeploy?path=/&version=9")
    assert versions(app_dir, capsys) == {a: [OLD] for a in par.addresses}


def test_a_second_version_that_would_not_fit_the_heap_is_refused_unless_forced(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(app_dir, version_heap_mb="100000")
    refused = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert refused.code == 4, refused.text
    assert "one more version needs about 100000 MiB of heap (version_heap_mb)" in refused.err
    assert "MiB are free" in refused.err and "--force" in refused.err
    assert versions(app_dir, capsys) == {a: [OLD] for a in par.addresses}
    forced = cli.run([par.wars[NEW].name, "--force"], app_dir, capsys)
    assert forced.code == 0, forced.text
    assert served(par) == {NEW}


# -- extensions and rollback --------------------------------------------------------


def test_extensions_load_in_both_versions_and_a_changed_jar_is_all_that_is_sent(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, _ = logged_in(par)
    answer = alice.get(par.url("/extension"), timeout=5).text
    assert answer == f"{OLD} {tomcat_app.EXTENSION_TEXT}\n"
    jar = app_dir / tomcat_app.EXTENSION_JAR
    build_extension_jar(jar, "Plugin two")
    result = cli.run([par.wars[OLD].name], app_dir, capsys)  # same WAR, new extension
    assert result.code == 0, result.text
    sent = {host: r["bytes_sent"] for host, r in history(app_dir)[-1]["hosts"].items()}
    assert sent == {a: jar.stat().st_size for a in par.addresses}
    assert requests.get(par.url("/extension"), timeout=5).text == f"{OLD} Plugin two\n"
    assert alice.get(par.url("/extension"), timeout=5).text == answer  # its own copy


def test_rollback_sends_new_sessions_back_while_users_of_the_new_version_keep_it(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_extension_jar(app_dir / tomcat_app.EXTENSION_JAR, "Plugin two")  # goes with NEW
    deployed = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    bob, _ = logged_in(par)
    assert uses(par, bob) == NEW
    assert bob.get(par.url("/extension"), timeout=5).text == f"{NEW} Plugin two\n"
    started = time.monotonic()
    result = cli.run(["rollback"], app_dir, capsys)
    seconds = time.monotonic() - started
    assert result.code == 0, result.text
    assert "0 bytes sent" in result.out
    assert served(par) == {OLD}
    fresh = requests.get(par.url("/extension"), timeout=5).text  # OLD's own extension is back
    assert fresh == f"{OLD} {tomcat_app.EXTENSION_TEXT}\n"
    assert uses(par, bob) == NEW
    print(f"\nparallel rollback of {len(par.addresses)} hosts: {seconds:.2f} s")


# -- interruptions ------------------------------------------------------------------


def test_ctrl_c_during_a_deploy_leaves_every_host_serving_and_running_again_finishes(
    par: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    where = par.addresses[1]  # its new version is deployed, not yet verified
    on_phase(monkeypatch, where, Phase.WAITING, lambda: os.kill(os.getpid(), signal.SIGINT))
    result = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert result.code == 130, result.text
    monkeypatch.undo()
    message = history(app_dir)[-1]["message"]
    assert f"interrupted at node {where} in phase 'waiting for /status'" in message
    assert f"{where}: ##" in message and "was undeployed again" in message
    assert_serving(par, app_dir, capsys)
    assert versions(app_dir, capsys)[where] == [OLD]  # the one cut short was taken back
    again = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert again.code == 0, again.text
    assert served(par) == {NEW}


def test_a_killed_coordinator_leaves_every_host_serving_and_running_again_finishes(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = par.addresses[1]
    kill_when(
        ["deploy", par.wars[NEW].name],
        app_dir,
        lambda text: where in text and "deploying beside" in text,
    )
    assert_serving(par, app_dir, capsys)
    # the killed run's lock on the nodes holds until its lease ends: wait for it
    again = cli.run([par.wars[NEW].name, "--lock-wait", "60"], app_dir, capsys)
    assert again.code == 0, again.text
    assert served(par) == {NEW}
    # what the killed run may have left (deployed, never verified) retires with OLD
    assert cli.run(["retire"], app_dir, capsys).code == 0
    assert versions(app_dir, capsys) == {a: [NEW] for a in par.addresses}


def test_ctrl_c_during_retire_leaves_both_versions_serving(
    par: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, home = logged_in(par)
    assert cli.run([par.wars[NEW].name], app_dir, capsys).code == 0
    set_keys(app_dir, retire_timeout="30")
    original = Retirement._old_versions
    calls = []

    def interrupt_on_second_look(self: Retirement, say: bool = True) -> object:
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, say)

    monkeypatch.setattr(Retirement, "_old_versions", interrupt_on_second_look)
    result = cli.run(["retire"], app_dir, capsys)
    monkeypatch.undo()
    assert result.code == 130, result.text
    assert history(app_dir)[-1]["outcome"] == "interrupted"
    assert versions(app_dir, capsys)[home] == [OLD, NEW]
    assert uses(par, alice) == OLD and served(par) == {NEW}
    assert alice.post(par.url("/logout"), timeout=5).status_code == 200
    assert cli.run(["retire"], app_dir, capsys).code == 0


def test_the_extensions_manifest_is_what_the_release_records(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = history(app_dir)[-2]["release"]["extensions"]  # the fixture's deploy
    jar = app_dir / tomcat_app.EXTENSION_JAR
    assert extensions.entries(recorded) == [
        (extensions.read(app_dir)[0].sha256, "WEB-INF/lib/" + jar.name)
    ]


def test_a_killed_retire_leaves_both_versions_serving_and_running_again_finishes(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, home = logged_in(par)
    assert cli.run([par.wars[NEW].name], app_dir, capsys).code == 0
    set_keys(app_dir, retire_timeout="30")
    kill_when(  # at the countdown: alice's session holds the old version
        ["deploy", "retire"],
        app_dir,
        lambda text: f"{home}: 1.0.125 (##" in text and "holds 1 session(s)" in text,
    )
    assert versions(app_dir, capsys)[home] == [OLD, NEW]
    assert uses(par, alice) == OLD and served(par) == {NEW}
    assert alice.post(par.url("/logout"), timeout=5).status_code == 200
    again = cli.run(["retire", "--lock-wait", "60"], app_dir, capsys)  # the killed one's lease
    assert again.code == 0, again.text
    assert versions(app_dir, capsys) == {a: [NEW] for a in par.addresses}


# -- configuration -------------------------------------------------------------------


def test_each_host_gets_its_own_settings_and_a_logging_change_is_live(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = par.addresses
    (app_dir / f"config.{second}.properties").write_text("greeting=Hello from the second host\n")
    deployed = cli.run([par.wars[NEW].name], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    instance = par.tomcats.instances[0]
    pages = {a: par.page(a, instance, "/") for a in par.addresses}
    assert "Hello from the sandbox" in pages[first]
    assert "Hello from the second host" in pages[second]
    assert cli.run(["config", "diff"], app_dir, capsys).code == 0

    before = {a: par.facts(a, instance) for a in par.addresses}
    logback = app_dir / "logback.xml"
    logback.write_text(logback.read_text().replace('level="INFO"', 'level="DEBUG"'))
    pushed = cli.run(["logging"], app_dir, capsys)
    assert pushed.code == 0, pushed.text
    for address in par.addresses:
        after = par.facts(address, instance)
        assert after["log-level"] == "DEBUG" and after["pid"] == before[address]["pid"]
    assert cli.run(["config", "diff"], app_dir, capsys).code == 0


# -- secrets in the context file -----------------------------------------------------------

SECRET = "jdbc-s3cr3t-on-no-command-line"


def with_secret_context(war: Path) -> Path:
    """``war`` with a META-INF/context.xml holding a password, as JDBC resources do."""
    value = f'name="dbPassword" value="{SECRET}" type="java.lang.String"'
    context = f"<Context><Environment {value}/></Context>"
    final = war.parent / "secret" / war.name
    final.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(war) as source, zipfile.ZipFile(final, "w") as target:
        for item in source.infolist():
            if item.filename != "META-INF/context.xml":
                target.writestr(item, source.read(item))
        target.writestr("META-INF/context.xml", context)
    return final


def test_the_context_file_never_goes_on_a_command_line_nor_into_the_nodes_records(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What sshd runs on the node (``sh -c SCRIPT``: its argv, in ``ps``) is each script
    the sessions send: none holds the context file's text; it goes on stdin."""
    war = with_secret_context(par.wars[NEW])
    (app_dir / war.name).write_bytes(war.read_bytes())
    sent: list[tuple[str, bytes]] = []
    execute = deadline.execute

    def recorded(connection: Any, script: str, *args: Any) -> deadline.Ran:
        sent.append((script, args[2] if len(args) > 2 else b""))
        return execute(connection, script, *args)

    monkeypatch.setattr(deadline, "execute", recorded)
    result = cli.run([war.name], app_dir, capsys)
    assert result.code == 0, result.text
    assert served(par) == {NEW}
    assert [s for s, _ in sent if SECRET in s] == []
    assert len([i for _, i in sent if SECRET.encode() in i]) == len(par.addresses)  # on stdin
    for address in par.addresses:
        records = par.tomcats.cluster.home(address) / "releases" / app.APP
        assert SECRET not in (records / "releases.log").read_text()
        assert SECRET not in (records / "current").read_text()
        contexts = [p.read_text() for p in (records / "versions").glob("*.xml")]
        assert [SECRET in text for text in contexts].count(True) == 1  # the new version's

"""Blue/green on the real stack: two Tomcat 10 colours per host with sessions
replicated between them, haproxy in front (sshd, Tomcat, haproxy on 127.0.5.x).

Every test gets a fresh app directory whose first deploy brings the live colours
to 1.0.125 (a no-op when they run it already); which colour is live is read
from haproxy, never assumed, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fabfile.cluster.balancer import Balancer
from fabfile.engine import strategies
from fabfile.engine.phase import Phase
from sandbox import app, cluster, haproxy, tomcat, tomcat_app, tomcat_conf
from sandbox.sample import DEFAULT_GROUP_ID, build_war
from tests import cli
from tests.real.helpers import TomcatSandbox as Sandbox
from tests.real.helpers import (
    fail_on_leftovers,
    history,
    kill_when,
    server_states,
    stop_clusters,
    verdicts,
)
from tests.real.test_faults import accepted_logins, on_phase
from tests.real.test_verdicts import Load

pytestmark = pytest.mark.real

# WARDEPLOY_BG_NET moves these hosts, like WARDEPLOY_TOMCAT_NET the other Tomcat ones.
NET = os.environ.get("WARDEPLOY_BG_NET", "127.0.5")
OLD, NEW, OTHER = "1.0.125", "1.0.126", "1.0.127"


@pytest.fixture(scope="module")
def bg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("blue-green")
    out = root / "wars"
    wars = {v: build_war(v, out, artifact_id=app.APP, container="tomcat") for v in (OLD, NEW)}
    for name, mode in (("broken", "broken"), ("hang", "hang"), ("plain", "ok")):
        wars[name] = build_war(
            OTHER, out / name, artifact_id=app.APP, container="tomcat", mode=mode,
            distributable=name != "plain",
        )  # fmt: skip
    started: list[cluster.Cluster] = []
    try:
        started.append(cluster.up(root / "cluster", 2, f"{NET}.2"))
        tomcats = tomcat.up(started[-1], tomcat.BLUE_GREEN, replicate=True, war=wars[OLD])
        haproxy.up(tomcats.cluster, haproxy.tomcat_config_text(tomcats))
        yield Sandbox(tomcats, wars)
    finally:
        left = stop_clusters(root, started)
        fail_on_leftovers(left, "the blue/green sandbox")


@pytest.fixture
def app_dir(bg: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A blue/green app directory whose live colours run OLD."""
    path = tmp_path / app.APP
    socket = str(haproxy.socket_path(bg.tomcats.cluster))
    tomcat_app.write(
        bg.tomcats, path, (), warmup=0, balancer=socket, ready_timeout=15, strategy="blue-green"
    )
    for version in (OLD, NEW):
        shutil.copy(bg.wars[version], path / bg.wars[version].name)
    first = cli.run([bg.wars[OLD].name], path, capsys)
    assert first.code == 0, first.text
    return path


def test_a_sticky_users_requests_count_in_the_verdicts_counters(bg: Sandbox, app_dir: Path) -> None:
    """haproxy's cookie sends a logged-in user to their host without its balancing
    algorithm: those requests count for a verdict as much as anybody's (haproxy's
    ``lbtot`` counted the login alone)."""
    nodes = strategies.load(app_dir / ".config").nodes
    balancer = Balancer(str(haproxy.socket_path(bg.tomcats.cluster)))
    session = logged_in(bg)
    before = balancer.counters(nodes)
    for _ in range(20):
        assert session.get(bg.url("/"), timeout=5).status_code == 200
    after = balancer.counters(nodes)
    counted = {label: (after[label] - before[label]).requests for label in after}
    assert sum(counted.values()) >= 20, counted


def rows(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    result = cli.run(["--json"], app_dir, capsys)
    return {str(row["host"]): row for row in json.loads(result.out)}


def live(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The live colour of every host (``ADDRESS/COLOUR``), from haproxy's state."""
    return [host for host, row in rows(app_dir, capsys).items() if row["live"]]


def idle(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [host for host, row in rows(app_dir, capsys).items() if not row["live"]]


def served(bg: Sandbox, session: requests.Session | None = None) -> str:
    """The version haproxy's frontend serves now."""
    answer = (session or requests).get(bg.url(), timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.text.partition("\n")[0].split()[-1]


def logged_in(bg: Sandbox) -> requests.Session:
    """A user logged in through haproxy; haproxy's cookie keeps them on one host."""
    session = requests.Session()
    answer = session.post(bg.url("/login"), {"user": "alice"}, timeout=5)
    assert answer.status_code == 200, answer.text
    return session


def whoami(bg: Sandbox, session: requests.Session) -> tuple[int, str]:
    answer = session.get(bg.url("/whoami"), timeout=5)
    return answer.status_code, answer.text.strip()


def set_instance_key(app_dir: Path, colour: str, key: str, value: str) -> None:
    config = app_dir / ".config"
    section = f"[instance:{colour}]\n"
    text = config.read_text()
    assert section in text
    config.write_text(text.replace(section, f"{section}{key} = {value}\n"))


def set_deploy_key(app_dir: Path, key: str, value: str) -> None:
    config = app_dir / ".config"
    assert "[deploy]\n" in config.read_text()
    config.write_text(config.read_text().replace("[deploy]\n", f"[deploy]\n{key} = {value}\n"))


def restarts(entry: dict[str, Any], labels: list[str]) -> list[tuple[float, float]]:
    """When each colour's restart began and when it was verified, in seconds since the
    run's start, as the run recorded them (its phases, and restart_to_ready)."""
    spans = []
    for label in labels:
        host = entry["hosts"][label]
        began = dict(host["phases"])["restarting"]
        spans.append((began, began + host["restart_to_ready"]))
    return sorted(spans)


def overlap(spans: list[tuple[float, float]]) -> bool:
    """Whether every one of the spans was under way at one same moment."""
    return max(began for began, _ in spans) < min(ended for _, ended in spans)


# -- status ----------------------------------------------------------------------


def test_status_shows_both_colours_and_which_is_live_from_haproxy(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = rows(app_dir, capsys)
    assert sorted(shown) == sorted(f"{a}/{n}" for a, n in bg.tomcats.all())
    for address in bg.addresses:
        colours = {h: r for h, r in shown.items() if h.startswith(f"{address}/")}
        assert sorted(r["live"] for r in colours.values()) == [False, True]  # type: ignore[type-var]
        for row in colours.values():
            assert row["haproxy"] == ("UP" if row["live"] else "MAINT")
            assert row["ok"] is True
    table = cli.run([], app_dir, capsys)
    assert table.code == 0, table.text
    assert table.out.count(" live ") == 2 and table.out.count(" idle ") == 2


# -- deploy, switch, rollback -----------------------------------------------------


def test_a_logged_in_user_stays_logged_in_through_deploy_and_rollback(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = logged_in(bg)
    before = live(app_dir, capsys)
    deployed = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    assert whoami(bg, user) == (200, "alice")
    assert served(bg, user) == NEW
    assert sorted(live(app_dir, capsys)) == sorted(idle_of(before))
    jvms = bg.jvms()
    began = time.monotonic()
    back = cli.run(["rollback"], app_dir, capsys)
    seconds = time.monotonic() - began
    assert back.code == 0, back.text
    assert whoami(bg, user) == (200, "alice")
    assert served(bg, user) == OLD
    assert live(app_dir, capsys) == before
    assert bg.jvms() == jvms  # a switch back: nothing restarted
    entry = history(app_dir)[-1]
    assert entry["action"] == "rollback" and entry["version"] == OLD
    assert [h["bytes_sent"] for h in entry["hosts"].values()] == [0] * 4
    with capsys.disabled():
        print(f"\nblue/green rollback of 2 hosts: {seconds:.2f} s")


def idle_of(live_colours: list[str]) -> list[str]:
    other = {"blue": "green", "green": "blue"}
    return [f"{h.split('/')[0]}/{other[h.split('/')[1]]}" for h in live_colours]


def test_the_idle_colours_start_at_once_and_idle_starts_1_is_the_old_order(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read from what the runs record (each colour's phases and restart_to_ready), not
    from the test's clock; the deploy under a paced load through haproxy."""
    from tests.real.test_blue_green_now import Paced  # that module imports this one

    before = live(app_dir, capsys)
    set_deploy_key(app_dir, "idle_starts", "1")
    plan = cli.run([bg.wars[OLD].name, "--dry-run", "--force"], app_dir, capsys)
    assert "order: idle colours one host after another (idle_starts = 1)" in plan.out
    reset = cli.run([bg.wars[OLD].name, "--no-switch", "--force"], app_dir, capsys)
    assert reset.code == 0, reset.text  # every idle colour restarted, one after another
    spans = restarts(history(app_dir)[-1], idle_of(before))
    assert not overlap(spans), spans
    config = app_dir / ".config"
    config.write_text(config.read_text().replace("idle_starts = 1\n", ""))
    plan = cli.run([bg.wars[NEW].name, "--dry-run"], app_dir, capsys)
    assert "order: idle colours of all 2 host(s) at once, each verified on its own" in plan.out
    with Paced(bg.url()) as load:
        deployed = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    assert load.results and load.failures() == []
    spans = restarts(history(app_dir)[-1], idle_of(before))
    assert overlap(spans), spans
    assert sorted(live(app_dir, capsys)) == sorted(idle_of(before)) and served(bg) == NEW


def test_no_switch_verifies_the_idle_colours_and_switch_sends_the_traffic(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = live(app_dir, capsys)
    dark = cli.run([bg.wars[NEW].name, "--no-switch"], app_dir, capsys)
    assert dark.code == 0, dark.text
    assert "deploy switch --app-dir" in dark.out
    assert live(app_dir, capsys) == before and served(bg) == OLD
    shown = rows(app_dir, capsys)
    assert {shown[h]["version"] for h in idle_of(before)} == {NEW}  # on their own ports
    assert history(app_dir)[-1]["action"] == "deploy --no-switch"
    jvms = bg.jvms()
    logins = accepted_logins(bg.tomcats.cluster)
    switched = cli.run(["switch"], app_dir, capsys)
    assert switched.code == 0, switched.text
    # one login per host: the lock's round trip reads both colours, the pre-flight reuses it
    assert accepted_logins(bg.tomcats.cluster) - logins == len(bg.addresses)
    assert served(bg) == NEW and sorted(live(app_dir, capsys)) == sorted(idle_of(before))
    again = cli.run(["switch"], app_dir, capsys)
    assert again.code == 0, again.text
    assert served(bg) == OLD and live(app_dir, capsys) == before
    assert bg.jvms() == jvms
    assert [e["action"] for e in history(app_dir)[-2:]] == ["switch", "switch"]


def test_switch_and_rollback_dry_runs_say_which_colour_takes_the_traffic_and_change_nothing(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = live(app_dir, capsys)
    first = before[0].split("/")[0]
    planned = cli.run([bg.wars[NEW].name, "--dry-run"], app_dir, capsys)
    assert planned.code == 0 and f"switch {first}: haproxy sets " in planned.out, planned.text
    unswitched = cli.run([bg.wars[NEW].name, "--no-switch", "--dry-run"], app_dir, capsys)
    assert unswitched.code == 0 and "haproxy sets" not in unswitched.out, unswitched.text
    dark = cli.run([bg.wars[NEW].name, "--no-switch"], app_dir, capsys)
    assert dark.code == 0, dark.text
    records, jvms = len(history(app_dir)), bg.jvms()
    lb = server_states(bg.tomcats.cluster)
    plan = cli.run(["switch", "--dry-run"], app_dir, capsys)
    assert plan.code == 0, plan.text
    assert (
        f"dry run: switch 2 host(s) from their live colours (on {OLD}) to their idle colours "
        f"(on {bg.wars[NEW].name} ({NEW})), strategy blue-green; nothing is changed" in plan.out
    )
    for old, new in zip(before, idle_of(before), strict=True):
        assert f"{new}: idle colour runs it already (verified on /status): no restart" in plan.out
        assert f"{old}: live colour: not touched; the switch takes its traffic away" in plan.out
        host = new.split("/")[0]
        assert (
            f"switch {host}: haproxy sets {new} ready, waits until it is UP, then sets {old} "
            f"maint (its traffic moves from {old} to {new})" in plan.out
        )
    assert "plan: 0 of 4 node(s) change, 0 restart, 0 bytes to send" in plan.out
    assert served(bg) == OLD and live(app_dir, capsys) == before and bg.jvms() == jvms
    assert server_states(bg.tomcats.cluster) == lb
    assert len(history(app_dir)) == records

    switched = cli.run(["switch"], app_dir, capsys)  # what the plan said, for real
    assert switched.code == 0, switched.text
    assert served(bg) == NEW and sorted(live(app_dir, capsys)) == sorted(idle_of(before))

    back = cli.run(["rollback", "--dry-run"], app_dir, capsys)
    assert back.code == 0, back.text
    assert f"dry run: rollback from {bg.wars[NEW].name} ({NEW}) to {bg.wars[OLD].name} " in back.out
    for host in before:  # the colour that was live before still runs OLD: a switch back
        assert f"{host}: idle colour runs it already (verified on /status)" in back.out
    assert served(bg) == NEW and len(history(app_dir)) == records + 1 and bg.jvms() == jvms


def test_the_live_colour_survives_a_haproxy_reload(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    now = live(app_dir, capsys)
    nodes = bg.tomcats.cluster
    state = haproxy.state_path(nodes)
    assert state.exists(), "the deploy tool did not write lb_state_file"
    haproxy.reload(nodes)
    assert live(app_dir, capsys) == now and served(bg) == NEW
    # Without the state file a reload goes back to haproxy.cfg (blue): what the file prevents.
    state.unlink()
    haproxy.reload(nodes)
    assert live(app_dir, capsys) == [f"{a}/blue" for a in bg.addresses]
    assert cli.run([bg.wars[NEW].name], app_dir, capsys).code == 0  # back: a switch only
    assert sorted(live(app_dir, capsys)) == sorted(now) and served(bg) == NEW


# -- failures before the switch ---------------------------------------------------------


@pytest.mark.parametrize("fault", ["broken", "hang", "never restarts"])
def test_a_new_colour_that_fails_never_takes_traffic(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    before = live(app_dir, capsys)
    first_idle = idle_of(before)[0]
    war = str(bg.wars[NEW] if fault == "never restarts" else bg.wars[fault])
    if fault == "never restarts":  # the old JVM keeps answering the old version
        reset = cli.run([bg.wars[OLD].name, "--no-switch", "--force"], app_dir, capsys)
        assert reset.code == 0, reset.text  # the idle colours answer OLD, whatever ran there
        set_instance_key(app_dir, first_idle.split("/")[1], "restart", "true")
    # every idle colour fails: one after another, the first failure stops the run (at
    # once: test_one_idle_colour_that_fails_stops_the_run_before_any_switch)
    set_deploy_key(app_dir, "idle_starts", "1")
    if fault != "broken":  # the old version, or nothing, answers until ready_timeout
        (app_dir / ".config").write_text(
            (app_dir / ".config").read_text().replace("ready_timeout = 15", "ready_timeout = 4")
        )
    result = cli.run([war], app_dir, capsys)
    assert result.code == 1, result.text
    expected = {
        "broken": "answered 'HTTP 500",
        "hang": "not verified within 4 s",
        "never restarts": f"answered '200 {DEFAULT_GROUP_ID}:{app.APP} {OLD}'",
    }[fault]
    assert f"error: {first_idle}: not verified" in result.err and expected in result.err
    assert "Nothing users see changed: haproxy was not switched" in result.err
    assert live(app_dir, capsys) == before and served(bg) == OLD
    entry = history(app_dir)[-1]
    assert entry["outcome"] == "failed"
    assert entry["hosts"][first_idle]["outcome"] == "failed"
    assert {entry["hosts"][h]["outcome"] for h in before} == {"untouched"}


def test_one_idle_colour_that_fails_stops_the_run_before_any_switch(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The idle colours start at once; one is never replaced (its host's restart command
    does nothing, so the old JVM answers): the other is verified on its own port
    meanwhile, but no host is switched, and every host still serves from its live colour."""
    reset = cli.run([bg.wars[OLD].name, "--no-switch", "--force"], app_dir, capsys)
    assert reset.code == 0, reset.text  # every idle colour answers OLD
    before = live(app_dir, capsys)
    failing, other = idle_of(before)
    # the first host's idle colour only: never replaced, and given up on after 4 s; the
    # other keeps ready_timeout = 15, what a healthy Tomcat restart needs on a busy machine
    with (app_dir / ".config").open("a") as out:
        out.write(f"\n[host:{failing.split('/')[0]}]\nrestart = true\nready_timeout = 4\n")
    result = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert result.code == 1, result.text
    assert f"error: {failing}: not verified within 4 s" in result.err
    assert "2 nodes failed" not in result.err
    assert "Nothing users see changed: haproxy was not switched" in result.err
    assert live(app_dir, capsys) == before and served(bg) == OLD
    entry = history(app_dir)[-1]
    assert entry["hosts"][failing]["outcome"] == "failed"
    assert entry["hosts"][other]["outcome"] == "deployed", result.text
    assert {entry["hosts"][h]["outcome"] for h in before} == {"untouched"}
    assert rows(app_dir, capsys)[other]["version"] == NEW  # verified, on its own port
    phases = {label: dict(entry["hosts"][label]["phases"]) for label in (failing, other)}
    failed_at = phases[failing]["failed"]
    assert phases[other]["restarting"] < failed_at  # it started before the other failed


def test_a_colour_that_never_joined_the_cluster_stops_the_switch(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = live(app_dir, capsys)
    address, colour = idle_of(before)[0].split("/")
    lonely = dataclasses.replace(tomcat.base_of(bg.tomcats, address, colour), members=())
    tomcat_conf.write_base(lonely, bg.tomcats.password())
    user = logged_in(bg)
    try:
        result = cli.run([bg.wars[NEW].name], app_dir, capsys)
        assert result.code == 1, result.text
        assert f"{address}/{colour} carries 0 of the" in result.err
        assert "has not joined" in result.err and "--force switches anyway" in result.err
        assert live(app_dir, capsys) == before and served(bg, user) == OLD
        assert whoami(bg, user) == (200, "alice")
    finally:
        tomcat_conf.write_base(tomcat.base_of(bg.tomcats, address, colour), bg.tomcats.password())
        tomcat.restart(bg.tomcats, address, colour, timeout=30)


def tomcat_base(bg: Sandbox, address: str, colour: str) -> tomcat_conf.Base:
    return tomcat.base_of(bg.tomcats, address, colour)


def test_a_war_that_is_not_distributable_says_users_will_be_logged_out(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = logged_in(bg)
    result = cli.run([str(bg.wars["plain"])], app_dir, capsys)
    assert result.code == 0, result.text
    assert "users will be logged out by the switch" in result.out
    assert whoami(bg, user)[0] == 401  # what the warning said


def test_a_wrong_manager_password_is_refused_in_preflight(
    bg: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jvms = bg.jvms()
    monkeypatch.setenv("DEPLOY_SECRET_MANAGER_PASSWORD", "not-the-password-123")
    result = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert result.code == 4, result.text
    assert "refused user 'deploy' (HTTP 401)" in result.err
    assert "$DEPLOY_SECRET_MANAGER_PASSWORD" in result.err
    assert "not-the-password-123" not in result.text
    assert "not-the-password-123" not in (app_dir / ".deploy-history.jsonl").read_text()
    assert bg.jvms() == jvms


# -- interruptions -----------------------------------------------------------------


@pytest.mark.parametrize("phase", [Phase.STAGING, Phase.RESTARTING, Phase.SWITCHING])
def test_ctrl_c_leaves_the_cluster_serving_and_running_again_finishes(
    bg: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    phase: Phase,
) -> None:
    before = live(app_dir, capsys)
    targets = idle_of(before)
    # the first colour of a host receives its files; mid-switch: the first host switched
    where = f"{bg.addresses[0]}/blue" if phase == Phase.STAGING else targets[-1]
    fresh = build_war(NEW, app_dir / "fresh", artifact_id=app.APP, container="tomcat")
    on_phase(monkeypatch, where, phase, lambda: os.kill(os.getpid(), signal.SIGINT))
    result = cli.run([str(fresh)], app_dir, capsys)
    assert result.code == 130, result.text
    monkeypatch.undo()
    assert served(bg) in (OLD, NEW)
    entry = history(app_dir)[-1]
    assert entry["outcome"] == "interrupted"
    if phase == Phase.SWITCHING:
        assert entry["hosts"][targets[0]]["outcome"] == "live"  # the first host switched
        assert f"interrupted at node {where} in phase 'switching'" in entry["message"]
    elif phase == Phase.RESTARTING:
        assert live(app_dir, capsys) == before and served(bg) == OLD
    assert_serving(bg, app_dir, capsys)
    again = cli.run([str(fresh)], app_dir, capsys)
    assert again.code == 0, again.text
    assert sorted(live(app_dir, capsys)) == sorted(targets) and served(bg) == NEW


@pytest.mark.parametrize("line", ["restarting", "switching"])
def test_a_killed_coordinator_leaves_the_cluster_serving_and_running_again_finishes(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    before = live(app_dir, capsys)
    targets = idle_of(before)
    fresh = build_war(NEW, app_dir / "fresh", artifact_id=app.APP, container="tomcat")
    kill_when(
        ["deploy", str(fresh)],
        app_dir,
        lambda text: targets[-1] in text and text.rstrip().endswith(line),
    )
    assert served(bg) in (OLD, NEW)
    assert_serving(bg, app_dir, capsys)
    # the killed run's lock on the nodes holds until its lease ends: wait for it
    again = cli.run([str(fresh), "--lock-wait", "60"], app_dir, capsys)
    assert again.code == 0, again.text
    assert sorted(live(app_dir, capsys)) == sorted(targets) and served(bg) == NEW


def assert_serving(bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every host has a colour in rotation that answers Ok (status exits 0)."""
    status = cli.run([], app_dir, capsys)
    for address in bg.addresses:
        shown = [h for h, r in rows(app_dir, capsys).items() if r["live"] and r["ok"]]
        assert any(h.startswith(f"{address}/") for h in shown), status.text


# -- configuration -------------------------------------------------------------------


def test_a_logging_change_is_live_on_both_colours_without_a_restart(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # both colours deployed by the tool, so each JVM started with its logback.xml
    assert cli.run([bg.wars[NEW].name], app_dir, capsys).code == 0
    before = {(a, c): bg.facts(a, c) for a, c in bg.tomcats.all()}
    logback = app_dir / "logback.xml"
    logback.write_text(logback.read_text().replace('level="INFO"', 'level="WARN"'))
    pushed = cli.run(["logging"], app_dir, capsys)
    assert pushed.code == 0, pushed.text
    for (address, colour), was in before.items():
        now = bg.facts(address, colour)
        assert (now["log-level"], now["pid"]) == ("WARN", was["pid"])
    assert cli.run(["config", "diff"], app_dir, capsys).code == 0


def test_a_failing_pre_switch_hook_keeps_the_live_colour(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = live(app_dir, capsys)
    hook = 'env > "$WARDEPLOY_APP_DIR/pre_switch.env"; echo "not now"; exit 1'
    config = app_dir / ".config"
    config.write_text(config.read_text() + f"\n[hooks]\npre_switch = {hook}\n")
    result = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert result.code == 1, result.text
    assert "hook pre_switch: not now" in result.out
    assert "[hooks] pre_switch: the hook exited with 1; traffic was not switched" in result.err
    assert live(app_dir, capsys) == before and served(bg) == OLD
    env = dict(line.split("=", 1) for line in (app_dir / "pre_switch.env").read_text().splitlines())
    assert sorted(env["WARDEPLOY_SWITCHING"].split(",")) == sorted(idle_of(before))
    assert (env["WARDEPLOY_STRATEGY"], env["WARDEPLOY_VERSION"]) == ("blue-green", NEW)
    config.write_text(config.read_text().replace("exit 1", "exit 0"))
    again = cli.run([bg.wars[NEW].name], app_dir, capsys)
    assert again.code == 0, again.text
    assert served(bg) == NEW


def test_a_pre_switch_hook_that_refuses_after_the_canary_says_which_host_is_switched(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    war = build_war(
        "1.0.128", tmp_path, artifact_id=app.APP, container="tomcat"
    )  # no colour has it
    shutil.copy(war, app_dir / war.name)
    before = live(app_dir, capsys)
    hook = (
        'test -e "$WARDEPLOY_APP_DIR/once" || { touch "$WARDEPLOY_APP_DIR/once"; exit 0; }; exit 1'
    )
    for key, value in (("canary", "1"), ("canary_wait", "2"), ("canary_min_requests", "5")):
        set_deploy_key(app_dir, key, value)
    config = app_dir / ".config"
    config.write_text(config.read_text() + f"\n[hooks]\npre_switch = {hook}\n")
    with Load(bg.url("/")) as load:  # traffic for the canary's verdict
        result = cli.run([war.name], app_dir, capsys)
    assert result.code == 1, result.text
    assert "canary " in result.text and "Successful: " in result.text
    canary = idle_of(before)[0]
    assert (
        f"Switched already: {canary} serve(s) the release; haproxy was not switched on the "
        f"other hosts: {before[1]} serve(s)." in result.text
    )
    assert live(app_dir, capsys) == [canary, before[1]]
    assert load.tools == []


def flaky_war(app_dir: Path, tmp_path: Path) -> str:
    """A release that answers /status well and fails every fifth ``/`` (its own 500),
    in the app directory; its file name."""
    flaky = build_war(
        "1.0.190", tmp_path / "flaky", artifact_id=app.APP, container="tomcat", mode="flaky"
    )
    shutil.copy(flaky, app_dir / flaky.name)
    return flaky.name


def test_the_watch_window_switches_a_release_that_fails_its_users_back(
    bg: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flaky = flaky_war(app_dir, tmp_path)
    before = live(app_dir, capsys)
    for key, value in (("watch", "6"), ("on_failure", "rollback"), ("canary_min_requests", "10")):
        set_deploy_key(app_dir, key, value)
    with Load(bg.url("/")) as load:
        result = cli.run([flaky], app_dir, capsys)
    assert result.code == 1, result.text
    assert "watch: Failed: " in result.text and "above max_error_rate" in result.text
    assert "on_failure = rollback; rolled back to the release before" in result.text
    assert live(app_dir, capsys) == before and served(bg) == OLD  # switched back
    deployed, rolled_back = history(app_dir)[-2:]
    assert deployed["outcome"] == "failed" and "watch: Failed: " in verdicts(deployed)
    # before it, the first switch batch's own verdict (Inconclusive with this load: no
    # time is added between two switch batches)
    assert verdicts(deployed).startswith("switch 1/2: ")
    assert rolled_back["action"] == "rollback" and rolled_back["outcome"] == "ok"
    assert load.flaky > 0  # the release failed its users while it served
    assert load.tools == []  # the switches there and back failed no request


def over_ssh(app_dir: Path, bg: Sandbox) -> None:
    """haproxy's socket reached over SSH, as on a balancer of its own (``HOST:/path``):
    a switch then takes what it takes in production (every command an SSH channel),
    not the fraction of a millisecond a local socket's commands take."""
    config = app_dir / ".config"
    socket = str(haproxy.socket_path(bg.tomcats.cluster))
    assert f"lb_socket = {socket}\n" in config.read_text()
    remote = f"lb_socket = {bg.addresses[0]}:{socket}\n"
    config.write_text(config.read_text().replace(f"lb_socket = {socket}\n", remote))


class Outside:
    """A load in processes of their own, ``processes`` of ``clients`` clients each, from
    `go` on, sorted as `Load` sorts it. Between two switch batches no time is added: the
    window is what a switch takes, so the switched host must get canary_min_requests
    meanwhile. Threads of this process could not send them: the tool runs here too,
    and holds the interpreter lock while it switches. Started only once the idle
    colours are verified: on this 2-core machine a load from the start slows their
    Tomcats' start past ready_timeout."""

    def __init__(self, url: str, processes: int = 2, clients: int = 4) -> None:
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self.started, self.stop = spawn.Event(), spawn.Event()
        self.counts: multiprocessing.Queue[tuple[int, int, list[str]]] = spawn.Queue()
        self.processes = [
            spawn.Process(target=_load, args=(url, clients, self.started, self.stop, self.counts))
            for _ in range(processes)
        ]
        self.ok = self.flaky = 0
        self.tools: list[str] = []

    def go(self) -> None:
        self.started.set()

    def __enter__(self) -> Outside:
        for process in self.processes:
            process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.started.set()
        self.stop.set()
        for _ in self.processes:
            ok, flaky, tools = self.counts.get(timeout=60)
            self.ok, self.flaky, self.tools = self.ok + ok, self.flaky + flaky, self.tools + tools
        for process in self.processes:
            process.join(timeout=60)


def _load(url: str, clients: int, started: Any, stop: Any, counts: Any) -> None:
    """A child process's load from ``started`` until ``stop``; its counts go back
    through ``counts``. Each client keeps its connection (http.client costs a fraction
    of a `requests` call: more requests a second from the same CPU), with no cookie, so
    haproxy balances every request over the hosts."""
    parts = urllib.parse.urlsplit(url)
    seen: dict[str, Any] = {"ok": 0, "flaky": 0, "tools": []}
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
        while not stop.is_set():
            try:
                connection.request("GET", parts.path or "/")
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                what = type(error).__name__
                connection.close()
            else:
                flaky = response.status == 500 and body.startswith(b"flaky build")
                what = "ok" if response.status == 200 else "flaky" if flaky else ""
                what = what or f"HTTP {response.status}"
            with lock:
                if what in ("ok", "flaky"):
                    seen[what] += 1
                else:
                    seen["tools"].append(what)
        connection.close()

    started.wait()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts.put((seen["ok"], seen["flaky"], seen["tools"]))


@pytest.mark.parametrize("on_failure", ["rollback", "stop"])
def test_a_switch_batch_that_fails_its_users_is_switched_back_before_the_next(
    bg: Sandbox,
    app_dir: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    on_failure: str,
) -> None:
    flaky = flaky_war(app_dir, tmp_path)
    before = live(app_dir, capsys)  # batch = 1, canary = 0, watch = 0: the defaults
    for key, value in (("on_failure", on_failure), ("canary_min_requests", "5")):
        set_deploy_key(app_dir, key, value)
    config = app_dir / ".config"  # a warm-up in which the load gets going before the switch
    assert "warmup = 0\n" in config.read_text()
    config.write_text(config.read_text().replace("warmup = 0\n", "warmup = 2\n"))
    over_ssh(app_dir, bg)
    with Outside(bg.url("/")) as load, Load(bg.url("/")) as light:
        on_phase(monkeypatch, idle_of(before)[0], Phase.WARMING, load.go)
        result = cli.run([flaky], app_dir, capsys)
    assert result.code == 1, result.text
    assert "switch 1/2: Failed: " in result.text and "above max_error_rate" in result.text
    assert live(app_dir, capsys) == before and served(bg) == OLD  # every host on its old colour
    runs = history(app_dir)
    deployed = runs[-2] if on_failure == "rollback" else runs[-1]
    assert deployed["outcome"] == "failed" and verdicts(deployed).startswith("switch 1/2: Failed: ")
    if on_failure == "rollback":
        assert "on_failure = rollback; rolled back to the release before" in result.text
        assert runs[-1]["action"] == "rollback" and runs[-1]["outcome"] == "ok"
    else:
        first, second = before
        assert (
            f"Switched back to their old colour: {first}; haproxy was not switched on the "
            f"other hosts: {second} serve(s)." in result.text
        )
        assert "switch 2/2" not in result.text
    assert load.flaky + light.flaky > 0  # the release failed its users while it served
    assert load.tools == [] and light.tools == []  # the switches there and back failed none

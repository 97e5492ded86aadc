"""``become_user``: installs and the restart go through ``sudo -n -u USER``; files keep
their mode and owner; file contents never go on a command line. The node's scripts run
in a real ``sh``, with a ``sudo`` on PATH that logs its argv and runs the command."""

from __future__ import annotations

import dataclasses
import os
import pwd
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from fabfile.app.config import NodeConfig
from fabfile.app.release import Release
from fabfile.cluster import become, restartclaim
from fabfile.cluster.holdings import Holdings
from fabfile.cluster.manager import Manager
from fabfile.engine.plan import Plan
from fabfile.engine.runtimes.parallel import ParallelVersions
from fabfile.engine.steps import Steps
from fabfile.engine.target import Target
from fabfile.errors import ConfigError, NodeError
from fabfile.records.history import Action
from tests.fakes import node_configs
from tests.unit.helpers import LocalNode, release, sh, staged

SECRET = "jdbc-password-s3cr3t"
ROOT = os.geteuid() == 0


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    (path / "releases" / "shop" / "blobs").mkdir(parents=True)
    return path


@pytest.fixture
def sudo_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``sudo`` first on PATH: logs each call's argv, wants ``-n -u jetty --``, runs
    the rest (as the caller: the test checks the words, not the switch of user)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "sudo.log"
    bin_dir.mkdir()
    script = bin_dir / "sudo"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {log}\n'
        '[ "$1 $2 $3 $4" = "-n -u jetty --" ] || { echo "sudo: bad words: $*" >&2; exit 1; }\n'
        'shift 4; exec "$@"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    log.write_text("")
    return log


def config_of(tmp_path: Path, home: Path, *lines: str) -> NodeConfig:
    return node_configs(
        tmp_path,
        "hosts = web1",
        "releases_dir = ~/releases/shop",
        f"war_path = {home}/webapps/root.war",
        f"config_path = {home}/conf/config.properties",
        f"jettyrc_path = {home}/conf/.jettyrc",
        *lines,
    )[0]


def installed(tmp_path: Path, home: Path, *lines: str) -> tuple[LocalNode, Release]:
    node = LocalNode(config_of(tmp_path, home, *lines), home)
    node.home = str(home)
    return node, staged(release(1), home / "releases" / "shop" / "blobs")


# -- the key ----------------------------------------------------------------------------


def test_become_user_is_read_per_host_and_defaults_to_none(tmp_path: Path, home: Path) -> None:
    nodes = node_configs(
        tmp_path, "hosts = web1, web2", "become_user = jetty", "[host:web2]", "become_user ="
    )
    assert [n.become_user for n in nodes] == ["jetty", ""]
    assert config_of(tmp_path, home).become_user == ""


def test_a_become_user_that_is_not_a_user_name_is_refused_with_file_line_and_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        node_configs(tmp_path, "hosts = web1", "become_user = root; rm -rf /")
    assert ":3: [deploy] become_user = 'root; rm -rf /': expected a user name" in str(caught.value)


# -- the commands built ----------------------------------------------------------------


def test_without_become_user_no_command_names_sudo(tmp_path: Path, home: Path) -> None:
    node, _ = installed(tmp_path, home)
    assert become.prefix("") == ""
    assert become.shell("", "jetty.sh restart") == "jetty.sh restart"
    assert "sudo" not in Holdings.script(node.config, tidy=True)


def test_with_become_user_every_write_and_the_restart_go_through_sudo_n(
    tmp_path: Path, home: Path, sudo_log: Path
) -> None:
    node, target = installed(tmp_path, home, "become_user = jetty")
    node.install(target)
    calls = sudo_log.read_text().splitlines()
    assert [c.split(" ")[4:6] for c in calls] == [["sh", "-c"]] * 3 + [["mv", "-f"]] * 3 + [
        ["rm", "-f"]
    ]
    assert all(c.startswith("-n -u jetty -- ") for c in calls)
    assert (home / "webapps" / "root.war").read_text().startswith("content of")
    restart = become.shell("jetty", "echo restarted by $(id -u)")
    assert restart == "sudo -n -u jetty -- sh -c 'echo restarted by $(id -u)'"
    script = restartclaim.claim_and_restart("~/releases/shop", "{}", 60, "", restart)
    done = sh(script, home)
    assert done.returncode == 0, done.stderr
    assert f"restarted by {os.geteuid()}" in done.stdout
    assert sudo_log.read_text().splitlines()[-1] == (
        "-n -u jetty -- sh -c echo restarted by $(id -u)"
    )


def test_the_installed_files_are_read_as_become_user(
    tmp_path: Path, home: Path, sudo_log: Path
) -> None:
    node, target = installed(tmp_path, home, "become_user = jetty")
    node.install(target)
    sudo_log.write_text("")
    holdings = node.holdings()
    assert holdings.file("config") == target.config
    assert holdings.become == "ok "
    assert "-n -u jetty -- cat " in sudo_log.read_text()
    assert node.read_files([f"{home}/conf/config.properties"]) == [
        (home / "conf" / "config.properties").read_bytes()
    ]


# -- pre-flight's question -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "start"),
    [
        ("sudo: a password is required", "sudo on web1 wants a password for deploy: "),
        ("sh: 1: sudo: not found", "sudo is not installed on web1 (sh: 1: sudo: not found): "),
        (
            "Sorry, user deploy is not allowed to execute '/bin/sh -c echo ok' as jetty",
            "sudo on web1 refused deploy running commands as jetty (Sorry, user deploy is not",
        ),
    ],
)
def test_a_sudo_that_will_not_run_is_said_with_the_rule_to_add(said: str, start: str) -> None:
    message = become.refusal("web1", "deploy", "jetty", become.refused(said + " "))
    assert message.startswith(start)
    assert message.endswith(
        "add a NOPASSWD rule for deploy to run commands as jetty (`deploy ALL=(jetty) "
        "NOPASSWD: ALL` in visudo -f /etc/sudoers.d/wardeploy), or unset become_user"
    )


def test_the_holdings_round_trip_asks_sudo_and_reads_its_refusal(
    tmp_path: Path, home: Path, sudo_log: Path
) -> None:
    node, _ = installed(tmp_path, home, "become_user = jetty")
    assert become.refused(node.holdings().become) == ""
    (sudo_log.parent / "bin" / "sudo").write_text(
        "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n"
    )
    holdings = node.holdings()
    assert become.refused(holdings.become) == "sudo: a password is required"
    assert become.refused(dataclasses.replace(holdings, become=None).become) == ""


# -- mode and owner kept ------------------------------------------------------------------


def test_a_replaced_file_keeps_its_mode_and_owner_a_new_one_gets_the_umasks(
    tmp_path: Path, home: Path
) -> None:
    node, target = installed(tmp_path, home)
    live = home / "conf" / "config.properties"
    live.parent.mkdir(parents=True)
    live.write_text("password=old\n")
    live.chmod(0o600)
    nobody = pwd.getpwnam("nobody")
    if ROOT:
        os.chown(live, nobody.pw_uid, nobody.pw_gid)
    node.install(target)
    assert live.read_text().startswith("content of")
    assert stat.S_IMODE(live.stat().st_mode) == 0o600
    if ROOT:
        assert (live.stat().st_uid, live.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
    war = home / "webapps" / "root.war"  # none before: what the umask gives
    assert stat.S_IMODE(war.stat().st_mode) == 0o666 & ~_umask()
    assert sorted(p.name for p in live.parent.iterdir()) == [".jettyrc", "config.properties"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- contents never on a command line ------------------------------------------------------


def test_the_parallel_context_file_goes_on_stdin_and_stays_out_of_the_records(
    tmp_path: Path, home: Path, sudo_log: Path
) -> None:
    context = f'<Context><Resource name="jdbc/db" password="{SECRET}"/></Context>'
    config = config_of(tmp_path, home, "become_user = jetty")
    node = LocalNode(config, home)
    node.home = str(home)
    wanted = dataclasses.replace(
        staged(release(3), home / "releases" / "shop" / "blobs"), context=context
    )
    scripts: list[tuple[str, bytes]] = []
    run = node._exec

    def seen(script: str, what: str, timeout: float | None = None, stdin: bytes = b"") -> object:
        scripts.append((script, stdin))
        return run(script, what, timeout, stdin)

    node._exec = seen  # type: ignore[method-assign]
    plan = Plan(Action.DEPLOY, wanted, {}, (config,))
    versions = ParallelVersions(plan, cast(Steps, SimpleNamespace(note=print)), cast(Manager, None))
    _, xml = versions._lay_out(Target(node), "000003-1.0.3")
    node.record(wanted)
    assert SECRET in Path(xml).read_text()
    assert [SECRET in stdin.decode() for _, stdin in scripts] == [True, False]
    assert not [script for script, _ in scripts if SECRET in script]
    assert SECRET not in sudo_log.read_text()
    records = home / "releases" / "shop"
    assert SECRET not in (records / "releases.log").read_text()
    assert SECRET not in (records / "current").read_text()
    assert Release.from_json((records / "current").read_text()) == wanted  # by checksums


@pytest.mark.parametrize("user", ["", "jetty"])
def test_a_copy_that_cannot_be_written_stops_the_install_and_changes_nothing(
    tmp_path: Path, home: Path, sudo_log: Path, user: str
) -> None:
    """`become.PUT` is a shell function, called before ``||`` where ``set -e`` does not
    hold: a step that fails (here: the WAR's directory cannot be made) must still end
    the install, as the SSH user and through sudo, before anything is renamed."""
    (home / "blocked").write_text("a file, not a directory")
    blocked = f"war_path = {home}/blocked/inside/root.war"
    node, target = installed(tmp_path, home, f"become_user = {user}", "[host:web1]", blocked)
    with pytest.raises(NodeError, match="installing the release failed"):
        node.install(target)
    assert not (home / "conf" / "config.properties").exists()
    assert not (home / "releases" / "shop" / "current").exists()
    assert not [p for p in home.rglob("*.deploy-new")]

"""Reaching a node: shell quoting, reading its holdings, and SSH plumbing via fabric.testing."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY, Mock

import paramiko
import pytest
from fabric.testing.base import Command, MockRemote, Session

from fabfile.app.release import Release
from fabfile.cluster import connection
from fabfile.cluster.holdings import Holdings, by_label, every_script
from fabfile.cluster.layout import Layout
from fabfile.cluster.node import Node
from fabfile.cluster.shell import sh_path
from fabfile.errors import NodeError
from tests.fakes import node_configs
from tests.unit.helpers import release, staged

HOST = "web1.invalid"  # never resolves: if the SSH mock leaks, the test fails loudly


# The .config lines of the node whose SSH `remote` mocks (see `expect`).
MOCKED = (f"hosts = {HOST}", "user = deployer", "port = 2222")


def sh_printf(word: str, home: Path) -> subprocess.CompletedProcess[bytes]:
    """What a real POSIX sh makes of ``word`` as one argument."""
    return subprocess.run(
        ["sh", "-c", f"printf %s {word}"],
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        cwd=home,
        capture_output=True,
        check=True,
        timeout=10,
    )


# -- sh_path ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "word"),
    [
        ("~", '"$HOME"'),
        ("~/x y", "\"$HOME\"/'x y'"),
        ("~/releases/shop", '"$HOME"/releases/shop'),
        ("/var/lib/jetty9/webapps/root.war", "/var/lib/jetty9/webapps/root.war"),
        ("~root/x", "'~root/x'"),
        ("", "''"),
    ],
)
def test_sh_path_words(path: str, word: str) -> None:
    assert sh_path(path) == word


HOSTILE = [
    "$(touch {canary})",
    "`touch {canary}`",
    "a; touch {canary}",
    "a && touch {canary} || b",
    "it's; touch {canary}",
    "a'; touch {canary}; echo '",
    'say "hi" $(touch {canary})',
    "new\nline; touch {canary}",
    "-n",
    "*",
    "$HOME",
    "back\\slash",
    "tab\there",
    "",
    "~/$(touch {canary})",
    "~/`touch {canary}`",
    "~/x y",
    "~/a'b\"c;d $(touch {canary})",
    "~/",
    "~",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_sh_path_is_one_inert_word_for_a_real_shell(tmp_path: Path, template: str) -> None:
    home = tmp_path / "home dir"
    home.mkdir()
    canary = tmp_path / "pwned"
    path = template.format(canary=canary)
    word = sh_path(path)
    if path == "~" or path.startswith("~/"):
        expected = str(home) + path[1:]
        assert shlex.split(word) == ["$HOME" + path[1:]]
    else:
        expected = path
        assert shlex.split(word) == [path]
    assert sh_printf(word, home).stdout.decode() == expected
    assert not canary.exists()


# -- the holdings ------------------------------------------------------------------


def test_parse_holdings_reads_every_field() -> None:
    r1, r2 = release(1), release(2)
    text = "\n".join(
        [
            "home /home/deployer",
            "free 123456",
            f"blob {r1.war}",
            f"blob {r2.war}",
            f"current {r2.to_json()}",
            f"release {r1.to_json()}",
            f"release {r2.to_json()}",
        ]
    )
    holdings = Holdings.parse(text + "\n")
    assert holdings.home == "/home/deployer"
    assert holdings.free_kib == 123456
    assert holdings.blobs == frozenset({r1.war, r2.war})
    assert holdings.current == r2
    assert holdings.current.war_name == r2.war_name
    assert holdings.installed == (r1, r2)


def test_one_round_trip_reads_every_instance_of_a_host(tmp_path: Path) -> None:
    """Both colours' releases come back apart, each under its label, from a real ``sh``."""
    colours = node_configs(
        tmp_path,
        "hosts = web1",
        "user = u",
        "strategy = blue-green",
        "instances = blue, green",
        "lb_socket = /s",
        "lb_backend = web",
        "war_path = /w/{instance}.war",
        "[instance:blue]",
        "status_url = http://{host}:8081/status",
        "[instance:green]",
        "status_url = http://{host}:8082/status",
    )
    home = tmp_path / "home"
    for config, number in zip(colours, (1, 2), strict=True):
        current = home / Layout.of(config).current(config.instance).removeprefix("~/")
        current.parent.mkdir(parents=True, exist_ok=True)
        current.write_text(release(number).to_json())
    script = every_script(colours, tidy=False)
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    read = by_label(colours, done.stdout)
    assert done.returncode == 0, done.stderr
    assert set(read) == {"web1/blue", "web1/green"}
    assert (read["web1/blue"].current, read["web1/green"].current) == (release(1), release(2))
    assert read["web1/blue"].home == read["web1/green"].home == str(home)
    assert by_label(colours, done.stdout.split("instance 1")[0]).keys() == {"web1/blue"}


def test_what_a_hosts_instances_share_is_read_once_and_given_to_each(tmp_path: Path) -> None:
    """The releases directory's blobs, releases, restart claim and owner are the host's:
    read (and tidied) once, with the first instance, and each instance's holdings have
    them; its own release and files stay its own."""
    colours = node_configs(
        tmp_path,
        "hosts = web1",
        "user = u",
        "strategy = blue-green",
        "instances = blue, green",
        "lb_socket = /s",
        "lb_backend = web",
        "war_path = /w/{instance}.war",
        "[instance:blue]",
        "status_url = http://{host}:8081/status",
        "[instance:green]",
        "status_url = http://{host}:8082/status",
    )
    home = tmp_path / "home"
    layout = Layout.of(colours[0])
    root = home / layout.root.removeprefix("~/")
    (root / "blobs").mkdir(parents=True)
    (root / "blobs" / ("a" * 64)).write_text("war")
    (root / "releases.log").write_text(release(1).to_json() + "\n" + release(2).to_json() + "\n")
    (root / "current.green").write_text(release(2).to_json())
    (root / "restart.claim").write_text("1 2 someone\n")
    script = every_script(colours, tidy=True, locked=True)
    assert script.count("df -Pk") == 1 and script.count("tail -n") == 1
    assert script.count("mkdir -p") == 1 and script.count(".part") == 1
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    read = by_label(colours, done.stdout)
    blue, green = read["web1/blue"], read["web1/green"]
    assert blue.home == green.home == str(home) and green.free_kib == blue.free_kib > 0
    assert blue.blobs == green.blobs == frozenset({"a" * 64})
    assert blue.installed == green.installed == (release(1), release(2))
    assert blue.held == green.held == (release(2),)
    assert blue.claim == green.claim and green.claim is not None
    assert (blue.current, green.current) == (None, release(2))


def test_parse_holdings_of_a_fresh_node() -> None:
    holdings = Holdings.parse("home /home/deployer\nfree \n")
    assert (holdings.free_kib, holdings.blobs, holdings.current) == (0, frozenset(), None)
    assert holdings.installed == ()


def test_damaged_records_are_skipped() -> None:
    r1, r2 = release(1), release(2)
    text = "\n".join(
        [
            "current {not json",
            f"release {r1.to_json()}",
            f"release {r2.to_json()}",
            'release {"war": "abc"}',  # missing fields
            'release {"war": "ab',  # torn by a kill during the append
        ]
    )
    holdings = Holdings.parse(text)
    assert holdings.current is None
    assert holdings.installed == (r1, r2)


@pytest.mark.parametrize("record", ["1", "[]", '"x"', "null"])
def test_records_that_are_not_objects_read_as_no_release(record: str) -> None:
    holdings = Holdings.parse(f"current {record}\nrelease {record}\n")
    assert holdings.current is None
    assert holdings.installed == ()


# -- SSH plumbing with fabric.testing -----------------------------------------------------


class NodeSession(Session):  # type: ignore[misc]
    """fabric's `Session`, expecting the connect timeouts and the transport (packets sent
    at once: `connection._prompt_transport`) that `Node` passes as well.

    fabric's own check wants ``connect(username, hostname, port)`` and nothing else.
    """

    def safety_check(self) -> None:
        self.client.connect.assert_called_once_with(
            hostname=self.host,
            username=self.user,
            port=self.port,
            timeout=ANY,
            banner_timeout=ANY,
            auth_timeout=ANY,
            channel_timeout=ANY,
            transport_factory=connection._prompt_transport,
        )
        for channel, command in zip(self.channels, self.commands, strict=True):
            command.expect_execution(channel)
        opened = self.client.get_transport.return_value.open_session
        assert opened.call_count == len(self.commands)


@pytest.fixture
def remote() -> Iterator[MockRemote]:
    """Mocked SSH; on exit, checks the expected sessions and commands happened."""
    with MockRemote() as mocked:
        yield mocked


def expect(remote: MockRemote, *commands: Command) -> list[Mock]:
    """The mocked channels (fabric's `MockChannel`, a `Mock`), one per command."""
    channels: list[Mock] = remote.expect_sessions(
        NodeSession(host=HOST, user="deployer", port=2222, commands=list(commands))
    )
    return channels


def test_run_returns_stdout(tmp_path: Path, remote: MockRemote) -> None:
    cmd = "deploy-unit-test --never-a-real-command"
    expect(remote, Command(cmd, out=b"hello\n"))
    node = Node(node_configs(tmp_path, *MOCKED)[0])
    assert node.run(cmd, "saying hello") == "hello\n"
    node.close()


def test_a_non_zero_exit_is_a_node_error_naming_the_host(
    tmp_path: Path, remote: MockRemote
) -> None:
    cmd = "deploy-unit-test --never-a-real-command --exit 3"
    expect(remote, Command(cmd, out=b"some output\n", err=b"disk full\n", exit=3))
    with pytest.raises(NodeError) as caught:
        Node(node_configs(tmp_path, *MOCKED)[0]).run(cmd, "reading the releases directory")
    assert str(caught.value) == (
        f"{HOST}: reading the releases directory failed (exit 3): disk full"
    )


def test_install_failure_is_a_node_error_naming_the_host(
    tmp_path: Path, remote: MockRemote
) -> None:
    expect(remote, Command(err=b"cp: cannot create regular file: Permission denied\n", exit=1))
    with pytest.raises(NodeError) as caught:
        Node(node_configs(tmp_path, *MOCKED)[0]).install(release(1))
    message = str(caught.value)
    assert message.startswith(f"{HOST}: installing the release failed (exit 1): ")
    assert "Permission denied" in message


def test_install_sends_one_script_that_a_real_shell_runs_safely(
    tmp_path: Path, remote: MockRemote
) -> None:
    srv = tmp_path / "srv"
    war_path = f"{srv}/my app/ROOT.war"
    config_path = f"{srv}/it's here/config.properties"
    node = Node(
        node_configs(
            tmp_path,
            *MOCKED,
            f"war_path = {war_path}",
            f"config_path = {config_path}",
            "jettyrc_path = ~/jetty rc/.jettyrc",
            "releases_dir = ~/releases/{app}",
        )[0]
    )
    canary = tmp_path / "pwned"
    home = tmp_path / "home"
    blobs = home / "releases" / "shop" / "blobs"
    blobs.mkdir(parents=True)
    fake = release(7, war_name=f"shop-1.0.7'$(touch {canary}).war")
    target = staged(fake, blobs)  # the install checks each copy: true checksums
    (channel,) = expect(remote, Command())
    node.install(target)
    script = channel.exec_command.call_args.args[0]

    for word in (
        shlex.quote(target.war),
        shlex.quote(target.config),
        shlex.quote(target.jettyrc),
        sh_path(war_path),
        sh_path(config_path),
        "\"$HOME\"/'jetty rc/.jettyrc'",
        'd="$HOME"/releases/shop',
        shlex.quote(target.to_json()),
    ):
        assert word in script, word

    # Run exactly what was sent, against a fake node under tmp_path.
    subprocess.run(
        ["sh", "-c", script],
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        cwd=home,
        check=True,
        timeout=10,
    )
    assert Path(war_path).read_text() == f"content of {fake.war[-4:]}"
    assert Path(config_path).read_text() == f"content of {fake.config[-4:]}"
    assert (home / "jetty rc" / ".jettyrc").read_text() == f"content of {fake.jettyrc[-4:]}"
    current = Release.from_json((home / "releases" / "shop" / "current").read_text())
    assert current == target and current.war_name == target.war_name
    log = (home / "releases" / "shop" / "releases.log").read_text().splitlines()
    assert [json.loads(line)["war_name"] for line in log] == [target.war_name]
    assert not canary.exists()
    leftovers = [p.name for p in (srv / "my app").iterdir()]
    assert leftovers == ["ROOT.war"]


def test_install_stages_a_file_at_the_root_beside_its_target(
    tmp_path: Path, remote: MockRemote
) -> None:
    (channel,) = expect(remote, Command())
    node = Node(node_configs(tmp_path, *MOCKED, "war_path = /ROOT.war")[0])
    node.install(release(1))
    script = channel.exec_command.call_args.args[0]
    assert f" /.ROOT.war.{node.run_id}.deploy-new " in script  # the run's own name


def test_a_refused_login_is_a_node_error_naming_host_and_user(
    tmp_path: Path, remote: MockRemote
) -> None:
    (session,) = remote.sessions
    session.client.connect.side_effect = paramiko.AuthenticationException("no")
    node = Node(node_configs(tmp_path, *MOCKED)[0])
    with pytest.raises(NodeError) as caught:
        node.run("deploy-unit-test --never-a-real-command", "anything")
    assert str(caught.value) == (
        f"{HOST}: SSH login as 'deployer' refused; check user and identity_file"
    )
    session.client.connect.assert_called_once()


def test_absolute_replaces_the_tilde_with_the_node_home(tmp_path: Path) -> None:
    node = Node(node_configs(tmp_path, *MOCKED)[0])
    node.home = "/home/deployer"
    assert node.absolute("~") == "/home/deployer"
    assert node.absolute("~/releases/shop") == "/home/deployer/releases/shop"
    assert node.absolute("/srv/~/x") == "/srv/~/x"
    assert node.absolute("~other/x") == "~other/x"

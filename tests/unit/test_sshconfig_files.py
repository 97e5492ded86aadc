"""The ssh_config whole: Include followed, commands refused in a file .config names,
and the known_hosts files ssh would read, with what wins."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from fabfile.app import config, knownhosts
from fabfile.cluster import connection, hostkeys
from fabfile.errors import ConfigError


def app(tmp_path: Path, ssh: str, *lines: str, named: bool = True) -> config.AppConfig:
    """An app whose .config names ``ssh`` as its ssh_config (or leaves it to ~/.ssh/config)."""
    (tmp_path / "ssh_config").write_text(ssh)
    path = tmp_path / ".config"
    setting = [f"ssh_config = {tmp_path}/ssh_config"] if named else []
    path.write_text("\n".join(["[deploy]", "hosts = web1", *setting, *lines]) + "\n")
    return config.load(path, app="shop")


def own_ssh_config(text: str) -> Path:
    """``~/.ssh/config`` in the test's own HOME."""
    own = Path("~/.ssh/config").expanduser()
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text(text)
    return own


# Include ----------------------------------------------------------------------------


def test_include_is_followed_relative_to_dot_ssh_in_sorted_order(tmp_path: Path) -> None:
    conf_d = Path("~/.ssh/conf.d").expanduser()
    conf_d.mkdir(parents=True)
    (conf_d / "20-web").write_text("Host web1\n  HostName 10.0.0.20\n")
    (conf_d / "10-web").write_text("Host web1\n  HostName 10.0.0.10\n  User ops\n")
    node = app(tmp_path, "Include conf.d/* nowhere/missing\nHost *\n  Port 2222\n").nodes[0]
    assert (node.address, node.user, node.port) == ("10.0.0.10", "ops", 2222)


def test_lines_after_a_top_level_include_stay_global(tmp_path: Path) -> None:
    (tmp_path / "other").write_text("Host other\n  User someone\n")
    node = app(tmp_path, f"Include {tmp_path}/other\nUser everyone\n").nodes[0]
    assert node.user == "everyone"  # not only for 'other', whose block the file ended in


def test_an_include_inside_a_block_belongs_to_it(tmp_path: Path) -> None:
    (tmp_path / "port").write_text("Port 2200\n")
    ssh = f"Host web1\n  Include {tmp_path}/port\n  User ops\nHost *\n  Port 22\n  User x\n"
    node = app(tmp_path, ssh).nodes[0]
    assert (node.port, node.user) == (2200, "ops")


def test_an_include_inside_a_block_of_a_file_with_blocks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blocks").write_text("Host web1\n  Port 2200\n")
    with pytest.raises(ConfigError) as caught:
        app(tmp_path, f"Host web*\n  Include {tmp_path}/blocks\n")
    message = str(caught.value)
    assert f"{tmp_path}/ssh_config:2: Include inside 'Host web*' names {tmp_path}/blocks" in message
    assert "move the Include above the first Host or Match line" in message


def test_an_include_loop_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Include nested too deep"):
        app(tmp_path, f"Include {tmp_path}/ssh_config\n")


# .config is data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "directive"),
    [
        ('Match exec "touch {marker}"', "Match exec"),
        ('Match host web1 !exec "touch {marker}"', "Match exec"),
        ("ProxyCommand sh -c 'touch {marker}; nc %h %p'", "ProxyCommand"),
        ("LocalCommand touch {marker}", "LocalCommand"),
        ("KnownHostsCommand /bin/touch {marker}", "KnownHostsCommand"),
    ],
)
def test_a_command_in_a_named_ssh_config_is_refused_unrun(
    tmp_path: Path, line: str, directive: str
) -> None:
    marker = tmp_path / "ran"
    ssh = "Host web1\n  HostName 10.0.0.11\n" + line.format(marker=marker) + "\n"
    with pytest.raises(ConfigError) as caught:
        app(tmp_path, ssh)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}/.config:3: [deploy] ssh_config: ")
    assert f"{tmp_path}/ssh_config:3: {directive} would run a command on this machine" in message
    assert "move the host into your own ~/.ssh/config" in message
    assert not marker.exists()


def test_a_command_in_a_file_a_named_one_includes_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "inner").write_text(f'# hidden\nMatch exec "touch {marker}"\n  User x\n')
    with pytest.raises(ConfigError, match=rf"{tmp_path}/inner:2: Match exec would run"):
        app(tmp_path, f"Include {tmp_path}/inner\n")
    assert not marker.exists()


def test_proxycommand_none_is_no_command(tmp_path: Path) -> None:
    assert app(tmp_path, "Host web1\n  ProxyCommand none\n").nodes[0].address == "web1"


def test_the_users_own_ssh_config_may_run_its_match_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO())  # paramiko runs it with invoke.run
    marker = tmp_path / "ran"
    own_ssh_config(f'Match exec "touch {marker}"\n  User matched\n')
    assert app(tmp_path, "", named=False).nodes[0].user == "matched"
    assert marker.exists()  # as ssh would: the user's own file


def test_naming_the_users_own_file_through_a_link_is_the_same(tmp_path: Path) -> None:
    own = own_ssh_config("Host web1\n  ProxyCommand nc %h %p\n  User mine\n")
    (tmp_path / "link").symlink_to(own)
    path = tmp_path / ".config"
    path.write_text(f"[deploy]\nhosts = web1\nssh_config = {tmp_path}/link\n")
    assert config.load(path).nodes[0].user == "mine"


# known_hosts ---------------------------------------------------------------------------


def test_user_known_hosts_file_expands_as_ssh_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client to compare with")
    monkeypatch.setenv("WD_KNOWN", str(tmp_path))
    files = '${WD_KNOWN}/a_%C "${WD_KNOWN}/b_%h_%n_%p_%r_%u_%k_%l_%L_%i_%%"'
    ssh = (
        f"Host web1\n  HostName 10.0.0.11\n  Port 2222\n  User ops\n  UserKnownHostsFile {files}\n"
    )
    node = app(tmp_path, ssh).nodes[0]
    shown = subprocess.run(
        ["ssh", "-G", "-F", str(tmp_path / "ssh_config"), "web1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in shown.splitlines() if ln.startswith("userknownhostsfile "))
    assert node.ssh is not None
    assert " ".join(node.ssh.known_hosts) == line.split(" ", 1)[1]


def test_an_unknown_token_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ssh_config: .*ssh knows no %z, for 'web1'"):
        app(tmp_path, "Host web1\n  UserKnownHostsFile ~/%z\n")


def test_known_hosts_files_without_ssh_config_are_sshs_defaults(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text("[deploy]\nhosts = web1\n")
    node = config.load(path).nodes[0]
    known = hostkeys.KnownHosts.of(node, node.ssh)
    home = Path("~").expanduser()
    assert known.user == (home / ".ssh/known_hosts", home / ".ssh/known_hosts2")
    assert known.system == (Path("/etc/ssh/ssh_known_hosts"), Path("/etc/ssh/ssh_known_hosts2"))


def test_each_hop_has_its_own_files_and_dot_config_wins_for_all(tmp_path: Path) -> None:
    ssh = (
        "Host web1\n  ProxyJump gate\n  UserKnownHostsFile /k/web none-such\n"
        "Host gate\n  UserKnownHostsFile none\n  GlobalKnownHostsFile /k/global\n"
    )
    node = app(tmp_path, ssh).nodes[0]
    gate = node.jumps[0]
    assert hostkeys.KnownHosts.of(node, node.ssh).user == (Path("/k/web"), Path("none-such"))
    assert hostkeys.KnownHosts.of(node, gate).files == (Path("/k/global"),)
    node = app(tmp_path, ssh, "known_hosts = /k/mine").nodes[0]
    for hop in (node.ssh, node.jumps[0]):
        assert hostkeys.KnownHosts.of(node, hop).user == (Path("/k/mine"),)
    assert hostkeys.KnownHosts.of(node, node.jumps[0]).system == (Path("/k/global"),)


def test_every_hop_loads_its_files_and_records_in_the_first(tmp_path: Path) -> None:
    key = paramiko.RSAKey.generate(1024)
    gate_key = paramiko.RSAKey.generate(1024)
    (tmp_path / "web").write_text(f"10.0.0.11 {key.get_name()} {key.get_base64()}\n")
    (tmp_path / "gate").write_text(f"10.9.9.9 {gate_key.get_name()} {gate_key.get_base64()}\n")
    ssh = (
        f"Host web1\n  HostName 10.0.0.11\n  ProxyJump gate\n"
        f"  UserKnownHostsFile {tmp_path}/web {tmp_path}/more\n"
        f"Host gate\n  HostName 10.9.9.9\n  UserKnownHostsFile {tmp_path}/gate\n"
    )
    node = app(tmp_path, ssh, "accept_unknown_hosts = yes").nodes[0]
    built = connection.build(node)
    assert built.client.get_host_keys().lookup("10.0.0.11")[key.get_name()] == key
    assert built.gateway.client.get_host_keys().lookup("10.9.9.9") is not None
    assert built.client.get_host_keys().lookup("10.9.9.9") is None  # not the node's files
    assert built.client._policy.path == tmp_path / "web"


def test_a_changed_key_names_the_file_that_holds_it(tmp_path: Path) -> None:
    key = paramiko.RSAKey.generate(1024)
    (tmp_path / "second").write_text(f"[10.0.0.11]:2222 {key.get_name()} {key.get_base64()}\n")
    ssh = (
        "Host web1\n  HostName 10.0.0.11\n  Port 2222\n"
        f"  UserKnownHostsFile {tmp_path}/first {tmp_path}/second\n"
    )
    node = app(tmp_path, ssh).nodes[0]
    error = paramiko.BadHostKeyException("10.0.0.11", paramiko.RSAKey.generate(1024), key)
    message = connection.reason(node, error)
    assert message.startswith(
        f"HOST KEY CHANGED for [10.0.0.11]:2222 (the server's key is not the one in "
        f"{tmp_path}/second); this may be an attack."
    )
    assert message.endswith(f"ssh-keygen -R '[10.0.0.11]:2222' -f {tmp_path}/second")


def test_an_unknown_key_names_every_file_read(tmp_path: Path) -> None:
    (tmp_path / "first").write_text("")
    ssh = (
        "Host web1\n  HostName 10.0.0.11\n"
        f"  UserKnownHostsFile {tmp_path}/first {tmp_path}/gone\n  GlobalKnownHostsFile /k/g\n"
    )
    node = app(tmp_path, ssh).nodes[0]
    error = paramiko.SSHException("Server '10.0.0.11' not found in known_hosts")
    assert connection.reason(node, error) == (
        f"unknown host key for 10.0.0.11 (not in {tmp_path}/first; {tmp_path}/gone, /k/g do "
        "not exist); check its fingerprint, then add it: ssh-keyscan -p 22 10.0.0.11 >> "
        f"{tmp_path}/first; or set accept_unknown_hosts = yes in .config (known_hosts in "
        ".config, else UserKnownHostsFile in ssh_config, names the file)"
    )


def test_files_expand_tokens_of_the_host(tmp_path: Path) -> None:
    host = knownhosts.Host("web1", "10.0.0.11", 2222, "ops")
    assert knownhosts.expand("/k/%n-%h-%p-%r-%k-%%", host) == "/k/web1-10.0.0.11-2222-ops-web1-%"

"""ssh_config through Paramiko's parser: what a host name means, and what wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.app import config
from fabfile.errors import ConfigError


def app(tmp_path: Path, *lines: str, ssh: str = "") -> config.AppConfig:
    key = tmp_path / "id_web"
    key.write_text("not a real key")
    (tmp_path / "ssh_config").write_text(
        ssh
        or (
            "Host web1\n  HostName 10.0.0.11\n  Port 2222\n  User ops\n"
            f"  IdentityFile {key}\n  IdentityFile {tmp_path}/missing\n  ProxyJump bastion\n"
            "Host bastion\n  HostName 10.9.9.9\n  User jump\n"
        )
    )
    path = tmp_path / ".config"
    path.write_text(
        "\n".join(["[deploy]", "hosts = web1", f"ssh_config = {tmp_path}/ssh_config", *lines])
        + "\n"
    )
    return config.load(path, app="shop")


def test_an_alias_resolves_as_ssh_would(tmp_path: Path) -> None:
    node = app(tmp_path, "status_url = http://{address}:8080/status").nodes[0]
    assert (node.host, node.address, node.user, node.port) == ("web1", "10.0.0.11", "ops", 2222)
    assert node.url == "http://10.0.0.11:8080/status"
    assert node.ssh is not None and node.ssh.identity_files == (str(tmp_path / "id_web"),)
    assert [(j.address, j.user, j.port) for j in node.jumps] == [("10.9.9.9", "jump", 22)]


def test_dot_config_wins_over_ssh_config(tmp_path: Path) -> None:
    node = app(tmp_path, "user = deployer", "port = 22").nodes[0]
    assert (node.user, node.port, node.address) == ("deployer", 22, "10.0.0.11")
    assert node.url == "http://web1:8080/status"  # {host} stays the name in hosts


def test_without_ssh_config_a_host_is_itself(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text("[deploy]\nhosts = web1\n")
    node = config.load(path).nodes[0]
    assert (node.address, node.port, node.jumps) == ("web1", 22, ())
    assert node.ssh is not None and "no ssh_config was read" in node.ssh.describe("web1")


def test_a_missing_ssh_config_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text(f"[deploy]\nhosts = web1\nssh_config = {tmp_path}/nowhere\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert f"{path}:3: [deploy] ssh_config: {tmp_path}/nowhere: no such file" in str(caught.value)


def test_an_unparsable_ssh_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unparsable line"):
        app(tmp_path, ssh="Host web1\n  =broken\n")


def test_proxyjump_none_means_direct(tmp_path: Path) -> None:
    node = app(tmp_path, ssh="Host web1\n  ProxyJump none\n").nodes[0]
    assert node.jumps == ()


def test_status_url_may_name_address_instead_of_host(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text("[deploy]\nhosts = web1\nstatus_url = http://{address}:{nothing}/status\n")
    with pytest.raises(ConfigError, match=r"only \{host\}, \{address\} and \{instance\}"):
        config.load(path)


def test_every_jump_host_is_checked_against_known_hosts(tmp_path: Path) -> None:
    import paramiko
    from fabric import Connection

    from fabfile.cluster import connection as connection_module

    (tmp_path / "known").write_text("")
    nodes = app(
        tmp_path,
        f"known_hosts = {tmp_path}/known",
        ssh=(
            "Host web1\n  HostName 10.0.0.11\n  ProxyJump hop1,hop2\n"
            "Host hop1\n  HostName 10.9.9.1\n  Port 2201\nHost hop2\n  HostName 10.9.9.2\n"
        ),
    ).nodes
    chain: list[Connection] = []
    hop: object = connection_module.build(nodes[0])
    while isinstance(hop, Connection):
        chain.append(hop)
        hop = hop.gateway
    assert [(c.host, c.port) for c in chain] == [
        ("10.0.0.11", 22),
        ("10.9.9.2", 22),  # the last hop carries the node's connection ...
        ("10.9.9.1", 2201),  # ... and is reached through the first, dialled first
    ]
    assert hop is False  # no gateway of Fabric's own, from any ssh_config
    for connection in chain:
        assert isinstance(connection.client._policy, paramiko.RejectPolicy)


def test_a_jump_may_name_its_user_and_port(tmp_path: Path) -> None:
    node = app(tmp_path, ssh="Host web1\n  ProxyJump ops@gate:2200,ssh://10.9.9.9\n").nodes[0]
    assert [(j.address, j.user, j.port) for j in node.jumps] == [
        ("gate", "ops", 2200),
        ("10.9.9.9", node.jumps[1].user, 22),
    ]

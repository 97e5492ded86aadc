"""The user's ssh_config on the real sandbox: aliases, and ProxyJump through a bastion.

The nodes are named ``web1``..``web3`` in ``hosts``; only ssh_config says where they
are, and every SSH connection goes through a bastion sshd of the sandbox, whose
host key is checked like any node's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import cluster
from tests import cli
from tests.real.helpers import all_on, versions

pytestmark = pytest.mark.real


def aliases(sandbox: cluster.Cluster) -> dict[str, str]:
    return {f"web{i}": address for i, address in enumerate(sandbox.addresses, start=1)}


@pytest.fixture
def via_bastion(
    on_125: Path, sandbox: cluster.Cluster, bastion: tuple[str, str], tmp_path: Path
) -> Path:
    """The app directory naming its nodes by alias; ssh_config routes them via the bastion."""
    address, line = bastion
    known = tmp_path / "known_hosts"
    known.write_text(sandbox.known_hosts.read_text() + line)
    blocks = [f"Host bastion\n  HostName {address}\n  User root\n  IdentityFile {sandbox.key}\n"]
    blocks += [f"Host {alias}\n  HostName {a}\n" for alias, a in aliases(sandbox).items()]
    blocks += [f"Host web*\n  User root\n  IdentityFile {sandbox.key}\n  ProxyJump bastion\n"]
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("\n".join(blocks))
    config = on_125 / ".config"
    text = config.read_text()
    for alias, a in aliases(sandbox).items():
        text = text.replace(f"[host:{a}]", f"[host:{alias}]")
    kept = [
        ln
        for ln in text.splitlines()
        if not ln.startswith(
            ("hosts =", "user =", "identity_file =", "known_hosts =", "status_url =")
        )
    ]
    at = kept.index("[deploy]") + 1
    kept[at:at] = [
        f"hosts = {', '.join(aliases(sandbox))}",
        f"ssh_config = {ssh_config}",
        f"known_hosts = {known}",
        f"status_url = http://{{address}}:{sandbox.http_port}/status",
    ]
    config.write_text("\n".join(kept) + "\n")
    return on_125


def logins(sandbox: cluster.Cluster, address: str) -> int:
    log = sandbox.home(address) / "sshd.log"
    return log.read_text(errors="replace").count("Accepted publickey")


def test_status_deploy_and_rollback_go_through_the_bastion(
    via_bastion: Path,
    sandbox: cluster.Cluster,
    bastion: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = cli.run(["status"], via_bastion, capsys)
    assert status.code == 0, status.text
    for address in sandbox.addresses:  # {address}: what ssh_config resolved each alias to
        assert f"http://{address}:{sandbox.http_port}/status" in status.out

    before = logins(sandbox, bastion[0])
    deployed = cli.run(["search-web-frontend-1.0.126.war"], via_bastion, capsys)
    assert deployed.code == 0, deployed.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert logins(sandbox, bastion[0]) - before == 1  # one connection for every node behind it

    back = cli.run(["rollback"], via_bastion, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert "web1" in back.out and sandbox.addresses[0] not in back.out.split("done:")[-1]


def test_an_unknown_alias_is_refused_saying_what_ssh_config_gave(
    via_bastion: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = via_bastion / ".config"
    config.write_text(config.read_text().replace("web3", "web9"))  # ssh_config has no web9
    result = cli.run(["search-web-frontend-1.0.126.war"], via_bastion, capsys)
    assert result.code == 4, result.text
    assert "web9: the jump host" in result.err
    assert f"{tmp_path / 'ssh_config'} was read and gives no HostName for 'web9'" in result.err


def test_a_jump_host_with_a_changed_key_is_refused(
    via_bastion: Path,
    sandbox: cluster.Cluster,
    bastion: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    address = bastion[0]
    other_key = sandbox.known_hosts.read_text().splitlines()[0].split(" ", 1)[1]
    (tmp_path / "known_hosts").write_text(
        sandbox.known_hosts.read_text() + f"{address} {other_key}\n"
    )  # the bastion's entry now holds another host's key
    before = versions(sandbox)
    result = cli.run(["search-web-frontend-1.0.126.war"], via_bastion, capsys)
    assert result.code == 4, result.text
    assert f"web1: jump host {address}:22: HOST KEY CHANGED for {address}" in result.err
    assert versions(sandbox) == before

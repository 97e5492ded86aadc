"""The user's ssh_config, whole, on the real sandbox: the known_hosts files it names
(for the nodes and the bastion each), and no command run from a file .config names.

The nodes are ``web1``..``web3`` behind a bastion sshd; the test's HOME is empty, so
nothing but the files named here can vouch for a host key.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sandbox import cluster
from tests import cli
from tests.real.helpers import all_on, versions

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"


def node_lines(sandbox: cluster.Cluster) -> dict[str, str]:
    """Each node's known_hosts line, by address."""
    lines = sandbox.known_hosts.read_text().splitlines()
    return {a: next(ln for ln in lines if ln.startswith(f"{a} ")) for a in sandbox.addresses}


@pytest.fixture
def ssh_f(on_125: Path, sandbox: cluster.Cluster, bastion: tuple[str, str], tmp_path: Path) -> Path:
    """An ssh_config that plain ``ssh -F`` can use: one known_hosts file per node
    (``UserKnownHostsFile known/%h``), the bastion's in a file of its own, and a
    ``.config`` that names it and no ``known_hosts``. Returns the ssh_config."""
    address, bastion_line = bastion
    known = tmp_path / "known"
    known.mkdir()
    for node, line in node_lines(sandbox).items():
        (known / node).write_text(line + "\n")
    (tmp_path / "bastion_known").write_text(bastion_line)
    blocks = [
        f"Host bastion\n  HostName {address}\n  UserKnownHostsFile {tmp_path}/bastion_known\n",
        *(f"Host web{i}\n  HostName {a}\n" for i, a in enumerate(sandbox.addresses, start=1)),
        f"Host web*\n  ProxyJump bastion\n  UserKnownHostsFile {known}/%h\n",
        f"Host *\n  User root\n  IdentityFile {sandbox.key}\n  IdentitiesOnly yes\n"
        "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
    ]
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("\n".join(blocks))
    config = on_125 / ".config"
    text = config.read_text()
    for i, a in enumerate(sandbox.addresses, start=1):
        text = text.replace(f"[host:{a}]", f"[host:web{i}]")
    dropped = ("hosts =", "user =", "identity_file =", "known_hosts =", "status_url =")
    kept = [ln for ln in text.splitlines() if not ln.startswith(dropped)]
    at = kept.index("[deploy]") + 1
    kept[at:at] = [
        f"hosts = {', '.join(f'web{i}' for i in range(1, len(sandbox.addresses) + 1))}",
        f"ssh_config = {ssh_config}",
        f"status_url = http://{{address}}:{sandbox.http_port}/status",
    ]
    config.write_text("\n".join(kept) + "\n")
    return ssh_config


def plain_ssh(ssh_config: Path, alias: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(ssh_config), alias, "echo", "in"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


def logins(sandbox: cluster.Cluster, address: str) -> int:
    log = sandbox.home(address) / "sshd.log"
    return log.read_text(errors="replace").count("Accepted publickey")


def test_a_cluster_that_works_with_ssh_f_deploys_with_no_known_hosts_key(
    ssh_f: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    for alias in ("web1", "web2", "web3"):
        done = plain_ssh(ssh_f, alias)
        assert (done.returncode, done.stdout) == (0, "in\n"), done.stderr
    app_dir = ssh_f.parent / "search-web-frontend"
    assert "known_hosts" not in (app_dir / ".config").read_text()

    deployed = cli.run([WAR], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    status = cli.run(["status"], app_dir, capsys)
    assert status.code == 0, status.text
    back = cli.run(["rollback"], app_dir, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert not Path("~/.ssh/known_hosts").expanduser().exists()  # nothing was recorded


def test_a_wrong_or_missing_key_in_those_files_is_refused_naming_them(
    ssh_f: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = sandbox.addresses[:2]
    known = ssh_f.parent / "known"
    other_key = node_lines(sandbox)[sandbox.addresses[2]].split(" ", 1)[1]
    (known / first).write_text(f"{first} {other_key}\n")  # web1's file: another host's key
    (known / second).unlink()  # web2's file: none
    assert plain_ssh(ssh_f, "web1").returncode != 0  # ssh refuses them too
    assert plain_ssh(ssh_f, "web2").returncode != 0

    before = versions(sandbox)
    result = cli.run([WAR], ssh_f.parent / "search-web-frontend", capsys)
    assert result.code == 4, result.text
    assert (
        f"web1: HOST KEY CHANGED for {first} (the server's key is not the one in "
        f"{known / first}); this may be an attack."
    ) in result.err
    assert f"ssh-keygen -R {first} -f {known / first}" in result.err
    assert (
        f"web2: unknown host key for {second} (not in /dev/null; {known / second} does not "
        f"exist); check its fingerprint, then add it: ssh-keyscan -p 22 {second} >> "
        f"{known / second};"
    ) in result.err
    assert versions(sandbox) == before


def test_match_exec_in_an_ssh_config_dot_config_names_is_refused_unrun(
    ssh_f: Path,
    sandbox: cluster.Cluster,
    bastion: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = ssh_f.parent / "match-exec-ran"
    text = ssh_f.read_text()
    ssh_f.write_text(f'Match exec "touch {marker}"\n  User root\n\n' + text)
    assert plain_ssh(ssh_f, "web1").returncode == 0 and marker.exists()  # ssh would run it
    marker.unlink()

    hosts = (*sandbox.addresses, bastion[0])
    before = {address: logins(sandbox, address) for address in hosts}
    app_dir = ssh_f.parent / "search-web-frontend"
    for argv in ([WAR], ["status"]):
        result = cli.run(argv, app_dir, capsys)
        assert result.code == 3, result.text
        assert (
            f"[deploy] ssh_config: {ssh_f}:1: Match exec would run a command on this machine"
        ) in result.err
        assert "move the host into your own ~/.ssh/config" in result.err
    assert not marker.exists()
    assert {address: logins(sandbox, address) for address in hosts} == before
    assert versions(sandbox) == all_on(sandbox, "1.0.125")

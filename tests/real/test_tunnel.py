"""HTTP through SSH on the real sandbox: a coordinator that reaches the nodes only
through a bastion, one connection to the bastion for every node behind it, and a
pre-flight that refuses a node whose /status it cannot reach.

The coordinator's own traffic to the nodes is rejected by iptables (`firewall`:
its group, not root's, so the nodes' sshd still forwards what SSH carries), and
its ``deploy`` runs as a process of that group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import cluster
from tests.real import firewall
from tests.real.helpers import all_on, history, override, versions
from tests.real.test_ssh_config import logins, via_bastion  # noqa: F401

pytestmark = pytest.mark.real


@pytest.fixture
def cut_off(sandbox: cluster.Cluster) -> Iterator[None]:
    """The coordinator reaches no node's port (SSH or HTTP), only the bastion's sshd."""
    with firewall.rejected([(address, None) for address in sandbox.addresses]):
        yield
    assert firewall.left() == []


def set_deploy_key(app_dir: Path, key: str, value: str) -> None:
    config = app_dir / ".config"
    text = config.read_text()
    config.write_text(text.replace("[deploy]\n", f"[deploy]\n{key} = {value}\n", 1))


def current_files(sandbox: cluster.Cluster) -> dict[str, tuple[str, int]]:
    """Each node's current release record and the installed WAR's mtime (ns)."""
    found = {}
    for address in sandbox.addresses:
        home = sandbox.home(address)
        current = next(home.glob("releases/*/current"), None)
        war = home / "jetty-base/webapps/root.war"
        found[address] = (current.read_text() if current else "", war.stat().st_mtime_ns)
    return found


def test_status_deploy_and_rollback_through_ssh_when_only_the_bastion_is_reachable(
    via_bastion: Path,  # noqa: F811
    sandbox: cluster.Cluster,
    bastion: tuple[str, str],
    cut_off: None,
) -> None:
    first = sandbox.addresses[0]
    assert firewall.reaches(first, sandbox.http_port) == "ConnectionRefusedError"
    assert firewall.reaches(first, 22) == "ConnectionRefusedError"
    assert firewall.reaches(bastion[0], 22) == "open"
    assert firewall.open_to_root(first, sandbox.http_port)  # the rule is the coordinator's

    status = firewall.deploy([], via_bastion)
    assert status.returncode == 0, status.stdout + status.stderr
    for address in sandbox.addresses:
        line = next(ln for ln in status.stdout.splitlines() if f"//{address}:" in ln)
        assert "Ok" in line and "1.0.125" in line, status.stdout

    set_deploy_key(via_bastion, "warmup_urls", "/status")
    before = logins(sandbox, bastion[0])
    deployed = firewall.deploy(["search-web-frontend-1.0.126.war"], via_bastion)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    warmed = deployed.stdout.count("warm-up fetched 1 of 1 path(s) from the node")
    assert warmed == len(sandbox.addresses), deployed.stdout
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert {h["outcome"] for h in history(via_bastion)[-1]["hosts"].values()} == {"deployed"}
    assert logins(sandbox, bastion[0]) - before == 1  # one connection for the three nodes

    back = firewall.deploy(["rollback"], via_bastion)
    assert back.returncode == 0, back.stdout + back.stderr
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert logins(sandbox, bastion[0]) - before == 2


def test_asked_directly_through_the_firewall_every_node_fails_and_nothing_changes(
    via_bastion: Path,  # noqa: F811
    sandbox: cluster.Cluster,
    cut_off: None,
) -> None:
    """The same cluster with http_via = direct: what the tunnel is for."""
    set_deploy_key(via_bastion, "http_via", "direct")
    status = firewall.deploy([], via_bastion)
    assert status.returncode == 1
    assert status.stdout.count("connection refused") == len(sandbox.addresses), status.stdout

    before = current_files(sandbox)
    refused = firewall.deploy(["search-web-frontend-1.0.126.war"], via_bastion)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "pre-flight refused on 3 of 3 node(s); nothing was changed" in refused.stderr
    assert "web2: /status at http://" in refused.stderr
    assert "answers on the node itself (200 com.example.search:search-web-frontend 1.0.125)" in (
        refused.stderr
    )
    assert "but not from this machine (connection refused)" in refused.stderr
    assert "Set http_via = ssh to ask it through its SSH connection" in refused.stderr
    assert current_files(sandbox) == before
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_preflight_refuses_a_node_whose_status_it_cannot_reach(
    on_125: Path, sandbox: cluster.Cluster
) -> None:
    """No bastion: one node's HTTP port alone is closed to the coordinator."""
    closed = sandbox.addresses[1]
    before = current_files(sandbox)
    with firewall.rejected([(closed, sandbox.http_port)]):
        refused = firewall.deploy(["search-web-frontend-1.0.126.war"], on_125)
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "pre-flight refused on 1 of 3 node(s); nothing was changed" in refused.stderr
        assert f"{closed}: /status at {sandbox.url(closed)} answers on the node itself" in (
            refused.stderr
        )
        assert current_files(sandbox) == before
        assert versions(sandbox) == all_on(sandbox, "1.0.125")

        override(on_125, closed, http_via="ssh")  # the same node, asked through its SSH
        deployed = firewall.deploy(["search-web-frontend-1.0.126.war"], on_125)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert firewall.left() == []

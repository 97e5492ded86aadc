"""The Tomcat manager through SSH on the real parallel-deployment sandbox: the
coordinator cannot reach any Tomcat's HTTP port (`firewall`), so every manager call
and /status probe of a deploy and a retire went over the nodes' SSH connections, and
the manager's password with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.real import firewall
from tests.real.helpers import TomcatSandbox as Sandbox
from tests.real.test_parallel import NEW, OLD, app_dir, par, set_keys, versions  # noqa: F401

pytestmark = pytest.mark.real


def test_a_parallel_deploy_and_retire_with_the_manager_through_ssh(
    app_dir: Path,  # noqa: F811
    par: Sandbox,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = par.tomcats.http_port(par.tomcats.instances[0])
    set_keys(app_dir, http_via="ssh")
    with firewall.rejected([(address, port) for address in par.addresses]):
        for address in par.addresses:
            assert firewall.reaches(address, port) == "ConnectionRefusedError"
            assert firewall.reaches(address, 22) == "open"

        table = firewall.deploy([], app_dir)
        assert table.returncode == 0, table.stdout + table.stderr
        status = firewall.deploy(["--json"], app_dir)
        assert status.returncode == 0, status.stdout + status.stderr
        rows = json.loads(status.stdout)
        assert {row["host"]: [v["version"] for v in row["versions"]] for row in rows} == {
            address: [OLD] for address in par.addresses
        }

        deployed = firewall.deploy([par.wars[NEW].name], app_dir)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        retired = firewall.deploy(["retire", "--now"], app_dir)
        assert retired.returncode == 0, retired.stdout + retired.stderr
    assert firewall.left() == []
    assert versions(app_dir, capsys) == {address: [NEW] for address in par.addresses}

"""Dry runs on the real Jetty cluster: on nodes never deployed to, and of a rollback."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from sandbox import cluster
from tests import cli
from tests.real.helpers import all_on, history, versions
from tests.real.test_faults import set_key

pytestmark = pytest.mark.real
APP = "search-web-frontend"


def test_a_dry_run_on_nodes_never_deployed_to_reads_their_free_space(
    app_dir: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new user's first command on a cluster: no node has the releases directory yet
    (nor its parent), and the dry run makes none; the space it will be made in counts."""
    fresh = f"fresh-{uuid.uuid4().hex[:8]}"
    set_key(app_dir, "releases_dir", f"~/{fresh}/releases/{{app}}")
    before = versions(sandbox)
    plan = cli.run([f"{APP}-1.0.126.war", "--dry-run"], app_dir, capsys)
    assert plan.code == 0, plan.text
    assert "MiB free" not in plan.text
    for address in sandbox.addresses:
        assert re.search(rf"{re.escape(address)}: install \+ restart; send \d+ file", plan.out)
        assert not (sandbox.home(address) / fresh).exists()  # the dry run made nothing
    assert versions(sandbox) == before and history(app_dir) == []

    deployed = cli.run([f"{APP}-1.0.126.war"], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")

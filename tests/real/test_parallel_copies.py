"""Parallel deployment's versions are copies of the staged blobs, each checked against
its checksum (Tomcat 10 and its manager, haproxy, on WARDEPLOY_PARALLEL_NET's hosts):
an edit of a live version's WAR never reaches the blob that a later deploy or rollback
installs, and a blob that changed on a host is sent again, never deployed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sandbox import app
from tests import cli
from tests.real.helpers import TomcatSandbox as Sandbox
from tests.real.helpers import history
from tests.real.test_parallel import NEW, OLD, app_dir, par, served, versions

pytestmark = pytest.mark.real
__all__ = ["app_dir", "par"]  # the parallel sandbox's fixtures, brought up for this module


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_live_versions_war_is_a_copy_and_a_changed_blob_is_sent_again(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = par.addresses
    new_war, old_war = app_dir / par.wars[NEW].name, app_dir / par.wars[OLD].name
    deployed = cli.run([new_war.name], app_dir, capsys)
    assert deployed.code == 0, deployed.text
    releases = par.tomcats.cluster.home(first) / "releases" / app.APP
    live = next(p for p in (releases / "versions").glob("*.war") if NEW in p.name)
    blob = releases / "blobs" / sha256(new_war)
    assert live.stat().st_ino != blob.stat().st_ino  # not a hard link
    live.write_bytes(live.read_bytes()[:-100])  # edited on the node, in place
    assert sha256(blob) == sha256(new_war)  # the kept copy is untouched

    kept = par.tomcats.cluster.home(second) / "releases" / app.APP / "blobs" / sha256(old_war)
    kept.write_bytes(b"damaged" + kept.read_bytes())
    back = cli.run(["rollback"], app_dir, capsys)
    assert back.code == 0, back.text
    assert f"{second}: 1 staged file(s) had changed on the node since they were staged" in (
        back.out
    )
    assert served(par) == {OLD}
    assert sha256(kept) == sha256(old_war)  # sent again, then deployed
    sent = {host: h["bytes_sent"] for host, h in history(app_dir)[-1]["hosts"].items()}
    assert sent == {first: 0, second: old_war.stat().st_size}

    again = cli.run([new_war.name], app_dir, capsys)  # from the intact blob: nothing sent
    assert again.code == 0, again.text
    assert served(par) == {NEW}
    assert [h["bytes_sent"] for h in history(app_dir)[-1]["hosts"].values()] == [0, 0]
    assert {found[-1] for found in versions(app_dir, capsys).values()} == {NEW}

"""``deploy stage``: the release's files on every node ahead, nothing live changes."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import pytest

from fabfile.app import artifact as artifacts
from fabfile.app import warcache
from sandbox import cluster
from tests import cli
from tests.real.helpers import all_on, history, versions

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"


def jetty_pids(sandbox: cluster.Cluster) -> dict[str, str]:
    return {a: (sandbox.home(a) / "run" / "jetty.pid").read_text() for a in sandbox.addresses}


def test_stage_then_deploy_sends_nothing_more(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with zipfile.ZipFile(on_125 / WAR, "a") as war:  # bytes no node holds yet
        war.writestr("META-INF/build-id.txt", uuid.uuid4().hex)
    pids = jetty_pids(sandbox)
    staged = cli.run(["stage", WAR], on_125, capsys)
    assert staged.code == 0, staged.text
    assert "nothing goes live" in staged.out and "staged: " in staged.out
    assert versions(sandbox) == all_on(sandbox, "1.0.125")  # nothing live changed
    assert jetty_pids(sandbox) == pids
    record = history(on_125)[-1]
    assert record["action"] == "stage"
    assert {h["outcome"] for h in record["hosts"].values()} == {"staged"}
    assert all(h["bytes_sent"] > 0 for h in record["hosts"].values())
    assert [name for name, _ in record["hosts"][sandbox.addresses[0]]["phases"]] == [
        "pre-flight",
        "staging",
        "staged",
    ]

    known = json.loads((on_125 / warcache.NAME).read_text())
    assert known[WAR]["sha256"] == artifacts.file_sha256(on_125 / WAR)

    def read_again(*args: object) -> None:
        raise AssertionError("a WAR checked before and unchanged since was read again")

    # From here on the WARs are known: neither read whole nor hashed again.
    monkeypatch.setattr(artifacts, "_check_entries", read_again)
    monkeypatch.setattr(artifacts, "file_sha256", read_again)
    again = cli.run(["stage", WAR], on_125, capsys)  # already there: nothing sent
    assert again.code == 0 and "staged: 0 bytes sent" in again.out, again.text

    deployed = cli.run([WAR], on_125, capsys)
    assert deployed.code == 0, deployed.text
    assert "; 0 bytes sent" in deployed.out
    assert versions(sandbox) == all_on(sandbox, "1.0.126")

    back = cli.run(["rollback"], on_125, capsys)  # the stage is no release to go back to
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")

"""On the real sandbox (sshd, Jetty, haproxy): what a run leaves on a node can never
mislead the next one, nor another app, nor an operator.

- a restart command that fails at once releases its restart claim: the next deploy
  does not wait for it;
- a staged blob changed on a node after `deploy stage` is sent again, never installed,
  and a rollback without a copy of a changed one is refused before anything restarts;
- an operator's MAINT stays (deploy, no-op redeploy, status), until --force;
- two apps given one releases_dir are refused with file and line.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
import zipfile
from pathlib import Path

import pytest

from fabfile.cluster.balancer import Admin, Balancer, State
from sandbox import app, cluster, haproxy
from sandbox.sample import build_war
from tests import cli
from tests.real.helpers import all_on, history, override, versions
from tests.real.test_balancer import Watcher, _node

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"
SUDO = "sh -c 'echo sudo: a password is required >&2; exit 1'"


def releases(sandbox: cluster.Cluster, address: str) -> Path:
    """The node's releases directory, as the sandbox's .config puts it."""
    return sandbox.home(address) / "releases" / app.APP


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_restart_command_that_fails_at_once_releases_its_claim(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, _ = sandbox.addresses
    config = on_125 / ".config"
    good = config.read_text()
    override(on_125, second, restart=SUDO)
    failed = cli.run([WAR], on_125, capsys)
    assert failed.code == 1, failed.text
    assert f"{second}: the restart command failed (exit 1): sudo: a password is required" in (
        failed.err
    )
    assert "its restart claim was released" in failed.err
    assert not (releases(sandbox, second) / "restart.claim").exists()
    assert versions(sandbox)[first] == "1.0.126"

    config.write_text(good)  # the right restart command
    again = cli.run([WAR], on_125, capsys)
    assert again.code == 0, again.text
    assert "still under way" not in again.text  # no wait for a restart that never ran
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    phases = dict(history(on_125)[-1]["hosts"][second]["phases"])
    assert phases["staged"] - phases["pre-flight"] < 5  # a claim in the way: 2 x 10 s


def test_a_staged_blob_changed_on_a_node_is_sent_again_never_installed(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    with zipfile.ZipFile(on_125 / WAR, "a") as war:  # bytes no node holds yet
        war.writestr("META-INF/build-id.txt", uuid.uuid4().hex)
    wanted = sha256(on_125 / WAR)
    staged = cli.run(["stage", WAR], on_125, capsys)
    assert staged.code == 0, staged.text
    blob = releases(sandbox, second) / "blobs" / wanted
    with blob.open("r+b") as edited:  # an edit in place, as through a hard link
        edited.seek(100)
        edited.write(b"not the release any more")
    assert sha256(blob) != wanted

    deployed = cli.run([WAR], on_125, capsys)
    assert deployed.code == 0, deployed.text
    assert f"{second}: a staged file had changed on the node; it was sent again (" in (deployed.out)
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    installed = sandbox.home(second) / "jetty-base" / "webapps" / "root.war"
    assert sha256(installed) == sha256(blob) == wanted
    sent = {host: h["bytes_sent"] for host, h in history(on_125)[-1]["hosts"].items()}
    assert sent == {first: 0, second: (on_125 / WAR).stat().st_size, third: 0}

    # A rollback from the nodes' copies, one of them changed and no copy on the coordinator
    old = on_125 / "search-web-frontend-1.0.125.war"
    kept = releases(sandbox, third) / "blobs" / sha256(old)
    kept.write_bytes(kept.read_bytes()[:-10])
    aside = old.rename(on_125.parent / old.name)
    refused = cli.run(["rollback"], on_125, capsys)
    assert refused.code == 1, refused.text
    assert "preparing the release's files failed; no node was restarted" in refused.err
    assert f"{third}: staged file(s) {sha256(aside)[:12]} (now " in refused.err
    assert "deploy the WAR of that release explicitly" in refused.err
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    aside.rename(old)
    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert sha256(sandbox.home(third) / "jetty-base" / "webapps" / "root.war") == sha256(old)


def test_an_operators_maint_stays_out_until_force(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    second = sandbox.addresses[1]
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    node = _node(on_125, second)
    balancer.set_state(node, Admin.MAINT)  # by hand, as an operator
    try:
        with Watcher(sandbox) as watcher:
            deployed = cli.run([WAR], on_125, capsys)
            redeployed = cli.run([WAR], on_125, capsys)  # a no-op: every node verified
        assert deployed.code == 0, deployed.text
        assert redeployed.code == 0, redeployed.text
        said = f"{second}: left MAINT in haproxy as found (not taken out by deploy"
        assert said in deployed.out and said in redeployed.out
        left = f"left out of rotation as found, not by deploy: {second} (MAINT); --force puts"
        assert left in deployed.out and left in redeployed.out
        assert versions(sandbox) == all_on(sandbox, "1.0.126")  # deployed all the same
        assert watcher.states("node2") == ["MAINT"]  # never drained nor put back
        assert watcher.served > 50 and watcher.failed == []
        assert balancer.states((node,))[second] == State.MAINT

        plan = cli.run([WAR, "--dry-run"], on_125, capsys)
        assert plan.code == 0, plan.text
        assert "  MAINT in haproxy, not by deploy: left out of rotation as found" in plan.out
        status = cli.run([], on_125, capsys)
        assert status.code == 1
        assert f"{second}: MAINT in haproxy, not taken out by deploy" in status.out

        forced = cli.run([WAR, "--force"], on_125, capsys)
        assert forced.code == 0, forced.text
        assert balancer.states((node,))[second] == State.UP
        assert not (releases(sandbox, second) / "taken-out").exists()
        assert cli.run([], on_125, capsys).code == 0
    finally:
        balancer.ready(node)


def test_two_apps_in_one_releases_dir_are_refused_with_file_and_line(
    on_125: Path, sandbox: cluster.Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "search-api"
    other.mkdir()
    text = app.config_text(sandbox, warmup=0, ready_timeout=10)
    shared = f"releases_dir = ~/releases/{app.APP}"
    (other / ".config").write_text(text.replace("releases_dir = ~/releases/{app}", shared))
    (other / "config.properties").write_text(app.PROPERTIES)
    (other / ".jettyrc").write_text(app.JETTYRC)
    war = build_war("2.0.0", other, artifact_id="search-api")
    line = (other / ".config").read_text().splitlines().index(shared) + 1
    before = {a: (releases(sandbox, a) / "current").read_text() for a in sandbox.addresses}

    refused = cli.run([war.name], other, capsys)
    assert refused.code == 4, refused.text
    assert "nothing was changed" in refused.err
    for address in sandbox.addresses:
        assert re.search(
            rf"{re.escape(address)}: releases_dir ~/releases/{app.APP} belongs to another app "
            rf"on this node, [\w.]+:{app.APP} \(app {app.APP}, \.config at [^)]*\); ",
            refused.err,
        ), refused.err
    assert f"{other / '.config'}:{line}: [deploy] releases_dir" in refused.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    after = {a: (releases(sandbox, a) / "current").read_text() for a in sandbox.addresses}
    assert after == before
    assert not list((releases(sandbox, sandbox.addresses[0]) / "blobs").glob("*.part"))
    shutil.rmtree(other)


def test_old_releases_go_in_the_command_that_releases_the_lock(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """keep_releases = 2: once two newer releases were installed before a run (what the
    pre-flight read counts), the first one's WAR is gone from every node, removed in the
    run's last command there, which also released the deploy lock."""
    for address in sandbox.addresses:
        override(on_125, address, keep_releases="2")
    first_war = sha256(on_125 / "search-web-frontend-1.0.125.war")
    assert cli.run([WAR], on_125, capsys).code == 0
    for greeting in ("a third release", "a fourth release"):
        (on_125 / "config.properties").write_text(f"greeting={greeting}\n")
        done = cli.run([WAR], on_125, capsys)
        assert done.code == 0, done.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    for address in sandbox.addresses:
        kept = releases(sandbox, address)
        assert not (kept / "blobs" / first_war).exists(), address
        assert (kept / "blobs" / sha256(on_125 / WAR)).exists(), address
        assert not (kept / "deploy.lock").exists(), address

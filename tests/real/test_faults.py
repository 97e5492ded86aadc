"""Bad days on the real sandbox: each fault leaves the cluster serving and says what to do.

Faults are injected at an exact phase through the progress reporter (a hook
that runs when a node enters a phase), and are real: an sshd killed, a disk
filled, a file altered on the node, SIGINT, SIGKILL.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fabfile.app import config
from fabfile.app.artifact import file_sha256
from fabfile.app.config import NodeConfig
from fabfile.cluster import node as node_module
from fabfile.cluster.balancer import Balancer
from fabfile.engine.phase import Phase
from fabfile.view.progress import PlainReporter
from sandbox import cluster, haproxy
from sandbox.sample import build_war
from tests import cli
from tests.real.helpers import all_on, history, versions

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"


def on_phase(
    monkeypatch: pytest.MonkeyPatch, host: str, phase: Phase, action: Callable[[], object]
) -> None:
    """Run ``action`` once, when ``host`` enters ``phase``."""
    original = PlainReporter.phase
    fired = False

    def phase_hook(self: PlainReporter, where: str, now: Phase, detail: str = "") -> None:
        nonlocal fired
        original(self, where, now, detail)
        if (where, now) == (host, phase) and not fired:
            fired = True
            action()

    monkeypatch.setattr(PlainReporter, "phase", phase_hook)


def fresh_war(app_dir: Path) -> str:
    """Make the app directory's 1.0.126 a WAR no node holds yet, so it must be staged."""
    with zipfile.ZipFile(app_dir / WAR, "a") as war:
        war.writestr("META-INF/build-id.txt", uuid.uuid4().hex)
    return WAR


def _node(app_dir: Path, address: str) -> NodeConfig:
    return next(n for n in config.load(app_dir / ".config").nodes if n.host == address)


def set_key(app_dir: Path, key: str, value: str) -> None:
    config = app_dir / ".config"
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith(f"{key} =")]
    at = lines.index("[deploy]") + 1
    lines.insert(at, f"{key} = {value}")
    config.write_text("\n".join(lines) + "\n")


def accepted_logins(sandbox: cluster.Cluster) -> int:
    return sum(
        (sandbox.home(a) / "sshd.log").read_text().count("Accepted publickey")
        for a in sandbox.addresses
    )


def checked(sandbox: cluster.Cluster, app_dir: Path, address: str, timeout: float = 10) -> None:
    """Until haproxy's health check has seen the node answer again (``inter 1s rise 1``):
    before that haproxy reports a drained node as DOWN, not DRAIN."""
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    deadline = time.monotonic() + timeout
    while balancer.row(_node(app_dir, address))["status"].startswith("DOWN"):
        assert time.monotonic() < deadline, f"haproxy still checks {address} as DOWN"
        time.sleep(0.1)


def wait_all_answer(sandbox: cluster.Cluster, timeout: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = versions(sandbox)
        if all(found.values()):
            return found
        time.sleep(0.2)
    return versions(sandbox)


def assert_clean_end(app_dir: Path, sandbox: cluster.Cluster) -> None:
    """Lock released; every node answers 200 and still holds the 1.0.125 release."""
    assert not (app_dir / ".deploy.lock").exists()
    assert all(wait_all_answer(sandbox).values())
    kept = file_sha256(app_dir / "search-web-frontend-1.0.125.war")
    for address in sandbox.addresses:
        blobs = sandbox.home(address) / "releases" / "search-web-frontend" / "blobs"
        assert (blobs / kept).is_file(), address


@contextlib.contextmanager
def sshd_down(sandbox: cluster.Cluster, address: str) -> Iterator[None]:
    try:
        yield
    finally:
        cluster.start_sshd(sandbox, address)


# 1 -------------------------------------------------------------------------------------


def test_sshd_down_before_the_deploy_is_refused_in_preflight(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    down = sandbox.addresses[1]
    with sshd_down(sandbox, down):
        cluster.stop_sshd(sandbox, down)
        result = cli.run([WAR], on_125, capsys)
    assert result.code == 4
    assert f"{down}: sshd at {down}:22 refused the connection" in result.err
    assert "nothing was changed" in result.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert history(on_125)[-1]["outcome"] == "refused"
    assert_clean_end(on_125, sandbox)


# 2 -------------------------------------------------------------------------------------


def test_sshd_down_mid_rollout_stops_there(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second, third = sandbox.addresses
    with sshd_down(sandbox, second):
        on_phase(monkeypatch, first, Phase.DONE, lambda: cluster.stop_sshd(sandbox, second))
        result = cli.run([WAR], on_125, capsys)
        assert result.code == 1
        # the first step on the node: the mark that the tool (not an operator) takes it out
        taken_out = "marking the node as taken out of rotation"
        assert f"{second}: {taken_out}: connection lost" in result.err, result.err
        assert "To roll back: deploy rollback" in result.err
        assert (
            Balancer(str(haproxy.socket_path(sandbox)))
            .row(_node(on_125, second))["status"]
            .startswith("UP")
        )
        assert versions(sandbox) == {first: "1.0.126", second: "1.0.125", third: "1.0.125"}
        assert history(on_125)[-1]["hosts"][third]["outcome"] == "untouched"
        assert_clean_end(on_125, sandbox)
    monkeypatch.undo()
    again = cli.run([WAR], on_125, capsys)
    assert again.code == 0, again.text
    outcomes = {h: r["outcome"] for h, r in history(on_125)[-1]["hosts"].items()}
    assert outcomes == {first: "unchanged", second: "deployed", third: "deployed"}


# 3 -------------------------------------------------------------------------------------


def test_a_disk_that_fills_during_staging_stops_before_any_restart(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    second = sandbox.addresses[1]
    releases = sandbox.home(second) / "releases" / "search-web-frontend"
    set_key(on_125, "min_free_mb", "0")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(releases)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        on_phase(monkeypatch, second, Phase.STAGING, lambda: fill(releases))
        result = cli.run([fresh_war(on_125)], on_125, capsys)
        assert result.code == 1
        assert "staging failed; no node was restarted" in result.err
        assert f"{second}: upload of " in result.err
        assert "the partial file was removed; 0 KiB free" in result.err
        assert not list((releases / "blobs").glob("*.part"))
        assert versions(sandbox) == all_on(sandbox, "1.0.125")
    finally:
        subprocess.run(["umount", str(releases)], check=True)
    assert_clean_end(on_125, sandbox)


def fill(directory: Path) -> None:
    with (directory / "filler").open("wb") as stream, contextlib.suppress(OSError):
        while True:
            stream.write(b"\0" * 65536)
            stream.flush()


# 4 -------------------------------------------------------------------------------------


def bad_wars(directory: Path) -> dict[str, Path]:
    good = build_war("1.0.130", directory, artifact_id="search-web-frontend")
    truncated = directory / "search-web-frontend-1.0.131.war"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = directory / "search-web-frontend-1.0.132.war"
    empty.write_bytes(b"")
    other = build_war("1.0.133", directory, artifact_id="billing-web")
    other = other.rename(directory / "search-web-frontend-1.0.133.war")
    bare = directory / "search-web-frontend-1.0.134.war"
    with zipfile.ZipFile(bare, "w") as war:
        war.writestr("WEB-INF/web.xml", "<web-app/>")
    return {
        "not a valid WAR (zip) file": truncated,
        "the file is empty": empty,
        "artifactId 'billing-web'": other,
        "no META-INF/maven/*/*/pom.properties inside": bare,
    }


def test_bad_artifacts_are_refused_before_any_node_is_contacted(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    logins = accepted_logins(sandbox)
    for expected, war in bad_wars(on_125).items():
        result = cli.run([war.name], on_125, capsys)
        assert result.code == 3, (war.name, result.text)
        assert str(war) in result.err and expected in result.err
        assert history(on_125)[-1]["outcome"] == "refused"
    assert accepted_logins(sandbox) == logins
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert_clean_end(on_125, sandbox)


# 5 -------------------------------------------------------------------------------------


def test_an_upload_altered_on_the_node_is_caught_and_not_installed(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = node_module.Node.send_part

    def tamper(self: node_module.Node, local: Path, sha256: str) -> str:
        """Every copy of the WAR altered once it arrived: the one sent unchecked (its copy
        beside root.war finds it) and the one sent again (checked on its own)."""
        part = original(self, local, sha256)
        if local.name == WAR:
            self.run(f"printf x >> {node_module.shlex.quote(part)}", "tampering (test)")
        return part

    monkeypatch.setattr(node_module.Node, "send_part", tamper)
    result = cli.run([fresh_war(on_125)], on_125, capsys)
    assert result.code == 1
    assert "checksum on the node is" in result.err and "the copy was damaged" in result.err
    for address in sandbox.addresses:
        blobs = sandbox.home(address) / "releases" / "search-web-frontend" / "blobs"
        assert not list(blobs.glob("*.part"))
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert_clean_end(on_125, sandbox)


# 6 -------------------------------------------------------------------------------------


def test_a_status_that_never_answers_aborts_and_rollback_restores(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    hang = build_war("1.0.128", on_125, artifact_id="search-web-frontend", mode="hang")
    set_key(on_125, "ready_timeout", "4")
    set_key(on_125, "status_timeout", "1")
    result = cli.run([hang.name], on_125, capsys)
    assert result.code == 1
    assert f"{first}: not verified within 4 s" in result.err and "timed out" in result.err
    assert versions(sandbox) == {first: "", second: "1.0.125", third: "1.0.125"}
    set_key(on_125, "ready_timeout", "30")  # a hung JVM's graceful stop takes its 5 s
    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_a_slow_starter_that_misses_ready_timeout_names_the_key_and_what_it_needed(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """The node's start is recorded once with room to spare; with ready_timeout below it,
    the failure names the key, its line in .config, the recorded start and a value that
    covers it."""
    first = sandbox.addresses[0]
    slow = build_war("1.0.128", on_125, artifact_id="search-web-frontend", startup_delay_ms=5000)
    set_key(on_125, "ready_timeout", "30")
    learnt = cli.run([slow.name, "--hosts", first], on_125, capsys)
    assert learnt.code == 0, learnt.text
    needed = history(on_125)[-1]["hosts"][first]["restart_to_ready"]
    assert needed >= 5, needed
    set_key(on_125, "ready_timeout", "4")
    result = cli.run([slow.name, "--hosts", first, "--force"], on_125, capsys)
    assert result.code == 1, result.text
    assert f"{first}: not verified within 4 s (ready_timeout)" in result.err
    line = (on_125 / ".config").read_text().splitlines().index("ready_timeout = 4") + 1
    where = f"{on_125 / '.config'}:{line}: [deploy] ready_timeout"
    assert f"The limit was ready_timeout = 4 s ({where})." in result.err
    assert f"{needed:.1f} s from restart to ready in its last recorded runs" in result.err
    enough = math.ceil(2 * needed)
    said = f"ready_timeout = {enough} (2x the p95 of its recorded starts) would be enough"
    assert said in result.err
    set_key(on_125, "ready_timeout", "30")
    back = cli.run(["search-web-frontend-1.0.125.war", "--hosts", first], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


# 7 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "phase"),
    [(1, Phase.STAGING), (0, Phase.RESTARTING), (1, Phase.WAITING), (0, Phase.WARMING)],
)
def test_ctrl_c_in_each_phase(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    index: int,
    phase: Phase,
) -> None:
    host = sandbox.addresses[index]
    set_key(on_125, "warmup", "1")
    on_phase(monkeypatch, host, phase, lambda: os.kill(os.getpid(), signal.SIGINT))
    result = cli.run([fresh_war(on_125)], on_125, capsys)
    assert result.code == 130, result.text
    where = host if phase != Phase.STAGING else None
    entry = history(on_125)[-1]
    assert entry["outcome"] == "interrupted"
    if where:
        assert f"interrupted at node {where} in phase '{phase.value}'" in entry["message"]
    assert_clean_end(on_125, sandbox)
    monkeypatch.undo()
    checked(sandbox, on_125, host)
    mixed = cli.run([], on_125, capsys)
    row = next(line for line in mixed.out.splitlines() if host in line)
    if phase == Phase.WAITING:  # interrupted mid-restart: left drained, and status says so
        assert mixed.code == 1 and " DRAIN " in row, mixed.text
    else:
        assert mixed.code == 0 and " UP " in row, mixed.text
    again = cli.run([WAR], on_125, capsys)
    assert again.code == 0, again.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert cli.run([], on_125, capsys).code == 0


# 8 -------------------------------------------------------------------------------------


def test_a_coordinator_killed_mid_rollout_is_finished_by_running_it_again(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    process = subprocess.Popen(
        ["deploy", WAR], cwd=on_125, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if second in line and "waiting for /status" in line:
            process.kill()
            break
    process.wait()
    assert (on_125 / ".deploy.lock").exists()
    wait_all_answer(sandbox)
    checked(sandbox, on_125, second)
    status = cli.run([], on_125, capsys)
    assert status.code == 1  # the killed run left the second node drained in haproxy
    assert " DRAIN " in next(ln for ln in status.out.splitlines() if second in ln)
    assert "1.0.125" in next(ln for ln in status.out.splitlines() if third in ln)
    # the killed run's lock on the nodes holds until its lease ends: wait for it
    again = cli.run([WAR, "--lock-wait", "60"], on_125, capsys)
    assert again.code == 0, again.text
    assert cli.run([], on_125, capsys).code == 0
    outcomes = {h: r["outcome"] for h, r in history(on_125)[-1]["hosts"].items()}
    assert outcomes[first] == "unchanged" and outcomes[third] == "deployed"
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert_clean_end(on_125, sandbox)


# 9 -------------------------------------------------------------------------------------


def test_two_deploys_at_once_the_second_is_refused(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    set_key(on_125, "warmup", "1")
    first = subprocess.Popen(["deploy", WAR], cwd=on_125, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (on_125 / ".deploy.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        second = cli.run([WAR], on_125, capsys)
        assert second.code == 5
        assert f"(pid {first.pid}, `deploy {WAR} --app-dir " in second.err
        assert " since " in second.err
    finally:
        assert first.wait(timeout=120) == 0
    assert versions(sandbox) == all_on(sandbox, "1.0.126")


# 10 ------------------------------------------------------------------------------------


def test_an_unknown_host_key_is_refused_unless_the_user_opts_in(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    known = on_125 / "known_hosts"
    foreign = "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"
    known.write_text("# kept as it is\n" + foreign)
    set_key(on_125, "known_hosts", str(known))
    refused = cli.run([WAR], on_125, capsys)
    assert refused.code == 4
    assert "unknown host key" in refused.err and "accept_unknown_hosts = yes" in refused.err
    set_key(on_125, "accept_unknown_hosts", "yes")
    accepted = cli.run([WAR], on_125, capsys)
    assert accepted.code == 0, accepted.text
    assert all(address in known.read_text() for address in sandbox.addresses)
    assert known.read_text().startswith("# kept as it is\n" + foreign)


def test_a_changed_host_key_is_refused_loudly(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = sandbox.addresses[0]
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, body = other.with_suffix(".pub").read_text().split()[:2]
    lines = sandbox.known_hosts.read_text().splitlines()
    lines = [f"{first} {kind} {body}" if ln.startswith(f"{first} ") else ln for ln in lines]
    known = on_125 / "known_hosts"
    known.write_text("\n".join(lines) + "\n")
    set_key(on_125, "known_hosts", str(known))
    result = cli.run([WAR], on_125, capsys)
    assert result.code == 4
    assert f"{first}: HOST KEY CHANGED" in result.err and "ssh-keygen -R" in result.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


# 12 ------------------------------------------------------------------------------------


def test_hostile_names_never_reach_a_shell(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    canary = tmp_path / "c"
    evil = f"$(touch {canary}1) `touch {canary}2`; touch {canary}3 'q\"x"
    set_key(on_125, "releases_dir", f"~/releases/{evil}")
    war = on_125 / "search-web-frontend-1.0.126 $(touch c4) `touch c5`; touch c6 'q\"x.war"
    shutil.copy(on_125 / WAR, war)
    result = cli.run([war.name], on_125, capsys)
    assert result.code == 0, result.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert not list(tmp_path.glob("c[0-9]*"))
    for place in (on_125, Path("/root"), *map(sandbox.home, sandbox.addresses)):
        assert not [p for p in place.iterdir() if p.name in ("c4", "c5", "c6")], place
    for address in sandbox.addresses:
        assert (sandbox.home(address) / "releases" / evil / "current").is_file()

    hosts = cli.run([], on_125, capsys)
    assert hosts.code == 0
    set_key(on_125, "hosts", f"{sandbox.addresses[0]}, $(touch {canary}4)")
    refused = cli.run([WAR], on_125, capsys)
    assert refused.code == 3 and "is not a host name or address" in refused.err
    assert not list(tmp_path.glob("c[0-9]*"))

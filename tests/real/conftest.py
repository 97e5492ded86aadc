"""One real sandbox cluster for the whole session, and a fresh app directory per test.

The nodes (sshd + Jetty on 127.0.1.2-4) live as long as the session; each
test writes its own app directory (own history and lock) and starts from a
known state: every node on 1.0.125.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import app, cluster, haproxy
from sandbox.sample import build_war
from tests import cli
from tests.real import wheel
from tests.real.helpers import clear_deploy_locks, fail_on_leftovers

FIRST = os.environ.get("WARDEPLOY_TEST_FIRST", "127.0.1.2")  # where the nodes start
BROKEN = "1.0.127"


@pytest.fixture(autouse=True)
def ctrl_c_is_keyboard_interrupt() -> Iterator[None]:
    """Tests press Ctrl-C with a real SIGINT. A process started in the background by
    a non-interactive shell inherits SIGINT ignored, and Python then leaves it so:
    the tests set Python's own handler, as an interactive terminal would have it."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.Cluster]:
    root = tmp_path_factory.mktemp("sandbox")
    started = cluster.up(root, nodes=3, first=FIRST)
    try:
        haproxy.up(started)
        yield started
    finally:
        haproxy.down(started)
        cluster.down(root)
        left = cluster.end_leftovers(root)
        fail_on_leftovers(left, "the tests")


@pytest.fixture(scope="session")
def wars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample WARs, built once so every test deploys the same bytes."""
    out = tmp_path_factory.mktemp("wars")
    built = {v: build_war(v, out, artifact_id=app.APP) for v in app.VERSIONS}
    built[BROKEN] = build_war(BROKEN, out, artifact_id=app.APP, mode="broken")
    return built


@pytest.fixture(scope="session")
def installed_deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``deploy`` of this checkout's wheel in a fresh virtualenv (no extras), made once
    per session at a path every user can run it from: root runs it in test_install.py,
    ``wd-operator`` in test_production_shape.py."""
    parent = wheel.shared_parent()
    try:
        yield wheel.deploy_from_wheel(tmp_path_factory, parent / "venv")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def app_dir(sandbox: cluster.Cluster, wars: dict[str, Path], tmp_path: Path) -> Path:
    """A fresh app directory pointing at the sandbox, with warm-up 0. No deploy lock
    is left on the nodes from the test before (a run killed, or cut off from a node at
    its end, leaves its lock for its 20 s lease: the tests of that say so themselves)."""
    clear_deploy_locks(sandbox)
    path = tmp_path / app.APP
    socket = str(haproxy.socket_path(sandbox))
    app.write(sandbox, path, versions=(), warmup=0, ready_timeout=10, balancer=socket)
    for version in app.VERSIONS:
        shutil.copy(wars[version], path / wars[version].name)
    return path


@pytest.fixture
def on_125(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Every node runs 1.0.125 from this app directory's first deploy."""
    result = cli.run(["search-web-frontend-1.0.125.war"], app_dir, capsys)
    assert result.code == 0, result.text
    return app_dir


@pytest.fixture
def bastion(sandbox: cluster.Cluster) -> Iterator[tuple[str, str]]:
    """A jump host on its own loopback address: (address, its known_hosts line)."""
    address = str(ipaddress.IPv4Address(sandbox.addresses[0]) + 16)
    line = cluster.start_bastion(sandbox, address)
    try:
        yield address, line
    finally:
        cluster.stop_bastion(sandbox, address)

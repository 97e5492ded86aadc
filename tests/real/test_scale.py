"""Light nodes (`sandbox.scale`) on the real stack: a batched deploy through haproxy, and
a light server that, like a starting JVM, answers only after its start delay.

Six nodes on 127.0.13.2-7 (haproxy on 127.0.13.1), for this module only; stopped by
PID at its end, and the module fails if anything they started is still running.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fabfile.cluster.balancer import Balancer
from sandbox import app, cluster, haproxy, scale
from sandbox.cluster import Cluster
from tests import cli
from tests.real.helpers import all_on, fail_on_leftovers, versions

pytestmark = pytest.mark.real
FIRST = "127.0.13.2"
NODES = 6
DELAY = 1.0  # each light server's start delay, seconds
OLD, NEW = "1.0.0", "1.0.1"


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("light")
    started = scale.up(root, NODES, FIRST, start_delay=DELAY)
    try:
        haproxy.up(started)
        yield started
    finally:
        haproxy.down(started)
        scale.down(root)
        fail_on_leftovers(cluster.end_leftovers(root), "the light sandbox")


@pytest.fixture(scope="module")
def app_dir(light: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample app on the light nodes, behind haproxy, with warm-up 0."""
    path = tmp_path_factory.mktemp("apps") / app.APP
    socket = str(haproxy.socket_path(light))
    scale.write(light, path, (OLD, NEW), warmup=0, balancer=socket, ready_timeout=10)
    return path


def test_a_batched_deploy_brings_every_light_node_to_the_new_version(
    light: Cluster, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = cli.run([f"{app.APP}-{OLD}.war", "--batch", "3"], app_dir, capsys)
    assert first.code == 0, first.text
    assert versions(light) == all_on(light, OLD)
    before = scale.server_pids(light)

    result = cli.run([f"{app.APP}-{NEW}.war", "--batch", "2"], app_dir, capsys)

    assert result.code == 0, result.text
    assert "batch 3/3" in result.text
    assert versions(light) == all_on(light, NEW)
    after = scale.server_pids(light)
    assert sorted(after) == sorted(light.addresses)
    assert all(after[a] != before[a] for a in light.addresses), (before, after)
    assert _haproxy_states(light) == {f"node{i}": ("UP", 100) for i in range(1, NODES + 1)}


def test_a_light_server_answers_only_after_its_start_delay(light: Cluster) -> None:
    address = light.addresses[-1]
    old = scale.server_pid(light, address)

    cluster.ssh(light, address, "~/bin/light restart")
    new = _new_server(light, address, old)
    named = time.monotonic()  # the old server is gone: the new one is in its delay

    with pytest.raises(requests.ConnectionError):
        requests.get(light.url(address), timeout=2)
    answered = _first_answer(light, address, timeout=DELAY + 5)
    assert answered - named >= DELAY - 0.05
    assert scale.server_pid(light, address) == new


def _new_server(light: Cluster, address: str, old: int | None, timeout: float = 5) -> int:
    """The PID of the server that replaced ``old``, once the PID file names it."""
    deadline = time.monotonic() + timeout
    while (pid := scale.server_pid(light, address)) in (None, old):
        assert time.monotonic() < deadline, f"no new light server on {address} (old: {old})"
        time.sleep(0.005)
    assert pid is not None
    return pid


def _first_answer(light: Cluster, address: str, timeout: float) -> float:
    """When the node first answered HTTP at all (any status: the WAR may not be there)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(light.url(address), timeout=2)
            return time.monotonic()
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"{address} never answered"
            time.sleep(0.01)


def _haproxy_states(light: Cluster) -> dict[str, tuple[str, int]]:
    text = Balancer(str(haproxy.socket_path(light))).command("show stat").lstrip("# ")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["svname"].startswith("node")]
    return {r["svname"]: (r["status"], int(r["weight"])) for r in rows}

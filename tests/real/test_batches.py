"""Batches, the canary, max_failures and the warm-up on the real sandbox under load.

Every test starts with the three nodes on 1.0.125 behind haproxy, and a paced
load through haproxy that samples every server's state and weight between
requests: "never more than the batch out" is what haproxy itself reported.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from fabfile.app import config
from fabfile.app.config import NodeConfig
from fabfile.cluster.balancer import Balancer
from sandbox import cluster, haproxy
from tests import cli
from tests.real.helpers import all_on, history, override, verdicts, versions

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"


class Load(threading.Thread):
    """Paced requests through haproxy; between them, haproxy's view of every node."""

    def __init__(self, sandbox: cluster.Cluster) -> None:
        super().__init__(daemon=True)
        self.balancer = Balancer(str(haproxy.socket_path(sandbox)))
        self.url = haproxy.url(sandbox, "/status")
        self.samples: list[dict[str, tuple[str, int]]] = []  # server -> (status, weight)
        self.served = 0
        self.failed: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                self.sample()
                try:
                    response = session.get(self.url, timeout=5)
                    ok, detail = response.status_code == 200, f"HTTP {response.status_code}"
                except requests.RequestException as error:
                    ok, detail = False, type(error).__name__
                self.served += 1
                if not ok:
                    self.failed.append(detail)
                time.sleep(0.01)

    def sample(self) -> None:
        text = self.balancer.command("show stat").lstrip("# ")
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r["svname"].startswith("node")]
        self.samples.append({r["svname"]: (r["status"], int(r["weight"] or 0)) for r in rows})

    def most_out(self) -> int:
        return max(
            sum(not s.startswith("UP") for s, _ in sample.values()) for sample in self.samples
        )

    def weights(self, server: str) -> list[int]:
        seen: list[int] = []
        for sample in self.samples:
            weight = sample[server][1]
            if not seen or seen[-1] != weight:
                seen.append(weight)
        return seen

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()
        self.sample()


def set_keys(app_dir: Path, **keys: str) -> None:
    """Set [deploy] keys (replacing the sandbox's own value of each)."""
    config = app_dir / ".config"
    names = tuple(f"{key} =" for key in keys)
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith(names)]
    at = lines.index("[deploy]") + 1
    lines[at:at] = [f"{key} = {value}" for key, value in keys.items()]
    config.write_text("\n".join(lines) + "\n")


def deploy_until(
    app_dir: Path, argv: list[str], when: Callable[[str], bool], then: Callable[[], None]
) -> tuple[int, str]:
    """Run ``deploy`` and call ``then`` once at the first output line ``when`` accepts."""
    process = subprocess.Popen(
        ["deploy", *argv], cwd=app_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen, done = [], False
    for line in process.stdout:
        seen.append(line)
        if not done and when(line):
            done = True
            then()
    return process.wait(), "".join(seen)


def test_a_batch_of_two_has_two_out_at_most_and_no_request_fails(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with Load(sandbox) as load:
        result = cli.run([WAR, "--batch", "2"], on_125, capsys)
    assert result.code == 0, result.text
    first, second, third = sandbox.addresses
    assert f"batch 1/2: {first}, {second}" in result.out
    assert f"batch 2/2: {third}" in result.out
    assert load.most_out() == 2  # two at once, never three
    assert load.served > 50
    assert load.failed == []
    assert versions(sandbox) == all_on(sandbox, "1.0.126")


def test_the_report_draws_where_each_node_of_each_batch_spent_its_time(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.run([WAR, "--batch", "2"], on_125, capsys).code == 0
    first, second, third = sandbox.addresses
    began = {host: dict(r["phases"]) for host, r in history(on_125)[-1]["hosts"].items()}
    # the timeline the history keeps: two restarts at once, the third once both were done
    assert max(began[first]["restarting"], began[second]["restarting"]) < min(
        began[first]["done"], began[second]["done"]
    )
    assert began[third]["draining"] >= max(began[first]["done"], began[second]["done"])

    picture = tmp_path / "run.svg"
    result = cli.run(["report", "--json", "--output", str(picture)], on_125, capsys)
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert data["run"] == len(history(on_125)) and data["picture"] == str(picture)
    assert [row["node"] for row in data["nodes"]] == [first, second, third]
    for row in data["nodes"]:
        assert row["ended"] == "done"
        assert row["phases"]["waiting for /status"] > 0.2  # a JVM takes that long at least
    assert ET.parse(picture).getroot().tag.endswith("svg")
    assert f"<!-- {third} -->" in picture.read_text()

    shown = cli.run(["report"], on_125, capsys)  # the table, and the page in the current dir
    assert shown.code == 0, shown.text
    assert f"timeline: timeline-{data['run']}.html" in shown.out
    assert f"<tr><td>{first}</td>" in (on_125 / f"timeline-{data['run']}.html").read_text()
    lines = shown.out.splitlines()
    assert any(line.startswith(third) and line.rstrip().endswith("done") for line in lines)


def test_a_canary_that_turns_unhealthy_stops_the_deploy_with_only_it_changed(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    set_keys(on_125, canary="1", canary_wait="30")
    pid_file = sandbox.home(first) / "run" / "jetty.pid"

    def kill_the_canary() -> None:  # a JVM the sandbox started, ended by its PID
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)

    started = time.monotonic()
    code, out = deploy_until(
        on_125, [WAR], lambda line: f"canary {first}: watching" in line, kill_the_canary
    )
    assert code == 1, out
    assert time.monotonic() - started < 30  # Failed as soon as seen, not after canary_wait
    assert f"canary {first}: Failed: {first}: /status answered" in out
    assert "the other nodes were not touched" in out
    assert versions(sandbox) == {first: "", second: "1.0.125", third: "1.0.125"}
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    assert balancer.row(_node(on_125, first))["status"] == "MAINT"
    last = history(on_125)[-1]
    assert last["outcome"] == "failed" and verdicts(last).startswith("Failed: ")

    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_a_healthy_canary_is_judged_on_real_traffic_then_the_rest_goes(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(on_125, canary="1", canary_wait="3", canary_min_requests="5")
    with Load(sandbox) as load:
        result = cli.run([WAR], on_125, capsys)
    assert result.code == 0, result.text
    first = sandbox.addresses[0]
    assert f"canary {first}: Successful: " in result.out
    assert load.failed == []
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert verdicts(history(on_125)[-1]).startswith("Successful: ")


def test_a_canary_without_traffic_is_inconclusive_and_stops_without_a_terminal(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    set_keys(on_125, canary="1", canary_wait="1", canary_min_requests="1000")
    result = cli.run([WAR], on_125, capsys)
    assert result.code == 1
    assert f"canary {first}: Inconclusive: " in result.err
    assert versions(sandbox) == {first: "1.0.126", second: "1.0.125", third: "1.0.125"}


def test_max_failures_1_goes_past_one_broken_node_and_stops_at_the_second(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    set_keys(on_125, max_failures="1")
    for broken in (first, third):
        override(on_125, broken, restart="sh -c 'exit 7'")
    result = cli.run([WAR], on_125, capsys)
    assert result.code == 1
    assert "1 of max_failures (1) used, going on" in result.out
    assert "2 node(s) failed, more than max_failures (1); stopped there." in result.err
    assert versions(sandbox) == all_on(sandbox, "1.0.125") | {second: "1.0.126"}
    hosts = history(on_125)[-1]["hosts"]
    assert [hosts[a]["outcome"] for a in sandbox.addresses] == ["failed", "deployed", "failed"]
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    states = {a: balancer.row(_node(on_125, a))["status"] for a in sandbox.addresses}
    assert states == {first: "MAINT", second: "UP", third: "MAINT"}

    (on_125 / ".config").write_text(
        (on_125 / ".config").read_text().replace("restart = sh -c 'exit 7'\n", "")
    )
    back = cli.run(["rollback"], on_125, capsys)
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")


def test_an_unhealthy_node_goes_first(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    third = sandbox.addresses[2]
    os.kill(int((sandbox.home(third) / "run" / "jetty.pid").read_text().strip()), signal.SIGKILL)
    result = cli.run([WAR], on_125, capsys)
    assert result.code == 0, result.text
    installing = [line.split()[1] for line in result.out.splitlines() if " installing" in line]
    assert installing == [third, *sandbox.addresses[:2]]
    assert versions(sandbox) == all_on(sandbox, "1.0.126")


def test_warm_up_fetches_the_urls_and_ramps_the_weight(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(on_125, warmup="2", warmup_urls="/status, /nowhere")
    with Load(sandbox) as load:
        result = cli.run([WAR], on_125, capsys)
    assert result.code == 0, result.text
    first = sandbox.addresses[0]
    assert f"{first}: warm-up fetched 1 of 2 path(s) from the node (not: http://" in result.out
    assert "/nowhere: HTTP 404" in result.out
    assert "haproxy weight ramping up" in result.out
    ramp = load.weights("node1")
    assert ramp[0] == 100 and ramp[-1] == 100
    assert any(0 < weight < 100 for weight in ramp), ramp  # a share, rising, then full
    for server in ("node1", "node2", "node3"):  # the last one too: full weight at the end
        assert load.weights(server)[-1] == 100, (server, load.weights(server))
    assert load.failed == []


def _node(app_dir: Path, address: str) -> NodeConfig:
    return next(n for n in config.load(app_dir / ".config").nodes if n.host == address)

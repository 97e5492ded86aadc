"""``deploy history --stats`` on the real sandbox: real deploys, a failed one and
rollbacks, then the delivery metrics counted from what they recorded."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path

import pytest

from sandbox import cluster
from tests import cli
from tests.real.conftest import BROKEN
from tests.real.helpers import all_on, history, override, versions

pytestmark = pytest.mark.real


def test_stats_count_the_deploys_failures_and_restores_that_ran(
    on_125: Path,
    sandbox: cluster.Cluster,
    wars: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second, _ = sandbox.addresses
    assert cli.run(["search-web-frontend-1.0.126.war"], on_125, capsys).code == 0  # run 2
    assert cli.run(["rollback"], on_125, capsys).code == 0  # run 3: run 2 failed
    shutil.copy(wars[BROKEN], on_125)
    override(on_125, first, ready_timeout="600", error_grace="2")
    broken = cli.run([f"search-web-frontend-{BROKEN}.war"], on_125, capsys)  # run 4
    assert broken.code == 1, broken.text
    back = cli.run(["rollback"], on_125, capsys)  # run 5
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    recorded = history(on_125)
    assert [(e["action"], e["outcome"]) for e in recorded] == [
        ("deploy", "ok"),
        ("deploy", "ok"),
        ("rollback", "ok"),
        ("deploy", "failed"),
        ("rollback", "ok"),
    ]

    result = cli.run(["history", "--stats", "--json"], on_125, capsys)
    assert result.code == 0, result.text
    stats = json.loads(result.out)
    assert (stats["runs"], stats["deploys"], stats["deploy_runs"]) == (5, 3, [1, 2, 4])
    assert stats["deploys_per_day"] == 3.0  # a history younger than a day counts as one
    assert (stats["failed"], stats["change_failure_rate"]) == (2, round(2 / 3, 4))
    assert stats["failures"] == [
        {"run": 2, "why": "rolled back by run 3"},
        {"run": 4, "why": "failed, rolled back by run 5"},
    ]
    restores = stats["time_to_restore"]["restores"]
    assert [(r["failed"], r["restored"]) for r in restores] == [(2, 3), (4, 5)]
    assert stats["time_to_restore"]["unrestored"] == 0
    assert all(0 <= r["seconds"] < 600 for r in restores)
    ok_seconds = [
        e["seconds"] for e in recorded if e["action"] == "deploy" and e["outcome"] == "ok"
    ]
    assert stats["duration"]["deploys"] == 2
    assert stats["duration"]["median"] == round(statistics.median(ok_seconds), 3)
    assert stats["duration"]["p95"] == max(ok_seconds)  # nearest rank of two: the larger
    ready = {
        node: [e["hosts"][node]["restart_to_ready"] for e in recorded if e["hosts"].get(node)]
        for node in sandbox.addresses
    }
    ready = {node: [s for s in times if s is not None] for node, times in ready.items()}
    nodes = {n["node"]: n for n in stats["nodes"]}
    assert set(nodes) == set(sandbox.addresses)
    for node, times in ready.items():
        # runs 2 and 3 restarted it; run 1 too unless a test before left it on 1.0.125
        assert nodes[node]["restarts"] == len(times) >= 2
        nearest = sorted(times)[math.ceil(0.95 * len(times)) - 1]
        assert nodes[node]["p95_restart_to_ready"] == nearest
    assert recorded[4]["hosts"][first]["restart_to_ready"] is not None  # run 5 brought it back
    assert nodes[second]["ready_timeout"] == 10 and nodes[second]["suggested_ready_timeout"] is None
    assert stats["hints"] == []

    # ready_timeout closer than twice the p95 restart-to-ready: a hint with what to set
    p95 = nodes[second]["p95_restart_to_ready"]
    override(on_125, second, ready_timeout=f"{p95:.3f}")
    hinted = json.loads(cli.run(["history", "--stats", "--json"], on_125, capsys).out)
    suggested = math.ceil(2 * p95)
    assert {n["node"]: n["suggested_ready_timeout"] for n in hinted["nodes"]}[second] == suggested
    shown = cli.run(["history", "--stats"], on_125, capsys)
    assert shown.code == 0, shown.text
    assert "Deploys              3.00 a day" in shown.out
    assert "Change failure rate  67%" in shown.out
    timeout = float(f"{p95:.3f}")
    assert f"hint: {second}: ready_timeout = {timeout:g} is under 2 x its p95" in shown.out
    assert f"set ready_timeout = {suggested} ([host:{second}] in .config" in shown.out
    assert hinted["hints"] == [line for line in shown.out.splitlines() if line.startswith("hint:")]

    hour = json.loads(
        cli.run(["history", "--stats", "--since", "1h", "--json"], on_125, capsys).out
    )
    assert (hour["deploys"], hour["deploys_per_day"]) == (3, 72.0)  # 3 in a window of 1/24 day
    bad = cli.run(["history", "--stats", "--since", "0d"], on_125, capsys)
    assert bad.code == 2 and "such as --since 30d, 12h or 2w" in bad.err

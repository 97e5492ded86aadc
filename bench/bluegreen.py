"""Benchmark: blue/green deploy, switch and rollback on Tomcat under load, beside the
rolling rows of bench/rollout.py (same machine, same paced wrk load through haproxy).

    python3 bench/bluegreen.py [--runs 3] [--hosts 3] [--warmup 3] [--rate 1000] [--users 20]

Brings up its own sandbox (3 hosts with a blue and a green Tomcat 10 each, sessions
replicated, on 127.0.6.x; haproxy on 127.0.6.1 with a cookie that keeps a user on a
host), logs ``--users`` users in through haproxy before each scenario and counts
those no longer logged in after it (sessions lost). Prints a table and writes it
as JSON to bench/results/bluegreen.json: the median of ``--runs`` runs, with range.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.load import Load  # noqa: E402
from bench.scenario import bytes_sent, deploy, log_in, logged_in, report, row  # noqa: E402
from sandbox import app, cluster, haproxy, tomcat, tomcat_app  # noqa: E402
from sandbox.sample import build_war  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench-bg")
OLD, NEW = "2.0.0", "2.0.1"
SCENARIOS = ("blue/green: deploy", "blue/green: switch", "blue/green: rollback")


def main() -> None:
    args = _arguments()
    nodes = cluster.up(ROOT, args.hosts, first="127.0.6.2")
    try:
        app_dir = ROOT / "apps" / app.APP
        wars = _prepare(nodes, app_dir, args)
        tomcats = tomcat.up(nodes, tomcat.BLUE_GREEN, replicate=True, war=wars[OLD])
        haproxy.up(nodes, haproxy.tomcat_config_text(tomcats))
        runs = []
        for number in range(1, args.runs + 1):
            print(f"run {number} of {args.runs}", flush=True)
            deploy(app_dir, wars[OLD])  # the same start: every live colour on OLD,
            deploy(app_dir, wars[OLD], "--no-switch", "--force")  # and every idle one
            runs.append(_scenarios(nodes, app_dir, wars, args))
    finally:
        haproxy.down(nodes)
        tomcat.down(ROOT)
        for address in nodes.addresses:
            cluster.stop_sshd(nodes, address)
    report(runs, SCENARIOS, args.out)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s on haproxy")
    parser.add_argument("--users", type=int, default=20, help="logged in before each scenario")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bluegreen.json")
    return parser.parse_args()


def _prepare(nodes: cluster.Cluster, app_dir: Path, args: argparse.Namespace) -> dict[str, Path]:
    layout = tomcat.Tomcats(nodes, tomcat.BLUE_GREEN, replicate=True)
    socket = str(haproxy.socket_path(nodes))
    tomcat_app.write(
        layout, app_dir, (), warmup=args.warmup, balancer=socket, strategy="blue-green"
    )
    (app_dir / ".deploy-history.jsonl").unlink(missing_ok=True)
    built = {v: build_war(v, app_dir, artifact_id=app.APP, container="tomcat") for v in (OLD, NEW)}
    return built


def _scenarios(
    nodes: cluster.Cluster, app_dir: Path, wars: dict[str, Path], args: argparse.Namespace
) -> list[dict[str, Any]]:
    plan: list[tuple[str, Callable[[], float]]] = [
        (SCENARIOS[0], lambda: deploy(app_dir, wars[NEW])),
        (SCENARIOS[1], lambda: deploy(app_dir, None, "switch")),  # back to OLD ...
        ("", lambda: deploy(app_dir, None, "switch")),  # ... and to NEW again, unmeasured
        (SCENARIOS[2], lambda: deploy(app_dir, None, "rollback")),
    ]
    rows = []
    for name, run in plan:
        users = [log_in(nodes, f"user{i}") for i in range(args.users)]
        with Load(haproxy.url(nodes, "/"), args.rate) as load:
            seconds = run()
        lost = sum(not logged_in(nodes, user, f"user{i}") for i, user in enumerate(users))
        if name:
            rows.append(row(name, seconds, load, lost, bytes_sent(app_dir)))
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()

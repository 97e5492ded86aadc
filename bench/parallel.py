"""Benchmark: Tomcat parallel deployment (deploy beside, retire, rollback) under load,
beside the rolling rows of bench/rollout.py and the blue/green ones of
bench/bluegreen.py (same machine, same paced wrk load through haproxy).

    python3 bench/parallel.py [--runs 3] [--hosts 3] [--rate 1000] [--users 20]

Brings up its own sandbox (3 hosts with one Tomcat 10 each on 127.0.9.x; haproxy on
127.0.9.1 with a cookie that keeps a user on a host). Before each scenario
``--users`` users log in through haproxy; after it, those no longer logged in are
counted (sessions lost). The retire row is timed after those users logged out,
so it measures the undeploys, not the users. Also prints each JVM's RSS with one
version and with two. Writes everything as JSON to bench/results/parallel.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.load import Load  # noqa: E402
from bench.scenario import bytes_sent, deploy, log_in, logged_in, report, row  # noqa: E402
from sandbox import app, cluster, haproxy, tomcat, tomcat_app  # noqa: E402
from sandbox.sample import build_war  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench-parallel")
OLD, NEW = "2.0.0", "2.0.1"
SCENARIOS = ("parallel: deploy", "parallel: retire", "parallel: rollback")


def main() -> None:
    args = _arguments()
    nodes = cluster.up(ROOT, args.hosts, first="127.0.9.2")
    try:
        tomcats = tomcat.up(nodes, tomcat.SINGLE, replicate=False)
        tomcat.start_empty(tomcats)
        haproxy.up(nodes, haproxy.tomcat_config_text(tomcats, sticky=True))
        app_dir = ROOT / "apps" / app.APP
        wars = _prepare(tomcats, app_dir)
        runs, memory = [], []
        for number in range(1, args.runs + 1):
            print(f"run {number} of {args.runs}", flush=True)
            deploy(app_dir, wars[OLD], "--force")  # the same start: OLD alone, everywhere
            deploy(app_dir, None, "retire", "--now")
            rows, rss = _scenarios(tomcats, app_dir, wars, args)
            runs.append(rows)
            memory.append(rss)
    finally:
        haproxy.down(nodes)
        tomcat.down(ROOT)
        for address in nodes.addresses:
            cluster.stop_sshd(nodes, address)
    rss = {key: statistics.median(m[key] for m in memory) for key in memory[0]}
    report(runs, SCENARIOS, args.out, {"rss_mib": rss})
    print(f"RSS per Tomcat, MiB (median): one version {rss['one']:.0f}, two {rss['two']:.0f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s on haproxy")
    parser.add_argument("--users", type=int, default=20, help="logged in before each scenario")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "parallel.json")
    return parser.parse_args()


def _prepare(tomcats: tomcat.Tomcats, app_dir: Path) -> dict[str, Path]:
    tomcat_app.write(tomcats, app_dir, (), warmup=0, strategy="parallel")
    config = app_dir / ".config"
    config.write_text(config.read_text() + "retire = manual\n")
    (app_dir / ".deploy-history.jsonl").unlink(missing_ok=True)
    built = {v: build_war(v, app_dir, artifact_id=app.APP, container="tomcat") for v in (OLD, NEW)}
    return built


def _scenarios(
    tomcats: tomcat.Tomcats, app_dir: Path, wars: dict[str, Path], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    nodes = tomcats.cluster
    rss = {"one": _rss_mib(tomcats)}
    plan: list[tuple[str, Callable[[], float], str]] = [
        (SCENARIOS[0], lambda: deploy(app_dir, wars[NEW]), "deploy"),
        (SCENARIOS[1], lambda: deploy(app_dir, None, "retire"), "retire"),
        (SCENARIOS[2], lambda: deploy(app_dir, None, "rollback"), "rollback"),
    ]
    rows: list[dict[str, Any]] = []
    earlier: list[requests.Session] = []
    for name, run, action in plan:
        users = [log_in(nodes, f"user{i}") for i in range(args.users)]
        if action == "retire":  # everybody logs out: retire then has nothing to wait for
            for user in earlier + users:
                user.post(haproxy.url(nodes, "/logout"), timeout=5).raise_for_status()
        earlier += users
        with Load(haproxy.url(nodes, "/"), args.rate) as load:
            seconds = run()
        if action == "deploy":
            rss["two"] = _rss_mib(tomcats)
        kept = users if action != "retire" else []
        lost = sum(not logged_in(nodes, user, f"user{i}") for i, user in enumerate(kept))
        rows.append(row(name, seconds, load, lost, bytes_sent(app_dir, action)))
        print(rows[-1], flush=True)
    return rows, rss


def _rss_mib(tomcats: tomcat.Tomcats) -> float:
    """The mean resident memory of the hosts' Tomcat JVMs."""
    pids = [tomcat.jvm(tomcats, address, name) for address, name in tomcats.all()]
    return statistics.mean(cluster.rss_kib(pid) for pid in pids if pid) / 1024


if __name__ == "__main__":
    main()

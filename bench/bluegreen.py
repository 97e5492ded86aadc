"""Benchmark: blue/green deploy, switch and rollback on Tomcat under load, beside the
rolling rows of bench/rollout.py (same machine, same paced wrk load through haproxy).

    python3 bench/bluegreen.py [--runs 3] [--hosts 3] [--warmup 3] [--rate 1000] [--users 20]
                               [--first 127.0.6.2] [--root /tmp/wardeploy-bench-bg]

Brings up its own sandbox (3 hosts with a blue and a green Tomcat 10 each, sessions
replicated, from ``--first``, 127.0.6.2 on; haproxy on that net's .1 with a cookie that
keeps a user on a host; ``--root`` moves its directory, so two of them can run at
once), logs ``--users`` users in through haproxy before each scenario and counts those
no longer logged in after it (sessions lost). Prints a table and writes it
as JSON to bench/results/bluegreen.json: the median of ``--runs`` runs, with range,
and the machine's load average at the start and at the end.

Beside the deploy (every idle colour started at once, the default), two rows measured in
the same run on the same cluster: "one host after another" (the same deploy with
``idle_starts = 1``, the old order) and "floor": one idle colour's restart to verified
when it starts alone (a ``--no-switch --force`` deploy of one host, from its history's
``restart_to_ready``) + ``warmup`` + the deploy's own switches (from its history's phases).
The deploy row's time is also split (``deploy_parts`` in the JSON): its slowest idle
colour's restart to verified, the warm-up, the switches, and the rest, the tool's own
time; beside the floor's start alone, that tells the tool from the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.load import Load  # noqa: E402
from bench.scenario import bytes_sent, deploy, log_in, logged_in, report, row  # noqa: E402
from fabfile.records.history import History  # noqa: E402
from sandbox import app, cluster, haproxy, tomcat, tomcat_app  # noqa: E402
from sandbox.sample import build_war  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench-bg")
OLD, NEW = "2.0.0", "2.0.1"
SCENARIOS = (
    "blue/green: deploy",
    "blue/green: switch",
    "blue/green: rollback",
    "one host after another",
    "floor",
)


def main() -> None:
    args = _arguments()
    load_before = os.getloadavg()
    nodes = cluster.up(args.root, args.hosts, first=args.first)
    try:
        app_dir = args.root / "apps" / app.APP
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
        tomcat.down(args.root)
        for address in nodes.addresses:
            cluster.stop_sshd(nodes, address)
    report(runs, SCENARIOS, args.out, _extra(runs, load_before))


def _extra(runs: list[list[dict[str, Any]]], load_before: tuple[float, ...]) -> dict[str, Any]:
    """The ratios the issue asks for, of the medians, and the machine's load."""
    median = {
        name: statistics.median(run[i]["seconds"] for run in runs)
        for i, name in enumerate(SCENARIOS)
    }
    extra = {
        "deploy_over_floor": round(median[SCENARIOS[0]] / median["floor"], 2),
        "one_by_one_over_deploy": round(median[SCENARIOS[3]] / median[SCENARIOS[0]], 2),
        "loadavg": {"start": list(load_before), "end": list(os.getloadavg())},
        "cpus": os.cpu_count(),
        "deploy_parts": {
            part: statistics.median(run[0]["parts"][part] for run in runs)
            for part in runs[0][0]["parts"]
        },
    }
    print(
        f"deploy / floor = {extra['deploy_over_floor']}; one host after another / deploy = "
        f"{extra['one_by_one_over_deploy']}; load average {load_before[0]:.2f} at the start, "
        f"{extra['loadavg']['end'][0]:.2f} at the end ({extra['cpus']} CPUs)"
    )
    parts = extra["deploy_parts"]
    print(
        f"the deploy row, medians: idle colours' starts at once {parts['starts_at_once']:.2f} s "
        f"(one alone: {parts['start_alone']:.2f} s), warm-up {parts['warmup']:g} s, switches "
        f"{parts['switches']:.2f} s, the tool's own time {parts['tool']:.2f} s"
    )
    return extra


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s on haproxy")
    parser.add_argument("--users", type=int, default=20, help="logged in before each scenario")
    parser.add_argument("--first", default="127.0.6.2", help="the first host's address")
    parser.add_argument("--root", type=Path, default=ROOT, help="the sandbox's directory")
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
    first = nodes.addresses[0]
    switches: list[float] = []
    starts: dict[str, float] = {}
    plan: list[tuple[str, Callable[[], float]]] = [
        (SCENARIOS[0], lambda: _deploy_and_read_switches(app_dir, wars[NEW], switches, starts)),
        (SCENARIOS[1], lambda: deploy(app_dir, None, "switch")),  # back to OLD ...
        ("", lambda: deploy(app_dir, None, "switch")),  # ... and to NEW again, unmeasured
        (SCENARIOS[2], lambda: deploy(app_dir, None, "rollback")),
        ("", lambda: deploy(app_dir, wars[OLD], "--no-switch", "--force")),  # idle on OLD
        (SCENARIOS[3], lambda: _one_by_one(app_dir, wars[NEW])),
        # the idle colours run OLD again (the ones live before): one of them starts alone
        (SCENARIOS[4], lambda: _floor(app_dir, wars[NEW], first, args.warmup, switches, starts)),
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
    rows[0]["parts"] = _parts(rows[0]["seconds"], starts, switches[0], args.warmup)
    return rows


def _parts(
    seconds: float, starts: dict[str, float], switches: float, warmup: float
) -> dict[str, float]:
    """Where the deploy row's time went: its idle colours' starts side by side (the
    slowest, when they started at once, against one started alone in the floor row),
    the warm-up and switches, and the rest: the tool's own time (start-up, pre-flight,
    staging, installs, restart commands)."""
    together = starts["together"]
    return {
        "starts_at_once": round(together, 2),
        "start_alone": round(starts["alone"], 2),
        "warmup": warmup,
        "switches": round(switches, 2),
        "tool": round(seconds - together - warmup - switches, 2),
    }


def _deploy_and_read_switches(
    app_dir: Path, war: Path, switches: list[float], starts: dict[str, float]
) -> float:
    """The deploy's wall time; ``switches`` gets how long its switches took, from the first
    host's ``switching`` to the last one's ``done`` (as its history records them), and
    ``starts["together"]`` its slowest idle colour's restart to verified."""
    seconds = deploy(app_dir, war)
    hosts = History(app_dir / ".deploy-history.jsonl").records()[-1].hosts.values()
    starts["together"] = max(h.restart_to_ready for h in hosts if h.restart_to_ready)
    began = [at for host in hosts for phase, at in host.phases if phase == "switching"]
    ended = [_after(host.phases, "switching") for host in hosts]
    switches[:] = [max(at for at in ended if at is not None) - min(began)]
    return seconds


def _after(phases: list[tuple[str, float]], phase: str) -> float | None:
    """When the phase after ``phase`` began (None when ``phase`` is not there)."""
    names = [name for name, _ in phases]
    if phase not in names or names.index(phase) + 1 >= len(phases):
        return None
    return phases[names.index(phase) + 1][1]


def _one_by_one(app_dir: Path, war: Path) -> float:
    """The same deploy in the old order: ``idle_starts = 1``."""
    config = app_dir / ".config"
    text = config.read_text()
    config.write_text(text.replace("[deploy]\n", "[deploy]\nidle_starts = 1\n", 1))
    try:
        return deploy(app_dir, war)
    finally:
        config.write_text(text)


def _floor(
    app_dir: Path,
    war: Path,
    host: str,
    warmup: float,
    switches: list[float],
    starts: dict[str, float],
) -> float:
    """One idle colour's restart to verified, started alone (on ``host``), + the warm-up
    + the switches of the deploy row: what a deploy of every host at once cannot beat."""
    deploy(app_dir, war, "--no-switch", "--force", "--hosts", host)  # the idle one, alone
    hosts = History(app_dir / ".deploy-history.jsonl").records()[-1].hosts.values()
    alone = [h.restart_to_ready for h in hosts if h.restart_to_ready is not None]
    assert len(alone) == 1, f"expected one idle colour restarted on {host}, got {alone}"
    starts["alone"] = alone[0]
    return alone[0] + warmup + switches[0]


if __name__ == "__main__":
    main()

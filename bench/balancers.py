"""Benchmark: what haproxy on its own hosts costs. The same rolling deploy of 3 Jetty
nodes, and the same status table, through haproxy's socket on this machine and through
two balancers over SSH (each behind the bastion, its socket reached with ``sudo -n
socat``), on one production-shaped sandbox, runs interleaved so both see the same load.

    python3 bench/balancers.py [--runs 3] [--first 127.0.16.2]

Brings up `sandbox.prod` with two balancer hosts (`sandbox.balancers`) and haproxy on
this machine in front of the same nodes, then per run: ``deploy`` (status) and a
rolling deploy (warm-up 0, the 2 MB sample WAR, versions alternating) with each
``lb_socket``. Prints the median and range of each, and the runtime API's own cost per
command (``show info``, 20 in a row, over one kept connection); writes it all as JSON
to bench/results/balancers.json with the machine's load (os.getloadavg) before and
after. Runs as root (the sandbox's users and iptables rules need it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.command import DEPLOY, check, environment  # noqa: E402
from sandbox import app, balancers, cluster, haproxy, prod, prod_app, tomcat  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench-balancers")
VERSIONS = ("1.0.125", "1.0.126")
MODES = ("socket on this machine", "two balancers over SSH")


def main() -> None:
    args = _arguments()
    check()
    loads = [os.getloadavg()]
    shutil.rmtree(ROOT, ignore_errors=True)
    box = prod.up(ROOT, 3, args.first, prod.default_bastion(args.first), "jetty", balancers=2)
    try:
        figures = _measure(box, args.runs)
    finally:
        balancers.down(ROOT)
        prod.down(ROOT)
        haproxy.down(box.cluster)
        tomcat.down(ROOT)
        cluster.down(ROOT)
    loads.append(os.getloadavg())
    _report(figures, args.runs, loads)


def _measure(box: prod.Prod, runs: int) -> dict[str, Any]:
    prod.haproxy_up(box)
    lbs = balancers.up(box)
    app_dir = ROOT / "apps" / app.APP
    wars = prod_app.write_jetty(box, app_dir, VERSIONS, warmup=0, ready_timeout=20)
    prod.start_jetty(box, wars[0])
    config = app_dir / ".config"
    texts = {MODES[0]: config.read_text()}
    balancers.configure(app_dir, box, lbs)
    texts[MODES[1]] = config.read_text()
    _deploy(app_dir, [wars[0].name])  # the first deploy: the nodes' releases directories
    seconds: dict[str, dict[str, list[float]]] = {m: {"status": [], "deploy": []} for m in MODES}
    for run in range(runs):
        for mode in MODES:
            config.write_text(texts[mode])
            seconds[mode]["status"].append(_deploy(app_dir, []))
            war = wars[(run * len(MODES) + MODES.index(mode) + 1) % 2]
            seconds[mode]["deploy"].append(_deploy(app_dir, [war.name]))
    per_command = {mode: _per_command(app_dir, texts[mode]) for mode in MODES}
    return {"seconds": seconds, "per_command": per_command}


def _deploy(app_dir: Path, argv: list[str]) -> float:
    """The whole command, as a user runs it; its wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [*DEPLOY, *argv], cwd=app_dir, env=environment(), capture_output=True, text=True
    )
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"deploy {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return took


_PER_COMMAND = """
import sys, time
from fabfile.app import config as configs
from fabfile.cluster.balancers import Balancers
from pathlib import Path
loaded = configs.load(Path(sys.argv[1]))
made = Balancers.of(loaded, loaded.balancers)
made.members[0].command("show info")  # the connection, and the socket looked at once
started = time.monotonic()
for _ in range(20):
    made.members[0].command("show info")
print((time.monotonic() - started) / 20)
"""


def _per_command(app_dir: Path, text: str) -> float:
    """One runtime API command's round trip, on a connection already open."""
    (app_dir / ".config").write_text(text)
    done = subprocess.run(
        [sys.executable, "-c", _PER_COMMAND, str(app_dir / ".config")],
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def _report(figures: dict[str, Any], runs: int, loads: list[tuple[float, float, float]]) -> None:
    rows = {}
    for mode in MODES:
        for what, values in figures["seconds"][mode].items():
            rows[f"{what}, {mode}"] = {
                "median": round(statistics.median(values), 2),
                "range": [round(min(values), 2), round(max(values), 2)],
                "runs": [round(v, 3) for v in values],
            }
    for name, row in rows.items():
        low, high = row["range"]
        print(f"{name:45} {row['median']:6.2f} s  [{low:.2f}-{high:.2f}]")
    for mode, each in figures["per_command"].items():
        print(f"one runtime API command, {mode:25} {each * 1000:6.1f} ms")
    result = {
        "runs": runs,
        "rows": rows,
        "per_command_ms": {m: round(v * 1000, 1) for m, v in figures["per_command"].items()},
        "loadavg": {"start": list(loads[0]), "end": list(loads[1])},
    }
    out = REPO / "bench" / "results" / "balancers.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {out}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--first", default="127.0.16.2", help="the first node's address")
    return parser.parse_args()


if __name__ == "__main__":
    main()

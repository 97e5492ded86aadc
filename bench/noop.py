"""Benchmark: a no-op redeploy, the whole ``deploy X.war`` command when every node runs X
already (start-up, ``.config``, the deploy lock, pre-flight, the decision, the record).

    python3 bench/noop.py [--runs 7] [--baseline DIR] [--first 127.0.16.2]

Brings up its own sandbox (sshd + Jetty on ``--first`` and the next two addresses,
haproxy on that range's .1), deploys one release, then runs ``deploy`` of the same WAR
``--runs`` times in a fresh interpreter, as the ``deploy`` script runs it (bytecode
compiled first, as pip leaves an install). ``--baseline DIR`` times another checkout
(``git archive COMMIT | tar -x -C DIR``) in the same session, its runs interleaved with
this checkout's so both see the same load. Each run's history record gives where the
time went inside the rollout (its ``stages``); the rest of the command ("outside") is
start-up, reading ``.config`` and the WAR, the lock's release, closing the connections
and the end of the process; "cpu" is the CPU seconds the ``deploy`` process used, which
a loaded machine changes less than the wall time; "imports" what ``-X importtime`` says
of the redeploy (`bench.startup._imports`: the total, the slowest packages). Prints
the median and range and writes them to bench/results/noop.json with the machine's
load (os.getloadavg) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.startup import _deploy, _imports  # noqa: E402
from sandbox import app, cluster, haproxy  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench-noop")
VERSION = "1.0.125"


def main() -> None:
    args = _arguments()
    checkouts = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    for checkout in checkouts.values():
        compiled = [sys.executable, "-m", "compileall", "-q", str(checkout / "fabfile")]
        subprocess.run(compiled, check=True, stdout=subprocess.DEVNULL)
    load_before = os.getloadavg()
    sandbox = cluster.up(ROOT, 3, first=args.first)
    try:
        socket = haproxy.up(sandbox)
        app_dir = ROOT / "apps" / app.APP
        (war,) = app.write(sandbox, app_dir, versions=(VERSION,), warmup=0, balancer=str(socket))
        first = _deploy(REPO, [war.name], app_dir)
        if first.returncode != 0:
            raise SystemExit(f"the first deploy failed:\n{first.stdout}{first.stderr}")
        results = _measure(checkouts, app_dir, war.name, args.runs)
        for name, checkout in checkouts.items():
            results[name]["imports"] = _imports(checkout, [war.name], app_dir, terminal=False)
    finally:
        haproxy.down(sandbox)
        cluster.down(ROOT)
    document = {
        "runs": args.runs,
        "nodes": len(sandbox.addresses),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "checkouts": {name: str(path) for name, path in checkouts.items()},
        "results": results,
    }
    _report(document)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {args.out}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="time the redeploy this many times")
    parser.add_argument("--baseline", type=Path, help="another checkout, timed beside this one")
    parser.add_argument("--first", default="127.0.16.2", help="the first node's address")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "noop.json")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs: at least 3, for a median and a range")
    return args


def _measure(checkouts: dict[str, Path], app_dir: Path, war: str, runs: int) -> dict[str, Any]:
    """Wall seconds and the record's stages of every run, the checkouts interleaved."""
    seen: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for _ in range(runs):
        for name, checkout in checkouts.items():
            before = _cpu()
            started = time.perf_counter()
            done = _deploy(checkout, [war], app_dir)
            seconds = time.perf_counter() - started
            cpu = _cpu() - before
            if done.returncode != 0:
                raise SystemExit(f"{name}: deploy {war} failed:\n{done.stdout}{done.stderr}")
            record = json.loads((app_dir / ".deploy-history.jsonl").read_text().splitlines()[-1])
            if {host["outcome"] for host in record["hosts"].values()} != {"unchanged"}:
                raise SystemExit(f"{name}: not a no-op: {done.stdout}")
            stages = record.get("stages", {})
            outside = seconds - sum(stages.values())
            seen[name].append({"whole": seconds, **stages, "outside": outside, "cpu": cpu})
    return {
        name: {
            part: {
                "seconds": statistics.median(r[part] for r in rows),
                "range": [min(r[part] for r in rows), max(r[part] for r in rows)],
            }
            for part in rows[0]
        }
        | {"all": rows}
        for name, rows in seen.items()
    }


def _cpu() -> float:
    """CPU seconds (user and system) of the child processes that ended so far: what a
    run costs this machine, which its load changes less than it changes the wall time."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _report(document: dict[str, Any]) -> None:
    load = document["load_before"]
    print(f"median of {document['runs']} runs [range]; load before {load[0]:.2f}")
    for name, parts in document["results"].items():
        imports = parts["imports"]
        slowest = ", ".join(f"{p['package']} {p['ms']}" for p in imports["slowest"][:6])
        print(f"{name:>8}  imports  {imports['import_ms']} ms: {slowest}")
        for part, row in parts.items():
            if part not in ("all", "imports"):
                low, high = row["range"]
                print(f"{name:>8}  {part:>9}  {row['seconds']:.3f} [{low:.3f}-{high:.3f}] s")


if __name__ == "__main__":
    main()

"""Benchmark: how fast a rolling deploy catches a release that fails its users, and
what undoing it costs them, under load.

    python3 bench/guard.py [--runs 3] [--nodes 3] [--warmup 3] [--watch 10] [--rate 1000]

Brings up its own sandbox (sshd + Jetty on 127.0.18.x, haproxy on 127.0.18.1) and keeps
a paced wrk load on haproxy's ``/`` during every scenario. The broken release is the
sample app's ``flaky`` mode: healthy to ``/status``, so every node verifies, and every
fifth request to ``/`` answers its own ``500 flaky build``; only haproxy's counters show
it. wrk counts those apart (`bench.load`): what the release did to its users, not what
the tool did. Every run starts from the same place (every node on the good release).

Scenarios, each a ``deploy`` of the flaky release with ``on_failure = rollback``:

- "after batch 1": ``batch = 1``; the verdict after the first batch (over its warm-up)
  finds it, and the same run rolls that node back;
- "watch window": ``batch = 1`` with ``warmup = 0``, so the window after each batch is
  empty (Inconclusive: the run goes on), and ``watch`` seconds; the watch window finds
  it and the same run rolls every node back.

Per run: the whole command's wall time; when the Failed verdict came, counted from the
run's start (the history's ``verdicts``); the requests the release failed and those the
tool did (any other non-2xx, or a socket error: must be 0); and that every node ends on
the good release. The median of ``--runs`` runs with their range, the machine's load
before and after; written as JSON to bench/results/guard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import command  # noqa: E402
from bench.load import Load  # noqa: E402
from fabfile.records.history import Action, History, Result  # noqa: E402
from sandbox import app, cluster, haproxy  # noqa: E402
from sandbox.sample import build_war  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench-guard")
GOOD, FLAKY = "5.0.0", "5.0.1"


def main() -> None:
    args = _arguments()
    command.check()
    sandbox = cluster.up(ROOT, args.nodes, first="127.0.18.2")
    runs: list[dict[str, Any]] = []
    try:
        socket = haproxy.up(sandbox)
        app_dir = ROOT / "apps" / app.APP
        app.write(sandbox, app_dir, versions=(), warmup=args.warmup, balancer=str(socket))
        for old in app_dir.glob("*.war"):
            old.unlink()
        wars = {
            GOOD: build_war(GOOD, app_dir, artifact_id=app.APP),
            FLAKY: build_war(FLAKY, app_dir, artifact_id=app.APP, mode="flaky"),
        }
        scenarios = {
            "after batch 1": {"batch": "1", "watch": "0", "warmup": f"{args.warmup:g}"},
            "watch window": {"batch": "1", "watch": f"{args.watch:g}", "warmup": "0"},
        }
        for number in range(1, args.runs + 1):
            print(f"run {number} of {args.runs}", flush=True)
            for name, keys in scenarios.items():
                _keys(app_dir, {"on_failure": "rollback", "canary_min_requests": "10", **keys})
                _deploy(app_dir, [wars[GOOD].name, "--force"], expect=0)
                runs.append(_scenario(sandbox, app_dir, name, wars[FLAKY], args.rate))
                print(_line(runs[-1]), flush=True)
    finally:
        haproxy.down(sandbox)
        cluster.down(ROOT)
    _report(runs, args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--watch", type=float, default=10)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s on haproxy")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "guard.json")
    return parser.parse_args()


def _keys(app_dir: Path, keys: dict[str, str]) -> None:
    """Set [deploy] keys in ``.config``, replacing the sandbox's own value of each."""
    config = app_dir / ".config"
    names = tuple(f"{key} =" for key in keys)
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith(names)]
    at = lines.index("[deploy]") + 1
    lines[at:at] = [f"{key} = {value}" for key, value in keys.items()]
    config.write_text("\n".join(lines) + "\n")


def _deploy(app_dir: Path, argv: list[str], expect: int) -> float:
    """The whole ``deploy`` command, as a user runs it; its wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [*command.DEPLOY, *argv], cwd=app_dir, env=command.environment(),
        capture_output=True, text=True,
    )  # fmt: skip
    took = time.monotonic() - started
    if done.returncode != expect:
        raise SystemExit(
            f"deploy {' '.join(argv)} exited {done.returncode}, not {expect}:\n"
            f"{done.stdout[-3000:]}{done.stderr[-2000:]}"
        )
    return took


def _scenario(
    sandbox: cluster.Cluster, app_dir: Path, name: str, war: Path, rate: int
) -> dict[str, Any]:
    with Load(haproxy.url(sandbox, "/"), rate, flaky=True) as load:
        time.sleep(1)  # the load is steady before the deploy starts
        seconds = _deploy(app_dir, [war.name], expect=1)
    deployed, rolled_back = History(app_dir / ".deploy-history.jsonl").records()[-2:]
    failed = [at for at, text in deployed.verdicts if "Failed" in text and at is not None]
    on = {a: _version(sandbox, a) for a in sandbox.addresses}
    figures = load.figures
    return {
        "scenario": name,
        "seconds": round(seconds, 2),
        "failed_verdict_at_s": round(failed[0], 2) if failed else None,
        "rollback_s": rolled_back.seconds,
        "rolled_back": rolled_back.action == Action.ROLLBACK and rolled_back.outcome == Result.OK,
        "all_on_good": all(version == GOOD for version in on.values()),
        "requests": figures.requests,
        "failed_by_release": figures.flaky,
        "failed_by_tool": figures.failed - figures.flaky,
        "load_average": round(os.getloadavg()[0], 2),
    }


def _version(sandbox: cluster.Cluster, address: str) -> str:
    """The version a node's /status names (the last word of its first line)."""
    response = requests.get(sandbox.url(address), timeout=5)
    first = response.text.partition("\n")[0]
    return first.split()[-1] if response.status_code == 200 and first.split() else ""


_COLUMNS = (
    ("scenario", 14), ("seconds", 8), ("failed_verdict_at_s", 19), ("rollback_s", 10),
    ("requests", 8), ("failed_by_release", 17), ("failed_by_tool", 14), ("all_on_good", 11),
)  # fmt: skip


def _line(row: dict[str, Any]) -> str:
    return "  ".join(f"{'' if row[k] is None else row[k]!s:>{w}}" for k, w in _COLUMNS)


def _report(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    rows = []
    for name in dict.fromkeys(run["scenario"] for run in runs):
        same = [run for run in runs if run["scenario"] == name]
        row: dict[str, Any] = {"scenario": name, "runs": len(same)}
        for key in ("seconds", "failed_verdict_at_s", "rollback_s", "requests"):
            values = [run[key] for run in same if run[key] is not None]
            row[key] = round(statistics.median(values), 2) if values else None
            row[f"{key}_range"] = [min(values), max(values)] if values else None
        row["failed_by_release"] = max(run["failed_by_release"] for run in same)
        row["failed_by_tool"] = max(run["failed_by_tool"] for run in same)  # worst run
        row["all_on_good"] = all(run["all_on_good"] and run["rolled_back"] for run in same)
        rows.append(row)
    print(
        f"\nmedian of {args.runs} run(s); {args.nodes} Jetty nodes, warm-up {args.warmup:g} s, "
        f"watch {args.watch:g} s, ~{args.rate} requests/s; failed counts: the worst run"
    )
    print("  ".join(f"{k:>{w}}" for k, w in _COLUMNS))
    for row in rows:
        print(_line(row))
    loads = [run["load_average"] for run in runs]
    data = {"rows": rows, "runs": runs, "load_average": [min(loads), max(loads)],
            "cpus": os.cpu_count(), "args": vars(args) | {"out": str(args.out)}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

"""Benchmark: the tool's rolling deploy, no-op redeploy and rollback under load,
against the floor and against what the write-ups' scripts do.

    python3 bench/rollout.py [--runs 3] [--nodes 3] [--warmup 3] [--pad-mb 30] [--rate 1000]
                             [--rows deploy noop ...] [--baseline DIR]

The ``deploy`` it runs is this checkout's (`bench.command`), not the one on PATH.

Brings up its own sandbox (sshd + Jetty on 127.0.2.x, haproxy on 127.0.2.1),
keeps a paced wrk load on haproxy during every scenario, prints a table and
writes it as JSON to bench/results/rollout.json. Every figure is the median of
``--runs`` runs (each from the same clean start: no release on any node), with
their range, since one run varies by about a second (see below), with the machine's
load before and after each run.

"stage first" is ``deploy stage`` of a release no node holds yet (not timed: it runs
while the old release serves), then the timed deploy of it, which sends 0 bytes.

``--baseline DIR`` adds a row: another checkout's ``deploy`` (an older commit, say:
``git archive REV | tar -x -C DIR``) rolling a release no node holds over the same
cluster, in the same run, right after this checkout's rolling deploy of another such
release, so a regression shows side by side with where each one's time went.
``--rows`` picks the scenarios (all but ``checkout`` by default; ``checkout`` is
added by ``--baseline``).

The floor is what no tool can beat: the sum of each node's measured
restart-to-ready time (restart command to the new JVM's 200, polled every
20 ms, under the same load, the mean of 3 restarts: jetty.sh's stop loop sleeps whole seconds, so
one sample varies by up to a second) plus the warm-ups between nodes (none
is owed after the last node).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import command  # noqa: E402
from bench.load import Load  # noqa: E402
from fabfile.app import config, warcache  # noqa: E402
from fabfile.cluster.balancer import Balancer  # noqa: E402
from sandbox import app, cluster, haproxy  # noqa: E402
from sandbox.sample import build_war  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench")
OLD, NEW, STAGED, CHECKOUT = "2.0.0", "2.0.1", "2.0.2", "2.0.3"
ROWS = ("deploy", "noop", "rollback", "stage", "checkout", "scripts")


def main() -> None:
    args = _arguments()
    command.check()
    sandbox = cluster.up(ROOT, args.nodes, first="127.0.2.2")
    try:
        socket = haproxy.up(sandbox)
        app_dir = ROOT / "apps" / app.APP
        wars = _prepare(sandbox, app_dir, str(socket), args)
        runs = []
        for number in range(1, args.runs + 1):
            print(f"run {number} of {args.runs}", flush=True)
            load_before = _load()
            _clean_start(sandbox, app_dir, wars)
            floor = _floor(sandbox, app_dir, args.warmup, args.rate)
            rows = _scenarios(sandbox, app_dir, wars, floor, args)
            runs.append(
                {"floor": floor, "rows": rows, "load_before": load_before, "load_after": _load()}
            )
    finally:
        haproxy.down(sandbox)
        cluster.down(ROOT)
    _report(runs, args)


def _clean_start(sandbox: cluster.Cluster, app_dir: Path, wars: dict[str, Path]) -> None:
    """No release kept on any node, no history and no WAR known checked: every run
    stages the same bytes and reads each new WAR whole once, as a user's first deploy
    of it does."""
    for address in sandbox.addresses:
        shutil.rmtree(sandbox.home(address) / "releases", ignore_errors=True)
    for name in (".deploy-history.jsonl", warcache.NAME):
        (app_dir / name).unlink(missing_ok=True)
    _deploy(app_dir, wars[OLD], force=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--pad-mb", type=int, default=30)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s on haproxy")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rollout.json")
    parser.add_argument("--rows", nargs="+", choices=ROWS, help="the scenarios to run")
    parser.add_argument("--baseline", type=Path, help="another checkout, its rolling deploy timed")
    args = parser.parse_args()
    if args.rows is None:
        args.rows = [row for row in ROWS if row != "checkout" or args.baseline]
    if "checkout" in args.rows and not args.baseline:
        parser.error("--rows checkout needs --baseline DIR")
    if args.baseline:
        args.baseline = args.baseline.resolve()
        command.compile_bytecode(args.baseline)
    return args


def _prepare(
    sandbox: cluster.Cluster, app_dir: Path, socket: str, args: argparse.Namespace
) -> dict[str, Path]:
    app.write(sandbox, app_dir, versions=(), warmup=args.warmup, balancer=socket)
    for old in app_dir.glob("*.war"):
        old.unlink()
    (app_dir / ".deploy-history.jsonl").unlink(missing_ok=True)
    return {
        v: build_war(v, app_dir, artifact_id=app.APP, pad_mb=args.pad_mb)
        for v in (OLD, NEW, STAGED, CHECKOUT)
    }


def _load() -> float:
    """The machine's 1-minute load average: figures from a busy machine are slower."""
    return round(os.getloadavg()[0], 2)


def _deploy(
    app_dir: Path,
    war: Path | None,
    *words: str,
    force: bool = False,
    checkout: Path = command.REPO,
) -> float:
    """Run a checkout's ``deploy`` command as a user would; return its wall time."""
    argv = [*words, *([war.name] if war else []), *(["--force"] if force else [])]
    started = time.monotonic()
    subprocess.run(
        [*command.deploy(checkout), *argv],
        cwd=app_dir,
        env=command.environment(checkout),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def _staged_then_deployed(app_dir: Path, war: Path) -> float:
    """``deploy stage`` (untimed: nothing live changes), then the timed deploy."""
    _deploy(app_dir, war, "stage")
    return _deploy(app_dir, war)


def _floor(sandbox: cluster.Cluster, app_dir: Path, warmup: float, rate: int) -> dict[str, Any]:
    """Restart each node directly, drained and under the same load as the scenarios,
    and time it until the new JVM answers 200 (a loaded machine restarts slower)."""
    nodes = {node.host: node for node in config.load(app_dir / ".config").nodes}
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    times = {}
    with Load(haproxy.url(sandbox, "/"), rate):
        for address in sandbox.addresses:
            samples = []
            for _ in range(3):
                balancer.drain(nodes[address])
                samples.append(_restart_to_ready(sandbox, address))
                balancer.ready(nodes[address])
            times[address] = round(sum(samples) / len(samples), 3)
    total = sum(times.values()) + warmup * (len(times) - 1)
    return {"restart_to_ready": times, "seconds": round(total, 2)}


def _ssh(sandbox: cluster.Cluster, address: str, command: str) -> list[str]:
    return [
        "ssh", "-i", str(sandbox.key), "-o", f"UserKnownHostsFile={sandbox.known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{address}", command,
    ]  # fmt: skip


def _restart_to_ready(sandbox: cluster.Cluster, address: str) -> float:
    url, seen_down = sandbox.url(address), False
    started = time.monotonic()
    subprocess.run(_ssh(sandbox, address, "~/bin/jetty restart"), check=True)
    while time.monotonic() - started < 60:
        try:
            up = requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            up = False
        seen_down = seen_down or not up
        if up and seen_down:
            return round(time.monotonic() - started, 3)
        time.sleep(0.02)
    raise RuntimeError(f"{address} did not come back within 60 s")


def _baseline(sandbox: cluster.Cluster, war: Path, warmup: float) -> float:
    """What the write-ups' scripts do: copy, restart, poll /status every 5 s, no drain."""
    quoted = {
        "key": shlex.quote(str(sandbox.key)),
        "known": shlex.quote(str(sandbox.known_hosts)),
        "war": shlex.quote(str(war)),
        "warmup": f"{warmup:g}",
    }
    script = "set -e\n"
    for address in sandbox.addresses:
        ssh = f"-i {quoted['key']} -o UserKnownHostsFile={quoted['known']} -o BatchMode=yes"
        target = shlex.quote(str(sandbox.home(address) / "jetty-base" / "webapps" / "root.war"))
        script += (
            f"scp -q {ssh} {quoted['war']} root@{address}:{target}\n"
            f"ssh {ssh} root@{address} '~/bin/jetty-wait restart'\n"
            f"until curl -sf --max-time 10 -o /dev/null {sandbox.url(address)}; do sleep 5; done\n"
            f"sleep {quoted['warmup']}\n"
        )
    started = time.monotonic()
    subprocess.run(["bash", "-c", script], check=True)
    return time.monotonic() - started


def _scenarios(
    sandbox: cluster.Cluster,
    app_dir: Path,
    wars: dict[str, Path],
    floor: dict[str, Any],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    url, n = haproxy.url(sandbox, "/"), len(sandbox.addresses)
    war_bytes = {v: p.stat().st_size * n for v, p in wars.items()}
    other = f"{args.baseline.name}: rolling deploy" if args.baseline else ""
    live = CHECKOUT if "checkout" in args.rows else NEW  # what the no-op redeploys
    plan: list[tuple[str, str, Callable[[], float], bool]] = [
        ("deploy", "tool: rolling deploy", lambda: _deploy(app_dir, wars[NEW]), True),
        ("checkout", other, lambda: _deploy(app_dir, wars[CHECKOUT], checkout=args.baseline), True),
        ("noop", "tool: no-op redeploy", lambda: _deploy(app_dir, wars[live]), True),
        ("rollback", "tool: rollback", lambda: _deploy(app_dir, None, "rollback"), True),
        ("stage", "tool: stage first", lambda: _staged_then_deployed(app_dir, wars[STAGED]), True),
        (
            "scripts",
            "baseline: deploy",
            lambda: _baseline(sandbox, wars[NEW], _warmup(app_dir)),
            False,
        ),
        (
            "scripts",
            "baseline: redeploy",
            lambda: _baseline(sandbox, wars[NEW], _warmup(app_dir)),
            False,
        ),
        (
            "scripts",
            "baseline: rollback",
            lambda: _baseline(sandbox, wars[OLD], _warmup(app_dir)),
            False,
        ),
    ]
    rows = []
    for _, name, run, tool in (step for step in plan if step[0] in args.rows):
        with Load(url, args.rate) as load:
            seconds = run()
        sent = _tool_bytes(app_dir) if tool else war_bytes[NEW if "rollback" not in name else OLD]
        noop = "no-op" in name
        rows.append(_row(name, seconds, 0.0 if noop else floor["seconds"], n, load, sent))
        if tool:
            rows[-1]["breakdown"] = _breakdown(app_dir, seconds)
        print(rows[-1], flush=True)
    return rows


def _warmup(app_dir: Path) -> float:
    return config.load(app_dir / ".config").nodes[0].warmup


def _last_entry(app_dir: Path) -> dict[str, Any]:
    return dict(json.loads((app_dir / ".deploy-history.jsonl").read_text().splitlines()[-1]))


def _tool_bytes(app_dir: Path) -> int:
    return sum(h["bytes_sent"] for h in _last_entry(app_dir)["hosts"].values())


def _breakdown(app_dir: Path, seconds: float) -> dict[str, float]:
    """Where the tool's time went: start-up, pre-flight, staging, restarts, the rest."""
    entry = _last_entry(app_dir)
    stages = entry.get("stages", {})
    restarts = sum(h["restart_to_ready"] or 0 for h in entry["hosts"].values())
    return {
        "startup": round(seconds - entry["seconds"], 2),
        "preflight": stages.get("preflight", 0.0),
        "staging": stages.get("staging", 0.0),
        "restart_to_ready": round(restarts, 2),
        "per_node_steps_and_warmups": round(stages.get("nodes", 0.0) - restarts, 2),
    }


def _row(
    name: str, seconds: float, floor: float, nodes: int, load: Load, sent: int
) -> dict[str, Any]:
    return {
        "scenario": name,
        "seconds": round(seconds, 2),
        "floor": round(floor, 2),
        "overhead_per_node": round((seconds - floor) / nodes, 2),
        "requests": load.figures.requests,
        "failed": load.figures.failed,
        "bytes_sent": sent,
    }


_COLUMNS = ("seconds", "floor", "overhead_per_node", "requests", "failed", "bytes_sent")
_SPREAD = ("seconds", "floor", "overhead_per_node")  # shown with their range


def _summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: the median of each figure with the range of the timings; for failed
    requests, the worst run."""
    rows = []
    for index, first in enumerate(runs[0]["rows"]):
        samples = [run["rows"][index] for run in runs]
        row: dict[str, Any] = {"scenario": first["scenario"], "runs": len(samples)}
        for column in _COLUMNS:
            values = [sample[column] for sample in samples]
            row[column] = round(statistics.median(values), 2)
            if column in _SPREAD:
                row[f"{column}_range"] = [min(values), max(values)]
        row["failed"] = max(sample["failed"] for sample in samples)  # the worst run, not a median
        if "breakdown" in first:
            keys = first["breakdown"]
            row["breakdown"] = {
                key: round(statistics.median(s["breakdown"][key] for s in samples), 2)
                for key in keys
            }
        rows.append(row)
    return rows


def _report(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    rows = _summary(runs)
    print(
        f"{args.nodes} nodes, {args.pad_mb} MB WAR, warmup {args.warmup:g} s, ~{args.rate} req/s;"
        f" median of {len(runs)} runs [min-max]"
    )
    for run in runs:
        print("restart-to-ready per node:", run["floor"]["restart_to_ready"])
    header = ("scenario", "seconds", "floor", "overhead/node", "requests", "failed", "bytes sent")
    print(f"{header[0]:>22}  " + "  ".join(f"{h:>17}" for h in header[1:]))
    loads = [run[key] for run in runs for key in ("load_before", "load_after")]
    print(f"machine: {os.cpu_count()} CPUs, load {min(loads):g}-{max(loads):g} during the runs")
    for row in rows:
        cells = []
        for column in _COLUMNS:
            value = f"{row[column]:g}" if isinstance(row[column], float) else str(row[column])
            if column in _SPREAD:
                low, high = row[f"{column}_range"]
                value += f" [{low:g}-{high:g}]"
            cells.append(f"{value:>17}")
        print(f"{row['scenario']:>22}  " + "  ".join(cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "summary": rows,
                "runs": runs,
                "load": [min(loads), max(loads)],
                "cpus": os.cpu_count(),
                "args": vars(args) | {"out": str(args.out), "baseline": str(args.baseline or "")},
            },
            indent=2,
        )
    )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

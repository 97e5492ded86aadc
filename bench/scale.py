"""Benchmark: a rolling deploy of 100 light nodes behind haproxy, by batch size.

    python3 bench/scale.py [--nodes 100] [--delay 1] [--warmup 1] [--batches 1 10% 25%]
                           [--stage] [--runs 3] [--baseline DIR]

Brings up its own light sandbox (`sandbox.scale`: sshd + a light HTTP server per node
on 127.0.12.2..., haproxy on 127.0.12.1), deploys a first version everywhere, then per
``--batches`` value deploys a version no node has seen (so every measured run stages a
new WAR and restarts every node) as a user would: the ``deploy`` command in a
subprocess, output piped to a log under the sandbox root. With ``--stage``, each batch
value gets a second run preceded by ``deploy stage WAR``, timed on its own. Each row is
measured ``--runs`` times (a new version each time); the table shows the median of each
figure with the range of the wall time, and the JSON keeps every run and the machine's
load average before and after. ``--baseline DIR`` runs another checkout's ``deploy`` (an
older commit, say: ``git archive REV | tar -x -C DIR``) after each run of this one's, on
the same nodes, so a regression shows side by side (the ``checkout`` column).

Per run: wall time; the floor, batches × delay + (batches − 1) × warm-up (the tool
warms up a batch only when another one follows: the last owes none); the overhead
over it, per node too; the coordinator's CPU (user + system) and peak RSS, from
``wait4`` on the deploy process; the SSH connections it opened (``Accepted
publickey`` lines added to the nodes' sshd logs); the machine's busy share over the
run (everything shares 2 cores here); and the tool's own figures from its history
(mean restart-to-ready, stages). Prints a table, writes JSON to
bench/results/scale.json, and ends what it started (checking for leftovers).

The ``deploy`` run is this checkout's (`bench.command`), not the one on PATH.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import command  # noqa: E402
from fabfile.cluster.balancer import Balancer  # noqa: E402
from sandbox import app, cluster, haproxy, scale  # noqa: E402
from sandbox.cluster import Cluster  # noqa: E402

ROOT = Path("/tmp/wardeploy-scale-bench")
FIRST = "127.0.12.2"  # haproxy on 127.0.12.1
FIRST_VERSION = "3.0.0"


def main() -> None:
    args = _arguments()
    _clean(ROOT)  # what an interrupted run left, by its PIDs
    command.check()
    if args.baseline:
        args.baseline = args.baseline.resolve()
        command.compile_bytecode(args.baseline)
    started = time.monotonic()
    sandbox = scale.up(ROOT, args.nodes, FIRST, args.delay)
    print(f"{args.nodes} light nodes up in {time.monotonic() - started:.1f} s", flush=True)
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    try:
        socket = str(haproxy.up(sandbox))
        app_dir = ROOT / "apps" / app.APP
        (app_dir / ".deploy-history.jsonl").unlink(missing_ok=True)
        kinds = [(b, s) for b in args.batches for s in ((False, True) if args.stage else (False,))]
        checkouts = [REPO, args.baseline] if args.baseline else [REPO]
        plan = [(*kind, c) for kind in kinds for _ in range(args.runs) for c in checkouts]
        versions = [FIRST_VERSION, *(f"3.0.{i}" for i in range(1, len(plan) + 1))]
        wars = scale.write(sandbox, app_dir, tuple(versions), args.warmup, socket)
        first = _run(app_dir, ["--batch", "25%", wars[0].name], "first")
        print(f"first deploy (every server starts): {first['seconds']:.1f} s", flush=True)
        for (batch, staged, checkout), war in zip(plan, wars[1:], strict=True):
            _wait_all_up(sandbox)
            rows.append(_measure(sandbox, app_dir, war, batch, staged, args, checkout))
            print(_line(rows[-1]), flush=True)
        light = _light_rss(sandbox)
    finally:
        haproxy.down(sandbox)
        scale.down(ROOT)
        left = cluster.end_leftovers(ROOT)
    if left:
        raise SystemExit(f"left running after the bench (ended now): {left}")
    _report(rows, light, args, (load_before, os.getloadavg()))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--delay", type=float, default=1.0, help="light server start delay, s")
    parser.add_argument("--warmup", type=float, default=1.0, help="the app's warmup, s")
    parser.add_argument("--batches", nargs="+", default=["1", "10%", "25%"])
    parser.add_argument("--stage", action="store_true", help="also runs after `deploy stage`")
    parser.add_argument("--runs", type=int, default=3, help="runs of each row (median, range)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json")
    parser.add_argument("--baseline", type=Path, help="another checkout, run after each run")
    return parser.parse_args()


def _clean(root: Path) -> None:
    """End what an earlier, interrupted run left (haproxy, sshd, servers), by PID."""
    nodes = Cluster.load(root)
    if nodes is not None:
        haproxy.down(nodes)
    scale.down(root)
    cluster.end_leftovers(root)


def _run(app_dir: Path, words: list[str], name: str, checkout: Path = REPO) -> dict[str, Any]:
    """``deploy WORDS`` in ``app_dir``: wall time, CPU and peak RSS (wait4), its output."""
    log = ROOT / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    process = subprocess.Popen(
        [*command.deploy(checkout), *words],
        cwd=app_dir,
        env=command.environment(checkout),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    process.stdout.close()
    log.write_text(output)
    if process.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise SystemExit(f"deploy {' '.join(words)} failed ({process.returncode}); {log}:\n{tail}")
    return {
        "seconds": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "output": output,
    }


def _measure(
    sandbox: Cluster,
    app_dir: Path,
    war: Path,
    batch: str,
    staged: bool,
    args: argparse.Namespace,
    checkout: Path = REPO,
) -> dict[str, Any]:
    name = f"batch-{batch.replace('%', 'pc')}{'-staged' if staged else ''}"
    words = ["stage", war.name]
    stage = _run(app_dir, words, f"{name}-stage", checkout)["seconds"] if staged else None
    logins = _logins(sandbox)
    busy = _cpu_times()
    run = _run(app_dir, ["--batch", batch, war.name], name, checkout)
    busy_share = _busy_share(busy, _cpu_times())
    opened = _logins(sandbox) - logins
    batches = _batches(run["output"], len(sandbox.addresses))
    floor = batches * args.delay + (batches - 1) * args.warmup
    entry = _last_entry(app_dir)
    restarts = [h["restart_to_ready"] for h in entry["hosts"].values() if h["restart_to_ready"]]
    nodes = len(sandbox.addresses)
    return {
        "checkout": "this" if checkout == REPO else checkout.name,
        "batch": batch,
        "staged": staged,
        "stage_s": None if stage is None else round(stage, 2),
        "batches": batches,
        "seconds": round(run["seconds"], 2),
        "floor": round(floor, 2),
        "overhead_s": round(run["seconds"] - floor, 2),
        "overhead_per_node_s": round((run["seconds"] - floor) / nodes, 3),
        "cpu_s": round(run["cpu_s"], 2),
        "peak_rss_mib": round(run["peak_rss_mib"], 1),
        "ssh_connections": opened,
        "nodes": nodes,
        "machine_busy": round(busy_share, 2),
        "restart_to_ready_mean_s": round(statistics.mean(restarts), 3) if restarts else None,
        "preflight_s": entry.get("stages", {}).get("preflight"),
        "staging_s": entry.get("stages", {}).get("staging"),
        "stages": entry.get("stages", {}),
        "tool_seconds": entry.get("seconds"),
        "version": war.name,
    }


def _batches(output: str, nodes: int) -> int:
    """How many batches the run had: its ``batch K/N`` lines (none: one node, or one batch)."""
    for line in output.splitlines():
        if line.startswith("batch ") and "/" in line:
            return int(line.split()[1].split("/")[1].rstrip(":"))
    return 1


def _logins(sandbox: Cluster) -> int:
    """SSH logins every node's sshd has logged so far (``sshd -e``: one line per login)."""
    total = 0
    for address in sandbox.addresses:
        log = sandbox.home(address) / "sshd.log"
        total += log.read_bytes().count(b"Accepted publickey") if log.exists() else 0
    return total


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def _last_entry(app_dir: Path) -> dict[str, Any]:
    return dict(json.loads((app_dir / ".deploy-history.jsonl").read_text().splitlines()[-1]))


def _wait_all_up(sandbox: Cluster, timeout: float = 30) -> None:
    """Until haproxy has every server UP at full weight: each run starts from steady state."""
    balancer = Balancer(str(haproxy.socket_path(sandbox)))
    deadline = time.monotonic() + timeout
    while True:
        text = balancer.command("show stat").lstrip("# ")
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r["svname"].startswith("node")]
        if all(r["status"] == "UP" and r["weight"] == "100" for r in rows):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"haproxy: not every server UP within {timeout} s")
        time.sleep(0.1)


def _light_rss(sandbox: Cluster) -> dict[str, float]:
    """The light servers' resident memory (MiB): mean and largest."""
    sizes = [cluster.rss_kib(pid) / 1024 for pid in scale.server_pids(sandbox).values()]
    return {"servers": len(sizes), "mean_mib": round(statistics.mean(sizes), 1),
            "max_mib": round(max(sizes), 1)} if sizes else {"servers": 0}  # fmt: skip


_HEADER = (
    ("checkout", 8), ("batch", 6), ("staged", 6), ("stage_s", 7), ("batches", 7),
    ("seconds", 8), ("floor", 6),
    ("overhead_s", 10), ("overhead_per_node_s", 19), ("cpu_s", 6), ("peak_rss_mib", 12),
    ("ssh_connections", 15), ("machine_busy", 12), ("restart_to_ready_mean_s", 23),
    ("preflight_s", 11), ("staging_s", 9),
)  # fmt: skip


def _line(row: dict[str, Any]) -> str:
    return "  ".join(f"{'' if row[k] is None else row[k]!s:>{w}}" for k, w in _HEADER)


def _medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per batch value (and staged or not): the median of each figure over its
    runs, the wall time's range beside it."""
    rows = []
    for key in dict.fromkeys((run["batch"], run["staged"], run["checkout"]) for run in runs):
        same = [run for run in runs if (run["batch"], run["staged"], run["checkout"]) == key]
        row = dict(same[0])
        for name, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[name] = round(statistics.median(r[name] for r in same), 3)
        row["seconds_range"] = [min(r["seconds"] for r in same), max(r["seconds"] for r in same)]
        row["runs"] = len(same)
        del row["version"], row["stages"]
        rows.append(row)
    return rows


def _report(
    runs: list[dict[str, Any]],
    light: dict[str, float],
    args: argparse.Namespace,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    rows = _medians(runs)
    print(
        f"\n{args.nodes} light nodes behind haproxy; start delay {args.delay:g} s, warm-up "
        f"{args.warmup:g} s; floor = batches × delay + (batches − 1) × warm-up; median of "
        f"{args.runs} run(s), load average {load[0][0]:.2f} before, {load[1][0]:.2f} after "
        f"({os.cpu_count()} CPUs)"
    )
    print("  ".join(f"{k:>{w}}" for k, w in _HEADER) + "  seconds_range")
    for row in rows:
        low, high = row["seconds_range"]
        print(f"{_line(row)}  [{low:.2f}-{high:.2f}]")
    print(f"light servers' RSS: {light}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "rows": rows,
        "runs": runs,
        "load_before": list(load[0]),
        "load_after": list(load[1]),
        "cpus": os.cpu_count(),
        "light_server_rss": light,
        "args": vars(args) | {"out": str(args.out), "baseline": str(args.baseline or "")},
    }
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

"""Benchmark: start-up. The whole ``deploy --version``, ``deploy --help`` and ``deploy``
(the status table of 3 Jetty nodes behind haproxy), piped and on a terminal, as a user
runs them, and what each imports (``python -X importtime``).

    python3 bench/startup.py [--runs 5] [--baseline DIR] [--first 127.0.15.2]

Brings up its own sandbox (sshd + Jetty on ``--first`` and the next two addresses,
haproxy), deploys one release, then times each command ``--runs`` times in a fresh
interpreter, as the ``deploy`` script would run it (``deploy (on a terminal)``: on a
fresh pty `COLUMNS` wide as stdin, stdout and stderr, TERM=xterm-256color, read until
the command closes it): the entry point named in the
checkout's own setup.cfg, with the checkout first on PYTHONPATH, its bytecode compiled
first as pip compiles an installed package (without it, with PYTHONDONTWRITEBYTECODE
set, every run would compile the whole package again). ``--baseline DIR``
times another checkout (e.g. ``git archive c8b17c8 | tar -x -C DIR``) in the same
session, its runs interleaved with this checkout's so both see the same load. Prints
the median and range of each, the packages each command imported and where the
import time went, package by package (self time; the median of 5 ``-X importtime``
runs); writes it all as JSON to
bench/results/startup.json with the machine's load
(os.getloadavg) before and after.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.command import compile_bytecode  # noqa: E402
from bench.command import deploy as checkout_deploy  # noqa: E402
from bench.command import environment as checkout_environment  # noqa: E402
from sandbox import app, cluster, haproxy  # noqa: E402

ROOT = Path("/tmp/wardeploy-bench-startup")
TERMINAL = "deploy (on a terminal)"
COMMANDS = {
    "deploy --version": ["--version"],
    "deploy --help": ["--help"],
    "deploy": [],
    TERMINAL: [],
}
COLUMNS = 160  # the terminal's width: the table of 3 nodes fits
# what would make rich (and so ``deploy``) see the terminal otherwise than a user's
NOT_ON_A_TERMINAL = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")
WATCHED = ("paramiko", "fabric", "matplotlib", "invoke", "rich")
TOP = 6  # the packages shown per command, by import time
IMPORT_RUNS = 5  # -X importtime runs per command, for a median


def main() -> None:
    args = _arguments()
    checkouts = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    for checkout in checkouts.values():
        compile_bytecode(checkout)
    load_before = os.getloadavg()
    sandbox = cluster.up(ROOT, 3, first=args.first)
    try:
        socket = haproxy.up(sandbox)
        app_dir = ROOT / "apps" / app.APP
        (war,) = app.write(sandbox, app_dir, versions=("1.0.125",), warmup=0, balancer=str(socket))
        first = _deploy(REPO, [war.name], app_dir)
        if first.returncode != 0:
            raise SystemExit(f"the first deploy failed:\n{first.stdout}{first.stderr}")
        results = _measure(checkouts, app_dir, args.runs)
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
    parser.add_argument("--runs", type=int, default=5, help="time each command this many times")
    parser.add_argument("--baseline", type=Path, help="another checkout, timed beside this one")
    parser.add_argument("--first", default="127.0.15.2", help="the first node's address")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs: at least 5, for a median and a range worth reading")
    return args


def _deploy(
    checkout: Path, argv: list[str], cwd: Path, *flags: str, terminal: bool = False
) -> subprocess.CompletedProcess[str]:
    """``deploy ARGV`` in ``cwd`` as the checkout's script runs it; ``flags`` go to Python;
    with ``terminal``, on a terminal (`_on_a_terminal`)."""
    python, *code = checkout_deploy(checkout)
    line = [python, *flags, *code, *argv]
    env = checkout_environment(checkout)
    if terminal:
        return _on_a_terminal(line, cwd, env)
    return subprocess.run(line, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _on_a_terminal(
    line: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``line`` on a fresh pty `COLUMNS` wide (its stdin, stdout and stderr), as a user's
    terminal runs it, read until the command's end closes it: what it showed is both
    its stdout and its stderr (``-X importtime`` included)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    env = {k: v for k, v in env.items() if k not in NOT_ON_A_TERMINAL}
    env["TERM"] = "xterm-256color"
    try:
        process = subprocess.Popen(
            line, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True
        )
    finally:
        os.close(slave)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every end of the pty's slave is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    code = process.wait(timeout=120)
    text = shown.decode(errors="replace").replace("\r\n", "\n")
    return subprocess.CompletedProcess(line, code, text, text)


def _measure(checkouts: dict[str, Path], app_dir: Path, runs: int) -> dict[str, Any]:
    """Every command of every checkout: wall seconds per run, interleaved, and one
    ``-X importtime`` run."""
    times: dict[str, dict[str, list[float]]] = {n: {c: [] for c in COMMANDS} for n in checkouts}
    for _ in range(runs):
        for command, argv in COMMANDS.items():
            for name, checkout in checkouts.items():
                started = time.perf_counter()
                done = _deploy(checkout, argv, app_dir, terminal=command == TERMINAL)
                times[name][command].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise SystemExit(f"{name}: {command} failed:\n{done.stdout}{done.stderr}")
                if command == TERMINAL and "\x1b[" not in done.stdout:
                    raise SystemExit(f"{name}: {command} showed no colours:\n{done.stdout}")
    results: dict[str, Any] = {}
    for name, checkout in checkouts.items():
        results[name] = {}
        for command, argv in COMMANDS.items():
            seconds = times[name][command]
            results[name][command] = {
                "seconds": statistics.median(seconds),
                "range": [min(seconds), max(seconds)],
                "all": seconds,
                **_imports(checkout, argv, app_dir, command == TERMINAL),
            }
    return results


def _imports(checkout: Path, argv: list[str], app_dir: Path, terminal: bool) -> dict[str, Any]:
    """What ``python -X importtime`` says, over `IMPORT_RUNS` runs (one run on a loaded
    machine swings by half): the median total, the packages that took the most (their
    modules' self times added up, the median of the runs) and which watched packages
    were loaded."""
    runs: list[dict[str, int]] = []
    for _ in range(IMPORT_RUNS):
        done = _deploy(checkout, argv, app_dir, "-X", "importtime", terminal=terminal)
        packages: dict[str, int] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            own, _, name = line.removeprefix("import time:").split("|")
            package = name.strip().split(".")[0]
            packages[package] = packages.get(package, 0) + int(own)
        runs.append(packages)
    names = {name for packages in runs for name in packages}
    typical = {name: statistics.median(p.get(name, 0) for p in runs) for name in names}
    slowest = sorted(typical.items(), key=lambda item: item[1], reverse=True)[:TOP]
    return {
        "import_ms": round(statistics.median(sum(p.values()) for p in runs) / 1000, 1),
        "import_runs": IMPORT_RUNS,
        "slowest": [{"package": name, "ms": round(us / 1000, 1)} for name, us in slowest],
        "loaded": sorted(p for p in WATCHED if p in names),
    }


def _report(document: dict[str, Any]) -> None:
    runs, load = document["runs"], document["load_before"]
    print(f"median of {runs} runs [range]; load before {load[0]:.2f} on {document['cpus']} cpus")
    for command in COMMANDS:
        for name, results in document["results"].items():
            row = results[command]
            spread = f"{row['seconds']:.3f} [{row['range'][0]:.3f}-{row['range'][1]:.3f}]"
            watched = ", ".join(row["loaded"]) or "-"
            print(
                f"{command:>22}  {name:>8}  {spread:>21} s  imports {row['import_ms']:6.1f} ms"
                f"  loads: {watched}"
            )
    for name, results in document["results"].items():
        for command in COMMANDS:
            slowest = ", ".join(
                f"{s['package']} {s['ms']:.0f}" for s in results[command]["slowest"]
            )
            print(f"{name:>8} {command:>22}: import ms by package: {slowest}")


if __name__ == "__main__":
    main()

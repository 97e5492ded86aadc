"""Benchmark: ``deploy`` (the status table) against many light endpoints.

    python3 bench/status_scale.py [--counts 10 100 300] [--timeout 1] [--runs 3]

Each endpoint is a tiny asyncio HTTP server on its own loopback address
(127.0.20.1, ...; port 8080; up to 1,023 fit in 127.0.20-23.x, which nothing else
uses), not a Jetty. Of every 100, 5 accept connections and never answer and 5 refuse
(nothing listens). A second run per count has every endpoint answering. Times are the
status action in-process and the whole ``deploy --json`` command of this checkout
(`bench.command`; Python start-up included, its bytecode compiled first as pip compiles
an installed package: with PYTHONDONTWRITEBYTECODE set, every run would compile the
whole package again). Each figure is the median of ``--runs``
runs with its range; written as JSON to bench/results/status_scale.json, with the
machine's load before and after.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import command  # noqa: E402
from fabfile.app.appdir import AppDir  # noqa: E402
from fabfile.cluster import probe  # noqa: E402

PORT = 8080
FIRST = "127.0.20.1"
LAST = "127.0.23.255"
SERVER = r"""
import asyncio, sys
body = b"com.example:light-status 1.0.0"
head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
answer = head + body
async def ok(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(answer)
    await writer.drain()
    writer.close()
async def hang(reader, writer):
    await asyncio.sleep(3600)
async def main():
    servers = []
    for line in sys.stdin:
        address, kind = line.split()
        handler = ok if kind == "ok" else hang
        servers.append(await asyncio.start_server(handler, address, PORT, backlog=512))
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
""".replace("PORT", str(PORT))


def endpoints(count: int, faulty: bool) -> dict[str, str]:
    """address -> 'ok' | 'hang' | 'refuse'; 5 % hang and 5 % refuse when faulty."""
    start = ipaddress.IPv4Address(FIRST)
    if start + count - 1 > ipaddress.IPv4Address(LAST):
        raise SystemExit(f"at most {int(ipaddress.IPv4Address(LAST)) - int(start) + 1} endpoints")
    kinds = {}
    for i in range(count):
        kind = "ok"
        if faulty and i % 20 == 7:
            kind = "hang"
        elif faulty and i % 20 == 13:
            kind = "refuse"
        kinds[str(start + i)] = kind
    return kinds


def serve(kinds: dict[str, str]) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write("".join(f"{a} {k}\n" for a, k in kinds.items() if k != "refuse"))
    server.stdin.close()
    if server.stdout.readline().strip() != "ready":
        raise RuntimeError("the light endpoints did not start")
    return server


def app_dir(root: Path, hosts: list[str], timeout: float) -> Path:
    path = root / "light-status"
    path.mkdir(exist_ok=True)
    (path / ".config").write_text(
        "[deploy]\n"
        f"hosts = {', '.join(hosts)}\n"
        f"status_url = http://{{host}}:{PORT}/status\n"
        f"connect_timeout = {timeout:g}\nstatus_timeout = {timeout:g}\n"
    )
    return path


def measure(count: int, faulty: bool, timeout: float, root: Path) -> dict[str, Any]:
    kinds = endpoints(count, faulty)
    server = serve(kinds)
    try:
        path = app_dir(root, list(kinds), timeout)
        nodes = AppDir(path).config.nodes
        started = time.monotonic()
        statuses = probe.probe_all(nodes)
        in_process = time.monotonic() - started
        started = time.monotonic()
        subprocess.run(
            [*command.DEPLOY, "--json"],
            cwd=path,
            env=command.environment(),
            stdout=subprocess.DEVNULL,
            check=False,
        )
        whole = time.monotonic() - started
    finally:
        server.kill()
        server.wait()
    return {
        "endpoints": count,
        "faulty": faulty,
        "not_ok": sum(not s.ok for s in statuses),
        "in_process_s": round(in_process, 3),
        "command_s": round(whole, 3),
        "timeout_s": timeout,
    }


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per count and fault mix: the median of each time, with its range."""
    rows = []
    for key in dict.fromkeys((run["endpoints"], run["faulty"]) for run in runs):
        same = [run for run in runs if (run["endpoints"], run["faulty"]) == key]
        row = {k: same[0][k] for k in ("endpoints", "faulty", "not_ok", "timeout_s")}
        row["runs"] = len(same)
        for figure in ("in_process_s", "command_s"):
            values = [run[figure] for run in same]
            row[figure] = round(statistics.median(values), 3)
            row[f"{figure}_range"] = [min(values), max(values)]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/status_scale.json")
    args = parser.parse_args()
    compiled = [sys.executable, "-m", "compileall", "-q", str(REPO / "fabfile")]
    subprocess.run(compiled, check=True, stdout=subprocess.DEVNULL)
    load_before, runs = os.getloadavg()[0], []
    with tempfile.TemporaryDirectory() as root:
        for _ in range(args.runs):
            for count in args.counts:
                for faulty in (True, False):
                    runs.append(measure(count, faulty, args.timeout, Path(root)))
                    print(runs[-1], flush=True)
    rows = summary(runs)
    for row in rows:
        print(row)
    report = {
        "summary": rows,
        "runs": runs,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

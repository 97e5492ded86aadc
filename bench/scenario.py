"""What the Tomcat benchmarks share: running ``deploy`` as a user would, users logged
in through haproxy, what the last deploy sent, and a scenario's row in the table
(the median of the runs, with their range; counts are the worst run's)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from bench import command
from bench.load import Load
from fabfile.records.history import History
from sandbox import cluster, haproxy


def deploy(app_dir: Path, war: Path | None, *words: str) -> float:
    """Run this checkout's ``deploy`` command as a user would (`bench.command`: not the one
    on PATH, which may be another checkout's or missing); return its wall time."""
    line = [*command.DEPLOY, *words, *([war.name] if war else [])]
    started = time.monotonic()
    subprocess.run(
        line, cwd=app_dir, check=True, stdout=subprocess.DEVNULL, env=command.environment()
    )
    return time.monotonic() - started


def log_in(nodes: cluster.Cluster, name: str) -> requests.Session:
    session = requests.Session()
    session.post(haproxy.url(nodes, "/login"), {"user": name}, timeout=5).raise_for_status()
    return session


def logged_in(nodes: cluster.Cluster, session: requests.Session, name: str) -> bool:
    answer = session.get(haproxy.url(nodes, "/whoami"), timeout=5)
    return answer.status_code == 200 and answer.text.strip() == name


def bytes_sent(app_dir: Path, action: str = "") -> int:
    """Bytes the last history record (of ``action``, when given) sent, over every host."""
    records = History(app_dir / ".deploy-history.jsonl").records()
    last = [record for record in records if not action or record.action == action][-1]
    return sum(item.bytes_sent for item in last.hosts.values())


def row(name: str, seconds: float, load: Load, lost: int, sent: int) -> dict[str, Any]:
    return {
        "scenario": name,
        "seconds": round(seconds, 2),
        "requests": load.figures.requests,
        "failed": load.figures.failed,
        "sessions_lost": lost,
        "bytes_sent": sent,
    }


def report(
    runs: list[list[dict[str, Any]]],
    scenarios: Sequence[str],
    out: Path,
    extra: dict[str, Any] | None = None,
) -> None:
    """Print the table and write it, every run and ``extra`` figures as JSON to ``out``."""
    print(f"{'scenario':>22}  {'seconds':>20}  failed  sessions lost  bytes sent")
    table = []
    for index, name in enumerate(scenarios):
        rows = [run[index] for run in runs]
        times = [r["seconds"] for r in rows]
        summary = {
            "scenario": name,
            "seconds": statistics.median(times),
            "range": [min(times), max(times)],
            "failed": max(r["failed"] for r in rows),
            "sessions_lost": max(r["sessions_lost"] for r in rows),
            "bytes_sent": max(r["bytes_sent"] for r in rows),
        }
        table.append(summary)
        spread = f"{summary['seconds']:.2f} [{min(times):.2f}-{max(times):.2f}]"
        print(
            f"{name:>22}  {spread:>20}  {summary['failed']:>6}  {summary['sessions_lost']:>13}"
            f"  {summary['bytes_sent']:>10}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "load_at_end": [round(x, 2) for x in os.getloadavg()]}
    document = {"summary": table, "runs": runs, **machine, **(extra or {})}
    out.write_text(json.dumps(document, indent=2) + "\n")

"""Reading the real cluster's state in tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox import cluster as cluster_module
from sandbox import haproxy, tomcat
from sandbox.cluster import Cluster


def versions(sandbox: Cluster) -> dict[str, str]:
    """What each node's /status says right now ('' when it does not answer 200)."""
    found = {}
    for address in sandbox.addresses:
        try:
            response = requests.get(sandbox.url(address), timeout=2)
            found[address] = response.text.split()[-1] if response.status_code == 200 else ""
        except requests.RequestException:
            found[address] = ""
    return found


def history(app_dir: Path) -> list[dict[str, Any]]:
    lines = (app_dir / ".deploy-history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def override(app_dir: Path, host: str, **keys: str) -> None:
    """Add keys to the ``[host:NAME]`` section the sandbox's .config already has."""
    config = app_dir / ".config"
    section = f"[host:{host}]\n"
    text = config.read_text()
    assert section in text, f"no {section.strip()} in {config}"
    lines = "".join(f"{key} = {value}\n" for key, value in keys.items())
    config.write_text(text.replace(section, section + lines))


def all_on(sandbox: Cluster, version: str) -> dict[str, str]:
    return {address: version for address in sandbox.addresses}


def stop_clusters(root: Path, started: list[Cluster]) -> list[tuple[int, str]]:
    """Stop haproxy, every Tomcat and sshd of ``started`` by PID (once); end and return
    what is left under ``root``."""
    while started:
        nodes = started.pop()
        haproxy.down(nodes)
        tomcat.down(nodes.root)
        for address in nodes.addresses:
            cluster_module.stop_sshd(nodes, address)
    return cluster_module.end_leftovers(root)


def fail_on_leftovers(left: list[tuple[int, str]], who: str) -> None:
    """Fail the session when ``who`` left processes running (already ended by then)."""
    if left:
        pytest.fail(
            f"processes {who} started were still running after it stopped (ended now): "
            + "; ".join(f"pid {pid}: {cmd[:160]}" for pid, cmd in left),
            pytrace=False,
        )

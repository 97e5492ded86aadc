"""Small builders shared by the unit tests."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fabfile.app.config import NodeConfig
from fabfile.app.release import Release
from fabfile.cluster.node import Node


def release(n: int, war_name: str | None = None) -> Release:
    """A release whose three checksums are unique to ``n``."""
    return Release(
        war=f"{n:064x}",
        config=f"{n + 1000:064x}",
        jettyrc=f"{n + 2000:064x}",
        version=f"1.0.{n}",
        coordinates="com.example:shop",
        war_name=war_name or f"shop-1.0.{n}.war",
    )


def sh(script: str, home: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """Run a node's script in a real ``sh``, with ``home`` as its HOME and directory."""
    done = subprocess.run(
        ["sh", "-c", script],
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        cwd=home,
        capture_output=True,
        input=stdin,
        timeout=20,
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


def staged(release: Release, blobs: Path, *extra: str) -> Release:
    """``release`` with checksums that are true: each of its files (and each of ``extra``,
    a checksum) written to ``blobs`` with content of its own, under the sha256 of that
    content, as staging leaves them. The install checks every copy against its name."""
    renamed: dict[str, str] = {}
    for fake in sorted({*release.blobs, *extra}):
        data = f"content of {fake[-4:]}".encode()
        sha = hashlib.sha256(data).hexdigest()
        (blobs / sha).write_bytes(data)
        renamed[fake] = sha
    return dataclasses.replace(
        release,
        war=renamed[release.war],
        config=renamed[release.config],
        jettyrc=renamed[release.jettyrc],
    )


class LocalNode(Node):
    """A `Node` whose scripts run in a real local ``sh``, with HOME at ``home``."""

    def __init__(self, config: NodeConfig, home: Path) -> None:
        super().__init__(config)
        self.local_home = home

    def _exec(
        self, script: str, what: str, timeout: float | None = None, stdin: bytes = b""
    ) -> Any:
        done = sh(script, self.local_home, stdin)
        return SimpleNamespace(exited=done.returncode, stdout=done.stdout, stderr=done.stderr)

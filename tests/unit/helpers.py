"""Small builders shared by the unit tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fabfile.app.release import Release


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


def sh(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run a node's script in a real ``sh``, with ``home`` as its HOME and directory."""
    return subprocess.run(
        ["sh", "-c", script],
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=20,
    )

"""This checkout's ``deploy`` command, for benchmarks to run as a user would.

The ``deploy`` on PATH runs the code its virtualenv was installed from (an editable
install of another worktree, say); a benchmark measures the code beside it. So here
``deploy`` is this interpreter running `fabfile.cli.program.main` (what the entry point
runs) with this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEPLOY = (sys.executable, "-c", "from fabfile.cli.program import main; main()")


def environment() -> dict[str, str]:
    """The caller's environment with this checkout first on PYTHONPATH."""
    path = os.environ.get("PYTHONPATH", "")
    return os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), path) if p)}


def check() -> None:
    """Fail unless `DEPLOY` loads this checkout's fabfile."""
    probe = [sys.executable, "-c", "import fabfile; print(fabfile.__file__)"]
    found = subprocess.run(probe, env=environment(), capture_output=True, text=True, check=True)
    if not Path(found.stdout.strip()).is_relative_to(REPO):
        raise SystemExit(f"deploy would run {found.stdout.strip()}, not {REPO}'s code")

"""``inv`` outside the clone: a one-line ``tasks.py`` in the app directory or a parent.

Runs the real ``inv`` of the virtualenv in a subprocess, in a directory outside
the repository; no sandbox, no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = (
    REPO / ".venv" / "bin"
    if (REPO / ".venv" / "bin" / "inv").exists()
    else Path(sys.executable).parent
)
ONE_LINE = "from fabfile import ns\n"


def inv(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["inv", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """``TMP/apps/shop`` with a minimal ``.config``; TMP is outside the repository."""
    path = tmp_path / "apps" / "shop"
    path.mkdir(parents=True)
    (path / ".config").write_text("[deploy]\nhosts = web1.invalid\nuser = u\n")
    assert REPO not in path.resolve().parents
    return path


def test_without_a_tasks_py_inv_finds_nothing(app: Path) -> None:
    result = inv("-l", cwd=app)
    assert result.returncode != 0
    assert "Can't find any collection named 'tasks'!" in result.stderr


@pytest.mark.parametrize("where", ["app", "parent", "grandparent"])
def test_a_one_line_tasks_py_lists_the_tasks(app: Path, where: str) -> None:
    folder = {"app": app, "parent": app.parent, "grandparent": app.parent.parent}[where]
    (folder / "tasks.py").write_text(ONE_LINE)
    result = inv("-l", cwd=app)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    listed = [line.split()[0] for line in rows if not line.startswith("   ")]  # not wrapped
    assert {"status", "rollback"} <= set(listed)
    assert sorted(listed) == [
        "config-diff",
        "config-history",
        "deploy",
        "history",
        "logging",
        "report",
        "retire",
        "rollback",
        "stage",
        "status",
        "switch",
        "unlock",
    ]
    assert "Default task: status" in result.stdout


def test_the_tasks_act_on_the_current_directory(app: Path) -> None:
    (app.parent / "tasks.py").write_text(ONE_LINE)
    result = inv("history", cwd=app)
    assert result.returncode == 0, result.stderr
    assert f"no deploys recorded in {app.resolve()}/.deploy-history.jsonl" in result.stdout


def test_inv_uses_the_same_short_flags(app: Path) -> None:
    (app / "tasks.py").write_text(ONE_LINE)
    result = inv("rollback", "--help", cwd=app)
    assert result.returncode == 0, result.stderr
    assert "-H STRING, --hosts=STRING" in result.stdout
    assert "-C STRING, --app-dir=STRING" in result.stdout


def test_inv_dry_refuses_instead_of_deploying(app: Path) -> None:
    (app / "tasks.py").write_text(ONE_LINE)
    result = inv("--dry", "rollback", cwd=app)
    assert result.returncode == 2
    assert "the dry run is `deploy WAR --dry-run`" in result.stderr

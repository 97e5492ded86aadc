"""The ``deploy`` entry point ends the process as soon as the command is done, with the
command's exit code and every word of its output (`fabfile.cli.end`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fabfile

REPO = Path(fabfile.__file__).resolve().parents[1]
ENTRY = "from fabfile.cli import main; main()"


def deploy(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_output_is_flushed_and_the_code_kept(tmp_path: Path) -> None:
    done = deploy("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"deploy {fabfile.__version__}\n")
    done = deploy("--help", cwd=tmp_path)  # more than one write, through a pipe
    assert done.returncode == 0 and done.stdout.startswith("Usage: deploy [COMMAND]")
    assert done.stdout.endswith("\n") and len(done.stdout) > 1000


def test_an_error_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    done = deploy("rollback", cwd=tmp_path)  # not an app directory: exit 2, said on stderr
    assert done.returncode == 2, done.stderr
    assert "is not an app directory (no .config)" in done.stderr


def test_a_message_given_to_exit_is_said_with_code_1(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom fabfile import cli\ncli.run = lambda argv: sys.exit('gone')\ncli.main()"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (1, "gone\n")

"""This checkout as a user gets it: its wheel, installed in a fresh virtualenv.

`deploy_from_wheel` builds the wheel once per test session (``pip wheel --no-deps``,
from a copy of the checkout, so no ``build/`` or egg-info is written into it and none
left there from before gets into the wheel) and installs it into a new virtualenv at
the path it is given, returning the path of that virtualenv's ``deploy``. `user_env`
is the environment to run it in: nothing of the checkout on ``PATH`` or
``PYTHONPATH``. The virtualenv is made by Debian's ``/usr/bin/python3``, which every
user can run (the tests' own python lives under ``/root``, 0700), so a non-root
coordinator (``wd-operator``, `tests.real.as_operator`) runs the same ``deploy`` as
root does; it needs a path that user can read too: pytest's own temporary directories
are 0700 to root (`shared_parent`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"  # makes the virtualenv: Debian's, runnable by every user
# What a clean clone does not have, or the wheel does not need (apps/ holds the demo's WARs).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.war", "apps"
)
_built: dict[str, Path] = {}  # the session's wheel, built once


def user_env(venv: Path | None = None, **extra: str) -> dict[str, str]:
    """This process's environment as a shell outside the checkout has it: no PYTHONPATH
    or virtualenv of the checkout, ``PATH`` with only ``venv``'s ``bin`` before the
    system's directories."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["PATH"] = f"{venv / 'bin'}:{system}" if venv else system
    return {**env, **extra}


def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's wheel, built once per test session."""
    if "wheel" not in _built:
        out = tmp_path_factory.mktemp("wheel")
        source = out / "source"
        shutil.copytree(REPO, source, ignore=NOT_SOURCE)
        pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(out), str(source))
        (built,) = out.glob("wardeploy-*.whl")
        _built["wheel"] = built
    return _built["wheel"]


def install(built: Path, venv: Path, extras: str = "") -> Path:
    """A fresh virtualenv at ``venv`` (no system site-packages) with ``built`` installed,
    its dependencies fetched as pip does for a user; the path of its ``deploy``."""
    made = subprocess.run(
        [PYTHON, "-m", "venv", str(venv)],
        env=user_env(),
        capture_output=True,
        text=True,
        check=False,
    )  # Debian's python3 makes one with its python3-venv package (scripts/install.sh)
    assert made.returncode == 0, f"{PYTHON} -m venv {venv}:\n{made.stdout}{made.stderr}"
    pip(str(venv / "bin" / "python"), "install", f"{built}{f'[{extras}]' if extras else ''}")
    deploy = venv / "bin" / "deploy"
    assert deploy.is_file(), f"the wheel installed no {deploy}"
    return deploy


def deploy_from_wheel(
    tmp_path_factory: pytest.TempPathFactory, venv: Path, extras: str = ""
) -> Path:
    """The ``deploy`` of this checkout's wheel installed in a new virtualenv at ``venv``."""
    return install(wheel(tmp_path_factory), venv, extras)


def shared_parent() -> Path:
    """A new directory every user can traverse and read (0755), for a virtualenv that
    ``wd-operator`` runs: under ``$WARDEPLOY_SANDBOX``, whose parents are /tmp's."""
    parent = Path(os.environ.get("WARDEPLOY_SANDBOX", "/tmp/wardeploy-sandbox"))
    parent.mkdir(parents=True, exist_ok=True)
    made = Path(tempfile.mkdtemp(prefix="wheel-", dir=parent))
    made.chmod(0o755)
    return made


def pip(python: str, *argv: str) -> None:
    """``python -m pip ARGV`` outside the checkout; its output in the failure when it fails."""
    result = subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", "--quiet", *argv],
        cwd="/",
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"pip {' '.join(argv)}:\n{result.stdout}{result.stderr}"

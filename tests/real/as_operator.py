"""Running ``deploy`` as the production-shaped sandbox's ``wd-operator`` (not root).

The ``deploy`` it runs is the one a user gets from ``pip install``: this checkout's
wheel in a fresh virtualenv of Debian's python3 (`tests.real.wheel`), made once per
test session at a path every user can read (the ``installed_deploy`` fixture, shared
with ``test_install.py``), owned by root as an admin's install would be. `runnable`
makes ``wd-operator`` where missing (a brand-new machine has none until a sandbox
makes it) and checks that it can run that ``deploy`` before any test relies on it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from sandbox import prod
from tests.cli import Result


def runnable(deploy: Path) -> Path:
    """``deploy``, once ``wd-operator`` ran its ``--version`` and found its ``fabfile``
    in the virtualenv (not the checkout): a path that user cannot read, or an
    interpreter it may not run (one under ``/root``), fails here, said."""
    prod.ensure_users()
    try:
        done = command([str(deploy), "--version"])
    except OSError as error:  # the kernel refused to exec it (its interpreter, say)
        raise AssertionError(f"{prod.OPERATOR} cannot run {deploy}: {error}") from error
    assert done.returncode == 0 and done.stdout.startswith("deploy "), (
        f"{prod.OPERATOR} cannot run {deploy} (exit {done.returncode}): {done.stderr}"
    )
    python = str(deploy.parent / "python")
    found = command([python, "-c", "import fabfile; print(fabfile.__file__)"])
    venv = deploy.parents[1]
    assert found.returncode == 0 and venv in Path(found.stdout.strip()).parents, (
        f"{prod.OPERATOR}'s {python} imports fabfile from {found.stdout.strip()!r}, "
        f"not from {venv}: {found.stderr}"
    )
    return deploy


def run(deploy: Path, argv: Sequence[str], cwd: Path, home: Path, timeout: float = 180) -> Result:
    """``deploy ARGV`` in ``cwd`` as ``wd-operator``, with ``home`` as its HOME."""
    env = {"HOME": str(home), "PATH": f"{deploy.parent}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    done = subprocess.run(
        [str(deploy), *argv],
        cwd=cwd,
        env=env,
        user=prod.OPERATOR,
        group=prod.OPERATOR,
        extra_groups=[],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def command(argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Any command as ``wd-operator`` (no shell), its output captured, in ``/``: not in
    the checkout, whose ``fabfile`` a ``python -c`` there would import."""
    return subprocess.run(
        list(argv),
        cwd="/",
        user=prod.OPERATOR,
        group=prod.OPERATOR,
        extra_groups=[],
        env={"HOME": f"/home/{prod.OPERATOR}", "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

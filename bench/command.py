"""This checkout's ``deploy`` command, for benchmarks to run as a user would.

The ``deploy`` on PATH runs the code its virtualenv was installed from (an editable
install of another worktree, say); a benchmark measures the code beside it. So here
``deploy`` is this interpreter running what setup.cfg's ``deploy`` entry point names,
with this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def entry_point(checkout: Path = REPO) -> tuple[str, str]:
    """(module, function) of a checkout's ``deploy`` console script, as pip would
    install it (an older checkout may name another module)."""
    setup = configparser.ConfigParser()
    setup.read(checkout / "setup.cfg")
    for line in setup["options.entry_points"]["console_scripts"].splitlines():
        name, _, target = line.partition("=")
        if name.strip() == "deploy":
            module, _, function = target.strip().partition(":")
            return module, function
    raise SystemExit(f"{checkout / 'setup.cfg'}: no deploy console script")


def deploy(checkout: Path = REPO) -> tuple[str, ...]:
    """The command line that runs ``checkout``'s ``deploy`` (with `environment`)."""
    module, function = entry_point(checkout)
    return (sys.executable, "-c", f"from {module} import {function}; {function}()")


DEPLOY = deploy()


def environment(checkout: Path = REPO) -> dict[str, str]:
    """The caller's environment with ``checkout`` first on PYTHONPATH."""
    path = os.environ.get("PYTHONPATH", "")
    return os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(checkout), path) if p)}


def compile_bytecode(checkout: Path = REPO) -> None:
    """Compile the checkout's code as pip compiles an installed package: without it, with
    PYTHONDONTWRITEBYTECODE set (as here), every ``deploy`` a bench times would compile
    the whole package again first, which no user's command does."""
    line = [sys.executable, "-m", "compileall", "-q", str(checkout / "fabfile")]
    subprocess.run(line, check=True, stdout=subprocess.DEVNULL)


def check() -> None:
    """Fail unless `DEPLOY` loads this checkout's fabfile; compile it (`compile_bytecode`)."""
    compile_bytecode()
    probe = [sys.executable, "-c", "import fabfile; print(fabfile.__file__)"]
    found = subprocess.run(probe, env=environment(), capture_output=True, text=True, check=True)
    if not Path(found.stdout.strip()).is_relative_to(REPO):
        raise SystemExit(f"deploy would run {found.stdout.strip()}, not {REPO}'s code")

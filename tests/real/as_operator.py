"""Running ``deploy`` as the production-shaped sandbox's ``wd-operator`` (not root).

`install_deploy` is the one place that decides which ``deploy`` that user runs: for
now a virtualenv of Debian's python3 with this checkout's ``fabfile`` copied in (not
editable: the checkout may sit where that user cannot read, and ``setup.cfg``'s wheel
does not ship every package yet) and the test environment's dependencies on its
path. The wheel built by ``tests/real/wheel.py`` replaces it when that lands.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from sandbox import prod

REPO = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"  # readable by everyone, unlike a python under /root


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def install_deploy(dest: Path) -> Path:
    """A ``deploy`` executable under ``dest`` that ``wd-operator`` can run; its path."""
    venv = dest / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    (site / "wardeploy-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "fabfile", site / "fabfile", ignore=ignore)
    script = venv / "bin" / "deploy"
    script.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom fabfile.cli.program import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    prod.chown(dest, prod.OPERATOR, recursive=True)
    return script


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
    """Any command as ``wd-operator`` (no shell), its output captured."""
    return subprocess.run(
        list(argv),
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

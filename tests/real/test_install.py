"""Installed as a user installs it: the wheel in a fresh virtualenv, run outside the
checkout, deploys and rolls back the real sandbox.

The wheel and its virtualenv are made once for the session (`tests.real.wheel`); every
``deploy`` here is that virtualenv's, in a subprocess whose environment has nothing of
the checkout (no ``PYTHONPATH``, not its ``.venv`` on ``PATH``), in a directory outside it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import fabfile
from sandbox import cluster
from tests.real.helpers import all_on, history, versions
from tests.real.wheel import REPO, user_env

pytestmark = pytest.mark.real

OWNED = """
import importlib.metadata, json, os, sysconfig
site = sysconfig.get_paths()["purelib"]
owners = {}
for dist in importlib.metadata.distributions():
    for name in dist.files or ():
        top = str(name).split("/")[0]
        if top != "..":  # ../../../bin/deploy: the console script
            owners.setdefault(top, set()).add(dist.metadata["Name"])
print(json.dumps({
    "site": site,
    "ours": sorted(top for top, names in owners.items() if "wardeploy" in names),
    "nobodys": sorted(set(os.listdir(site)) - set(owners) - {"__pycache__"}),
}))
"""


@pytest.fixture(scope="module")
def deploy_bin(installed_deploy: Path) -> Path:
    """``deploy`` of the wheel, installed in a new virtualenv without extras (the
    session's, which the production-shaped sandbox's ``wd-operator`` runs too)."""
    return installed_deploy


def run(deploy: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``deploy ARGV`` in ``cwd`` as a user's shell runs it: the virtualenv's bin on PATH."""
    env = user_env(deploy.parents[1])
    assert REPO not in cwd.resolve().parents and cwd.resolve() != REPO
    return subprocess.run(
        ["deploy", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def python(deploy: Path, script: str, cwd: Path) -> str:
    result = subprocess.run(
        [str(deploy.parent / "python"), "-c", script],
        cwd=cwd,
        env=user_env(deploy.parents[1]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_wheel_installs_fabfile_alone_and_whole(deploy_bin: Path, tmp_path: Path) -> None:
    found = json.loads(python(deploy_bin, OWNED, tmp_path))
    assert found["ours"] == ["fabfile", f"wardeploy-{fabfile.__version__}.dist-info"]
    assert found["nobodys"] == []
    assert "sandbox" not in found["ours"] and "sandbox" not in found["nobodys"]
    site = Path(found["site"])
    installed = {p.relative_to(site).as_posix() for p in (site / "fabfile").rglob("*.py")}
    ours = {p.relative_to(REPO).as_posix() for p in (REPO / "fabfile").rglob("*.py")}
    assert installed == ours  # strategies/, runtimes/: every module of every package
    where = python(
        deploy_bin,
        "import fabfile, importlib.util as u; print(fabfile.__file__);"
        "print(u.find_spec('matplotlib'), u.find_spec('sandbox'))",
        tmp_path,
    )
    assert where.splitlines() == [str(site / "fabfile" / "__init__.py"), "None None"]


def test_help_and_version_outside_the_checkout(deploy_bin: Path, tmp_path: Path) -> None:
    version = run(deploy_bin, "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"deploy {fabfile.__version__}\n")
    helped = run(deploy_bin, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: deploy [COMMAND] [FLAGS]")
    assert "  rollback       Go back to the release before the current one." in helped.stdout
    assert helped.stderr == ""


def test_the_installed_deploy_deploys_and_rolls_back(
    deploy_bin: Path, app_dir: Path, sandbox: cluster.Cluster
) -> None:
    first = run(deploy_bin, "search-web-frontend-1.0.125.war", cwd=app_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    rolled = run(deploy_bin, "search-web-frontend-1.0.126.war", cwd=app_dir)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    status = run(deploy_bin, "--json", cwd=app_dir)
    assert status.returncode == 0, status.stderr
    assert {(row["host"], row["version"], row["ok"]) for row in json.loads(status.stdout)} == {
        (address, "1.0.126", True) for address in sandbox.addresses
    }
    back = run(deploy_bin, "rollback", cwd=app_dir)
    assert back.returncode == 0, back.stdout + back.stderr
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    runs = history(app_dir)
    assert [(r["action"], r["outcome"]) for r in runs][-3:] == [
        ("deploy", "ok"),
        ("deploy", "ok"),
        ("rollback", "ok"),
    ]
    assert all(host["outcome"] == "deployed" for host in runs[-1]["hosts"].values())


def test_the_installed_report_prints_its_table_and_names_the_extra(
    deploy_bin: Path, app_dir: Path, sandbox: cluster.Cluster
) -> None:
    deployed = run(deploy_bin, "search-web-frontend-1.0.126.war", "--force", cwd=app_dir)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    report = run(deploy_bin, "report", cwd=app_dir)
    assert report.returncode == 0, report.stdout + report.stderr
    lines = report.stdout.splitlines()
    assert lines[0].startswith("#1 deploy search-web-frontend-1.0.126.war")
    assert {a for a in sandbox.addresses if any(line.startswith(a) for line in lines)} == set(
        sandbox.addresses
    )
    assert lines[-1] == (
        "timeline: not drawn, this install has no matplotlib: "
        "pip install 'wardeploy[report]' adds it"
    )
    assert not list(app_dir.glob("timeline-*"))
    drawn = run(deploy_bin, "report", "--output", "run.svg", cwd=app_dir)
    assert drawn.returncode == 2 and not (app_dir / "run.svg").exists()
    assert "pip install 'wardeploy[report]' adds it" in drawn.stderr

"""What a ``pip install`` carries: only ``fabfile``, and no plotting stack unless the
``report`` extra is asked for; ``deploy report`` without it prints its table and says
which extra draws the picture. The wheel itself is built and installed in
``tests/real/test_install.py``."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fabfile.errors import ExitCode
from tests.cli import run
from tests.unit.test_timeline import REFUSED, RUN

REPO = Path(__file__).resolve().parents[2]
HINT = (
    "timeline: not drawn, this install has no matplotlib: pip install 'wardeploy[report]' adds it"
)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """An app directory whose history holds a refused run, then RUN (#2) with phases."""
    path = tmp_path / "shop"
    path.mkdir()
    (path / ".config").write_text("[deploy]\nhosts = web1, web2\nuser = u\n")
    lines = [json.dumps(e) for e in (REFUSED, RUN)]
    (path / ".deploy-history.jsonl").write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as an install without the ``report`` extra: matplotlib cannot be
    found or imported."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # type: ignore[arg-type]


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser


def test_the_base_install_requires_no_plotting_and_the_report_extra_does() -> None:
    options = setup_cfg()
    requires = options["options"]["install_requires"].split()
    assert not [r for r in requires if r.startswith(("matplotlib", "numpy", "pillow"))]
    assert options["options.extras_require"]["report"].split() == ["matplotlib>=3.7"]


def test_only_fabfile_and_every_package_under_it_is_installed() -> None:
    found = setup_cfg()["options.packages.find"]["include"].split()
    assert found == ["fabfile", "fabfile.*"]
    assert "options.package_data" not in setup_cfg()  # sandbox's webapp stays in the clone
    # find: sees a folder only with an __init__.py: one without would be left out
    folders = {p.parent for p in (REPO / "fabfile").rglob("*.py") if "__pycache__" not in p.parts}
    assert [f for f in sorted(folders) if not (f / "__init__.py").exists()] == []


def test_report_without_the_extra_prints_the_table_and_names_the_extra(
    shop: Path, no_matplotlib: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["report"], shop, capsys)
    assert result.code == ExitCode.OK, result.text
    lines = result.out.splitlines()
    assert lines[0].startswith("#2 deploy app-1.0.126.war (failed, 9.5 s")
    assert any(line.split()[:1] == ["web2"] for line in lines)  # the table
    assert lines[-1] == HINT
    assert [line for line in lines if "matplotlib" in line] == [HINT]  # one line
    assert not list(shop.glob("timeline-*"))


def test_report_output_without_the_extra_is_refused_and_writes_nothing(
    shop: Path, no_matplotlib: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["report", "--output", "run.svg"], shop, capsys)
    assert result.code == ExitCode.USAGE
    assert (
        "--output run.svg: drawing the timeline needs matplotlib, which this install lacks: "
        "pip install 'wardeploy[report]' adds it (without --output, the table alone)"
    ) in result.err
    assert result.out == "" and not (shop / "run.svg").exists()


def test_report_as_json_without_the_extra_is_the_same_data(
    shop: Path, no_matplotlib: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["report", "--json"], shop, capsys)
    assert result.code == ExitCode.OK, result.text
    data = json.loads(result.out)
    assert data["run"] == 2 and data["picture"] is None
    assert [n["node"] for n in data["nodes"]] == ["web1", "web2"]


def test_report_with_the_extra_draws_the_page(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    result = run(["report"], shop, capsys)
    assert result.code == ExitCode.OK, result.text
    assert result.out.splitlines()[-1] == "timeline: timeline-2.html"
    assert "<svg" in (shop / "timeline-2.html").read_text()
    assert "matplotlib" not in result.out


def test_no_command_imports_plotting_code_unless_it_draws(shop: Path) -> None:
    """--help, history, report --json and --version in one fresh interpreter: matplotlib (half a
    second, and absent from the base install) is never imported."""
    script = (
        "import sys\n"
        "from fabfile.cli.program import make_program\n"
        "for argv in (['--help'], ['history'], ['report', '--json'], ['--version']):\n"
        "    try:\n"
        "        make_program().run(['deploy', *argv])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'numpy', 'PIL'}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=shop, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"

"""The README and the shipped example stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from fabfile.app.keys import KEYS
from fabfile.errors import ExitCode
from sandbox import app, cluster

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.rst").read_text()


def test_readme_starts_with_the_demo_and_the_test_command() -> None:
    commands = [line.strip() for line in README.splitlines() if line.startswith("    bash ")]
    assert [c.split("#")[0].strip() for c in commands[:2]] == [
        "bash scripts/demo.sh",
        "bash scripts/test.sh",
    ]
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


def test_readme_documents_every_key_with_its_default() -> None:
    for key in KEYS:
        row = next(
            # a row of the key reference: the default (or "(empty)") comes next; the hooks'
            # table has an on_failure of its own, a hook and no key
            (
                line
                for line in README.splitlines()
                if re.match(rf"``{key.name}``\s{{2,}}(``|\()", line)
            ),
            None,
        )
        assert row is not None, key.name
        shown = (
            "(required)"
            if key.default is None
            else (f"``{key.default}``" if key.default else "(empty)")
        )
        assert shown in row, (key.name, row)


def test_readme_documents_every_exit_code() -> None:
    documented = {int(m) for m in re.findall(r"^(\d+)\s{2,}", README, flags=re.M)}
    assert documented == {int(code) for code in ExitCode}


def test_the_shipped_example_app_points_at_the_default_sandbox() -> None:
    shipped = (REPO / "apps" / app.APP / ".config").read_text()
    default = cluster.Cluster(Path("/tmp/wardeploy-sandbox"), cluster.addresses(3))
    assert shipped == app.config_text(default, balancer=f"{default.root}/haproxy.sock")
    assert (REPO / "apps" / app.APP / "config.properties").read_text() == app.PROPERTIES
    assert (REPO / "apps" / app.APP / ".jettyrc").read_text() == app.JETTYRC
    assert (REPO / "apps" / app.APP / "logback.xml").read_text() == app.LOGBACK

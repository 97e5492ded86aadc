"""Configuration on the real Jetty cluster: per-node files, live logging, drift, dry run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from sandbox import cluster
from tests import cli
from tests.real.helpers import all_on, history, versions
from tests.real.test_balancer import Watcher

pytestmark = pytest.mark.real
APP = "search-web-frontend"


def facts(sandbox: cluster.Cluster, address: str) -> dict[str, str]:
    """The ``name: value`` lines of a node's /status."""
    text = requests.get(sandbox.url(address), timeout=2).text
    return dict(line.split(": ", 1) for line in text.splitlines()[1:] if ": " in line)


def greeting(sandbox: cluster.Cluster, address: str) -> str:
    page = requests.get(sandbox.url(address, "/"), timeout=2).text
    match = re.search(r'<span id="greeting">(.*?)</span>', page)
    assert match, page
    return match[1]


def heap_and_greeting(sandbox: cluster.Cluster) -> dict[str, tuple[int, str]]:
    return {
        a: (int(facts(sandbox, a)["heap-max-mb"]), greeting(sandbox, a)) for a in sandbox.addresses
    }


def set_overrides(app_dir: Path, heap_host: str, heap: str, text_host: str, text: str) -> None:
    """A bigger (or smaller) heap on one node, another greeting on another."""
    (app_dir / f".jettyrc.{heap_host}").write_text(
        "# this node's own heap\n"
        f'JAVA_OPTIONS="-Xms32m -Xmx{heap} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"\n'
    )
    (app_dir / f"config.{text_host}.properties").write_text(f"greeting={text}\n")


def test_each_node_gets_its_own_settings_and_a_rollback_restores_each(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = sandbox.addresses
    set_overrides(on_125, second, "320m", third, "Hello from node three")
    assert cli.run([f"{APP}-1.0.126.war"], on_125, capsys).code == 0
    seen = heap_and_greeting(sandbox)
    assert seen[second][0] > seen[first][0] + 100  # -Xmx320m against the cluster's -Xmx192m
    assert seen[first][0] == seen[third][0]
    assert [seen[a][1] for a in (first, second)] == ["Hello from the sandbox"] * 2
    assert seen[third][1] == "Hello from node three"

    again = cli.run([f"{APP}-1.0.126.war"], on_125, capsys)  # nothing changed: 0 bytes
    assert again.code == 0 and "; 0 bytes sent" in again.out, again.text
    assert {h["outcome"] for h in history(on_125)[-1]["hosts"].values()} == {"unchanged"}

    set_overrides(on_125, second, "96m", third, "Bonjour from node three")
    changed = cli.run([f"{APP}-1.0.126.war"], on_125, capsys)
    assert changed.code == 0, changed.text
    outcomes = {h: r["outcome"] for h, r in history(on_125)[-1]["hosts"].items()}
    assert outcomes == {first: "unchanged", second: "deployed", third: "deployed"}
    now = heap_and_greeting(sandbox)
    assert now[second][0] < seen[first][0] and now[third][1] == "Bonjour from node three"

    back = cli.run(["rollback"], on_125, capsys)  # to 1.0.126 with the first overrides
    assert back.code == 0, back.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")
    assert heap_and_greeting(sandbox) == seen


def test_a_logging_change_is_live_on_the_same_jvms_with_no_failed_request(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {a: facts(sandbox, a) for a in sandbox.addresses}
    assert {f["log-level"] for f in before.values()} == {"INFO"}
    logback = on_125 / "logback.xml"
    logback.write_text(logback.read_text().replace('<root level="INFO">', '<root level="DEBUG">'))
    with Watcher(sandbox) as watcher:
        result = cli.run(["logging"], on_125, capsys)
    assert result.code == 0, result.text
    after = {a: facts(sandbox, a) for a in sandbox.addresses}
    for address in sandbox.addresses:
        assert after[address]["log-level"] == "DEBUG"
        assert (after[address]["pid"], after[address]["started"]) == (
            before[address]["pid"],
            before[address]["started"],
        )
        assert f"{address}: deployed: log-level INFO -> DEBUG, same JVM" in result.out
    assert watcher.served > 20 and watcher.failed == []
    assert history(on_125)[-1]["action"] == "logging"

    again = cli.run([f"{APP}-1.0.125.war"], on_125, capsys)  # the logging is part of it
    assert again.code == 0 and "; 0 bytes sent" in again.out, again.text
    back = cli.run(["rollback"], on_125, capsys)  # the release before: INFO, live again
    assert back.code == 0, back.text
    assert "logback.xml updated without a restart" in back.out
    for address in sandbox.addresses:
        now = facts(sandbox, address)
        assert (now["log-level"], now["pid"]) == ("INFO", before[address]["pid"])


def test_a_logging_file_per_node(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sandbox.addresses[0]
    text = (on_125 / "logback.xml").read_text()
    (on_125 / f"logback.{first}.xml").write_text(text.replace('level="INFO"', 'level="WARN"'))
    result = cli.run(["logging"], on_125, capsys)
    assert result.code == 0, result.text
    # The others have that file already: it is not replaced, so logback does not reload
    # it (a reload resets the root level to logback's default, DEBUG, for a moment).
    for other in sandbox.addresses[1:]:
        assert f"{other}: unchanged: already in place, log-level INFO" in result.out
    levels = {a: facts(sandbox, a)["log-level"] for a in sandbox.addresses}
    assert levels == {a: "WARN" if a == first else "INFO" for a in sandbox.addresses}


def test_a_hand_edit_shows_as_drift_on_that_node_only_and_a_deploy_puts_it_back(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = cli.run(["config", "diff"], on_125, capsys)
    assert clean.code == 0 and "no drift" in clean.out, clean.text
    second = sandbox.addresses[1]
    edited = sandbox.home(second) / "jetty-base/resources/config.properties"
    edited.write_text(edited.read_text().replace("Hello from the sandbox", "Hotfix by hand"))

    diff = cli.run(["config", "diff"], on_125, capsys)
    assert diff.code == 1, diff.text
    assert "-greeting=Hotfix by hand" in diff.out and "+greeting=Hello from the sandbox" in diff.out
    assert f"drift: {second}: config.properties;" in diff.out
    rows = json.loads(cli.run(["config", "diff", "--json"], on_125, capsys).out)
    assert {(r["node"], r["name"]) for r in rows if r["drift"]} == {(second, "config.properties")}

    dry = cli.run([f"{APP}-1.0.125.war", "--dry-run"], on_125, capsys)
    assert dry.code == 0, dry.text
    assert f"{second}: install + restart" in dry.out and "edited on the node" in dry.out
    assert greeting(sandbox, second) == "Hotfix by hand"  # the dry run changed nothing

    fixed = cli.run([f"{APP}-1.0.125.war"], on_125, capsys)
    assert fixed.code == 0, fixed.text
    assert f"{second}: config.properties on the node differs from what was deployed" in fixed.out
    outcomes = {h: r["outcome"] for h, r in history(on_125)[-1]["hosts"].items()}
    assert outcomes[second] == "deployed" and list(outcomes.values()).count("unchanged") == 2
    assert greeting(sandbox, second) == "Hello from the sandbox"
    assert cli.run(["config", "diff"], on_125, capsys).code == 0


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    on_125: Path, sandbox: cluster.Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    records = len(history(on_125))
    (on_125 / f"config.{sandbox.addresses[2]}.properties").write_text("greeting=Three\n")
    result = cli.run([f"{APP}-1.0.126.war", "--dry-run"], on_125, capsys)
    assert result.code == 0, result.text
    assert "lock: free" in result.out
    for address in sandbox.addresses:  # the WAR may be there from an earlier test
        assert re.search(rf"{re.escape(address)}: install \+ restart; send ", result.out)
    third = next(line for line in result.out.splitlines() if line.startswith(sandbox.addresses[2]))
    assert "config.properties" in third  # its own merged file, new to it
    assert "+greeting=Three" in result.out
    assert re.search(r"plan: 3 of 3 node\(s\) change, 3 restart, \d+ bytes", result.out)
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    assert len(history(on_125)) == records


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "config.web9.properties",
            "greeting=x\n",
            "config.web9.properties:1: 'web9' is not in hosts",
        ),
        (
            "config.{host}.properties",
            "# a comment\ngreetng=x\n",
            "properties:2: key 'greetng' is not",
        ),
        (".jettyrc.{host}", "JAVA_OPTS=-Xmx1g\n", ".jettyrc.{host}:1: JAVA_OPTS is not set"),
        (
            "logback.xml",
            '<configuration>\n  <root level="INFO">\n</configuration>\n',
            "logback.xml:3: not well-formed XML",
        ),
        (".jettyrc", None, ".jettyrc: cannot read it"),
    ],
)
def test_broken_configuration_is_refused_with_file_and_line_and_changes_nothing(
    on_125: Path,
    sandbox: cluster.Cluster,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str | None,
    expected: str,
) -> None:
    host = sandbox.addresses[1]
    path = on_125 / name.format(host=host)
    if text is None:  # unreadable: a directory where the file should be
        path.unlink()
        path.mkdir()
    else:
        path.write_text(text)
    for argv in ([f"{APP}-1.0.126.war"], ["logging"], ["config", "diff"]):
        result = cli.run(argv, on_125, capsys)
        assert result.code == 3, result.text
        assert expected.format(host=host) in result.err

    assert versions(sandbox) == {a: "1.0.125" for a in sandbox.addresses}

"""On a terminal: guided failure (retry, skip, roll back) and --confirm after the canary.

``deploy`` runs in a pseudo-terminal, as a user at a shell would run it, and the
test presses the keys.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from sandbox import cluster
from tests.real.helpers import all_on, history, override, versions

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """``deploy`` on a pseudo-terminal: read what it shows, press keys."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "200", "TERM": "xterm"}
        self.process = subprocess.Popen(
            ["deploy", *argv],
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,  # its own session: terminal signals reach it alone
        )
        os.close(slave)
        self.shown = ""

    def wait_for(self, text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while text not in ANSI.sub("", self.shown):
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never shown:\n{ANSI.sub('', self.shown)}"
            if not self._read(left):
                break
        assert text in ANSI.sub("", self.shown), ANSI.sub("", self.shown)

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def finish(self, seconds: float = 120) -> int:
        """Wait for the exit code; a program still running after ``seconds`` is ended
        (by its PID) and the test fails with what it showed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        try:
            code = self.process.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"deploy still running after {seconds} s:\n{self.text}")
        finally:
            os.close(self.master)
        return code

    def _read(self, seconds: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], min(seconds, 1.0))
        if not ready:
            return self.process.poll() is None
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the other side closed: the program ended
            return False
        self.shown += data.decode(errors="replace")
        return bool(data)

    @property
    def text(self) -> str:
        return ANSI.sub("", self.shown)


def test_guided_failure_skip_then_the_rest_goes_and_the_choice_is_recorded(
    on_125: Path, sandbox: cluster.Cluster
) -> None:
    first, second, third = sandbox.addresses
    override(on_125, first, restart="sh -c 'exit 7'")
    terminal = Terminal([WAR], on_125)
    terminal.wait_for("[r]etry it, [s]kip it")
    terminal.press("r")  # the restart fails again: asked again
    deadline = time.monotonic() + 60
    while terminal.text.count("[r]etry it, [s]kip it") < 2:
        assert time.monotonic() < deadline, terminal.text
        terminal._read(1)
    terminal.press("s")
    code = terminal.finish()
    assert code == 1, terminal.text
    assert f"skipped by you: {first}" in terminal.text
    assert versions(sandbox) == {first: "1.0.125", second: "1.0.126", third: "1.0.126"}
    hosts = history(on_125)[-1]["hosts"]
    assert hosts[first]["guided"] == "retry, skip"
    assert hosts[second]["outcome"] == "deployed"


def test_guided_failure_roll_back_puts_every_node_back(
    on_125: Path, sandbox: cluster.Cluster
) -> None:
    second = sandbox.addresses[1]
    # The new release's JVM does not start on that host; the release before did.
    (on_125 / f".jettyrc.{second}").write_text('JAVA_OPTIONS="-Xmx192m -XX:+NoSuchOption"\n')
    terminal = Terminal([WAR], on_125)
    terminal.wait_for("[r]etry it, [s]kip it")
    terminal.press("b")
    code = terminal.finish()
    assert code == 1, terminal.text
    assert "rolled back to the release before" in terminal.text
    assert versions(sandbox) == all_on(sandbox, "1.0.125")
    actions = [(e["action"], e["outcome"]) for e in history(on_125)[-2:]]
    assert actions == [("deploy", "failed"), ("rollback", "ok")]
    assert history(on_125)[-2]["hosts"][second]["guided"] == "roll back"


def test_confirm_asks_after_the_canary(on_125: Path, sandbox: cluster.Cluster) -> None:
    first, second, third = sandbox.addresses
    terminal = Terminal([WAR, "--confirm"], on_125)
    terminal.wait_for(f"canary {first} verified on the release. Go on with the rest? [y/n]")
    assert versions(sandbox) == {first: "1.0.126", second: "1.0.125", third: "1.0.125"}
    terminal.press("y")
    assert terminal.finish() == 0, terminal.text
    assert versions(sandbox) == all_on(sandbox, "1.0.126")


def test_confirm_refuses_without_a_terminal(on_125: Path) -> None:
    done = subprocess.run(
        ["deploy", WAR, "--confirm"], cwd=on_125, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "--confirm asks on a terminal, and stdin is not one" in done.stderr

"""On a terminal: guided failure (retry, skip, roll back) and --confirm after the canary.

``deploy`` runs in a pseudo-terminal, as a user at a shell would run it, and the
test presses the keys.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from sandbox import cluster
from tests.real.helpers import all_on, history, override, versions

pytestmark = pytest.mark.real
WAR = "search-web-frontend-1.0.126.war"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """``deploy`` on a pseudo-terminal: read what it shows, press keys.

    A thread reads the terminal all the time, so the program never blocks on a full
    terminal buffer whatever the test is doing. A program still running at the end
    is made to print every thread's stack (faulthandler, SIGABRT) before it is ended.
    """

    def __init__(self, argv: list[str], cwd: Path, rows: int = 0) -> None:
        self.master, slave = pty.openpty()
        if rows:  # the window's size, as a terminal emulator sets it
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 200, 0, 0))
        env = {**os.environ, "COLUMNS": "200", "TERM": "xterm", "PYTHONFAULTHANDLER": "1"}
        env.pop("LINES", None)  # pytest-xdist sets it; a terminal emulator does not
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
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_all, daemon=True)
        self.reader.start()

    def _read_all(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the program and every process it started are gone
                return
            if not data:
                return
            with self.lock:
                self.shown += data.decode(errors="replace")

    @property
    def text(self) -> str:
        with self.lock:
            return ANSI.sub("", self.shown)

    def wait_for(self, text: str, count: int = 1, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while self.text.count(text) < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self._end()
                pytest.fail(f"{text!r} not shown {count} time(s):\n{self.text}")
            time.sleep(0.05)

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def finish(self, seconds: float = 120) -> int:
        """The exit code; a program still running after ``seconds`` fails the test."""
        try:
            code = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self._end()
            pytest.fail(f"deploy still running after {seconds} s:\n{self.text}")
        self.reader.join(timeout=5)
        os.close(self.master)
        return code

    def _end(self) -> None:
        """Have the program print its threads' stacks, then end it (by its PID)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGABRT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)


def test_guided_failure_skip_then_the_rest_goes_and_the_choice_is_recorded(
    on_125: Path, sandbox: cluster.Cluster
) -> None:
    first, second, third = sandbox.addresses
    override(on_125, first, restart="sh -c 'exit 7'")
    terminal = Terminal([WAR], on_125)
    terminal.wait_for("[r]etry it, [s]kip it")
    terminal.press("r")  # the restart fails again: asked again
    terminal.wait_for("[r]etry it, [s]kip it", count=2)
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


def test_a_terminal_too_small_for_a_row_per_node_shows_a_row_per_phase(
    on_125: Path, sandbox: cluster.Cluster
) -> None:
    """A fleet on a terminal of 24 lines, played by 3 nodes on a terminal of 8."""
    pair = "|".join(re.escape(host) for host in sandbox.addresses[:2])
    terminal = Terminal([WAR, "--batch", "2"], on_125, rows=8)
    assert terminal.finish() == 0, terminal.text
    shown = terminal.text
    assert re.search(r"Phase +Nodes +Longest +Which", shown)
    assert re.search(rf"waiting for /status +2 +\d+\.\ds +(?:{pair}), (?:{pair})", shown)
    assert "3 of 3 ended" in shown
    assert not re.search(r"Node +Phase +For +Detail", shown)  # never the row-per-node table
    assert re.search(r"batch 1/2: 2 verified in \d+\.\d s", shown)  # a line per batch
    assert versions(sandbox) == all_on(sandbox, "1.0.126")


def test_confirm_refuses_without_a_terminal(on_125: Path) -> None:
    done = subprocess.run(
        ["deploy", WAR, "--confirm"], cwd=on_125, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "--confirm asks on a terminal, and stdin is not one" in done.stderr

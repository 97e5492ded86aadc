"""Retire never blocks a rollback, on the real stack (the parallel-deployment sandbox of
test_parallel.py: one Tomcat 10 per host, versions side by side, haproxy in front).

A deploy with ``retire = auto`` waits, after the deploy, for a logged-in user's session
on the old version to end. Meanwhile an emergency ``deploy rollback`` (from another
terminal) runs at once: the wait holds no lock. Once the user logs out, both retires
finish, and what the rollback made newest is never retired.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests import cli
from tests.real import test_parallel as parallel
from tests.real.helpers import TomcatSandbox as Sandbox
from tests.real.helpers import history
from tests.real.test_parallel import NEW, OLD, logged_in, served, set_keys, uses, versions

pytestmark = pytest.mark.real

par = parallel.par  # the module's own sandbox, built as test_parallel builds it
app_dir = parallel.app_dir


class Deploy(threading.Thread):
    """``deploy ARGS`` as a process of its own (another terminal), its output kept."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        super().__init__(daemon=True)
        self.process = subprocess.Popen(
            ["deploy", *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, words: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not any(words in line for line in self.lines):
            assert time.monotonic() < deadline, "".join(self.lines)
            assert self.process.poll() is None or self.is_alive(), "".join(self.lines)
            time.sleep(0.05)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def test_a_rollback_runs_while_an_auto_retire_waits_for_sessions(
    par: Sandbox, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_keys(app_dir, retire="auto", retire_timeout="60")
    alice, home = logged_in(par)
    deploy = Deploy([par.wars[NEW].name], app_dir)
    deploy.start()
    try:
        deploy.wait_for("holds 1 session(s)", 60)  # deployed; retire waits for alice
        assert served(par) == {NEW} and uses(par, alice) == OLD

        def log_out() -> None:
            time.sleep(3)  # while the rollback's own retire waits for her too
            alice.post(par.url("/logout"), timeout=5)

        leaving = threading.Thread(target=log_out)
        leaving.start()
        began = time.monotonic()
        back = cli.run(["rollback"], app_dir, capsys)
        leaving.join()
        assert back.code == 0, back.text  # not 5: the waiting retire holds no lock
        assert time.monotonic() - began < 30, back.text
        assert deploy.process.wait(timeout=60) == 0, deploy.text
        deploy.join()
    finally:
        if deploy.process.poll() is None:
            deploy.process.kill()
            deploy.process.wait()
    assert "another deploy of this app is running" not in back.err
    assert "no old version left" in back.out, back.text
    assert "no old version left" in deploy.text, deploy.text
    assert versions(app_dir, capsys) == {a: [OLD] for a in par.addresses}  # the rollback's
    assert served(par) == {OLD}
    actions = [entry["action"] for entry in history(app_dir)]
    assert "rollback" in actions and actions.count("retire") >= 2, actions
    assert home in par.addresses

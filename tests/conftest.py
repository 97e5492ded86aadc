"""Keep every test away from the developer's own SSH setup and environment, and give
each pytest-xdist worker its own sandbox addresses."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# scripts/test.sh runs the suite in two pytest-xdist workers, a file at a time each. The
# real tests' sandboxes are found by these variables (their defaults are the first
# worker's); every other worker moves each network 40 up, and its roots aside, before
# any test module reads them. A user's own values (two runs at once) move the same way.
_NETS = {
    "WARDEPLOY_TEST_FIRST": "127.0.1.2",
    "WARDEPLOY_TOMCAT_NET": "127.0.3",
    "WARDEPLOY_BG_NET": "127.0.5",
    "WARDEPLOY_PARALLEL_NET": "127.0.8",
    "WARDEPLOY_PROD_NET": "127.0.12",
    "WARDEPLOY_LB_NET": "127.0.14",
}
_ROOTS = {"WARDEPLOY_SANDBOX": "/tmp/wardeploy-sandbox", "WARDEPLOY_SCALE": "/tmp/wardeploy-scale"}


def _moved(net: str, by: int) -> str:
    words = net.split(".")
    words[2] = str(int(words[2]) + by)
    if int(words[2]) > 255:
        raise ValueError(f"{net}: no room for pytest-xdist worker networks 40 apart above it")
    return ".".join(words)


def _own_sandbox(worker: str) -> None:
    """Worker ``gwN`` (N > 0): every sandbox network 40 × N up, every root ``-gwN``."""
    number = int(worker.removeprefix("gw") or 0)
    if number == 0:
        return
    for name, default in _NETS.items():
        os.environ[name] = _moved(os.environ.get(name, default), 40 * number)
    for name, default in _ROOTS.items():
        os.environ[name] = f"{os.environ.get(name, default)}-{worker}"


_own_sandbox(os.environ.get("PYTEST_XDIST_WORKER", ""))


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A blank HOME, no agent and no app-root override, as on a fresh machine."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in ("SSH_AUTH_SOCK", "DEPLOY_APPS_ROOT", "INVOKE_RUN_ECHO"):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture(autouse=True)
def sighup_as_a_terminal_has_it() -> Iterator[None]:
    """A test run started with ``nohup`` (or by a runner that ignores SIGHUP) would pass
    SIGHUP on ignored to every ``deploy`` it starts, and the tool keeps an ignored SIGHUP
    ignored, on purpose: every test starts from a terminal's default instead."""
    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, before)

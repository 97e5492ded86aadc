"""Keep every test away from the developer's own SSH setup and environment."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


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

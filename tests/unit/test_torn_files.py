"""Killing the tool at any moment never leaves a torn lock file, nor loses or damages a
history line written before; the line being written may be cut short (Linux splits one
write() at page boundaries and SIGKILL stops it between two), and then only that one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fabfile.app.overrides import Overrides
from fabfile.errors import ConfigError
from fabfile.records.history import History
from fabfile.records.lock import read_holder

WRITER = """
import sys
from pathlib import Path
from fabfile.records.history import Action, History, Record, Result
from fabfile.records.lock import Lock
history = History(Path(sys.argv[1]))
lock = Path(sys.argv[2])
n = 0
print("ready", flush=True)  # imports done: from here on, every moment is a write or a lock
while True:
    n += 1
    history.append(Record(Action.DEPLOY, Result.REFUSED, str(n), message="x" * 5000))
    with Lock(lock, "writer"):
        pass
"""


def test_sigkill_at_random_moments_leaves_whole_files(tmp_path: Path) -> None:
    history, lock = tmp_path / "history.jsonl", tmp_path / "lock"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    rng = random.Random(7)
    kept = 0
    torn: dict[int, str] = {}  # lines cut short by a kill, as the kill left them
    for _ in range(15):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(history), str(lock)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        # A wait measured from the writer's first write, not from its start: a loaded
        # machine slows the imports, not what is being tested.
        time.sleep(0.05 + rng.random() * 0.3)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        text = history.read_text() if history.exists() else ""
        every = text.splitlines()
        if text and not text.endswith("\n") and not _json(every[-1]):
            torn[len(every) - 1] = every[-1]  # the write it cut short (the next one ends it)
        assert all(every[n] == line for n, line in torn.items())  # never merged with the next
        lines = [line for n, line in enumerate(every) if n not in torn]
        assert all(json.loads(line)["message"] == "x" * 5000 for line in lines)  # whole lines
        assert len(lines) >= kept  # nothing written before was lost
        assert len(History(history).records()) == len(lines)  # a torn line is skipped
        kept = len(lines)
        if lock.exists():
            assert read_holder(lock) is not None  # whole, and names the dead writer
    assert len(lines) > 15


def _json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_config_properties_is_read_or_refused_with_our_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        (path / "config.properties").write_text(text, encoding="latin-1", errors="replace")
        (path / ".jettyrc").write_text("")
        try:
            Overrides(path, ["web1"], path / ".config")
        except ConfigError as error:
            assert "config.properties" in str(error)

"""The app directory's history of deploys and rollbacks, and what "previous" means.

One JSON object per line in ``.deploy-history.jsonl``. The file is rewritten
whole through a temporary file and a rename, so a kill at any moment leaves
either the old or the new file, never a torn one.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from .release import Release
from .secrets import redact

Entry = dict[str, Any]


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class History:
    """Reads and appends the history file of one app directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[Entry]:
        """Every readable entry, oldest first (a damaged line is skipped, not fatal)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def append(self, entry: Entry) -> None:
        """Add ``entry`` atomically: write aside, fsync, rename over."""
        try:
            old = self.path.read_bytes()
        except FileNotFoundError:
            old = b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        line = redact(json.dumps(entry, sort_keys=True)).encode() + b"\n"
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as stream:
            stream.write(old + line)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, self.path)

    def stack(self) -> list[Release]:
        """Releases the cluster moved to, oldest first; rollback walks it back."""
        stack: list[Release] = []
        for entry in self.entries():
            release = _release(entry)
            if release is None or entry.get("outcome") == "refused":
                continue
            rollback = entry.get("action") == "rollback"
            if rollback and entry.get("outcome") != "ok":
                continue  # running the rollback again must still aim at the same release
            if rollback and release in stack:
                while stack[-1] != release:
                    stack.pop()
            elif not stack or stack[-1] != release:
                stack.append(release)
        return stack

    def current(self) -> Release | None:
        stack = self.stack()
        return stack[-1] if stack else None

    def previous(self) -> Release | None:
        stack = self.stack()
        return stack[-2] if len(stack) > 1 else None


def _release(entry: Entry) -> Release | None:
    data = entry.get("release")
    if not isinstance(data, dict):
        return None
    try:
        return Release.from_dict(data)
    except TypeError:
        return None

"""Every version of the app directory's configuration files the coordinator saw.

Each command snapshots ``.config``, ``config.properties``, ``.jettyrc``,
``logback.xml`` and the per-host files (`fabfile.app.overrides`) into
``.deploy-archive/``: the content once per sha256, and one line in
``log.jsonl`` each time a file's checksum differs from the last one seen. So an
edit is kept even if nobody deploys it, and the merged file each host received
can be sent again by a rollback. An app directory its group shares gives the archive to
that group too (`fabfile.records.shared`); the log is appended to, never rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import shared
from .history import now

DIRECTORY = ".deploy-archive"
LOG = "log.jsonl"


@dataclasses.dataclass(frozen=True)
class Version:
    """One version of one file, as first seen."""

    file: str
    sha256: str  # '' when the file was removed
    at: str
    user: str
    command: str


class Archive:
    """The ``.deploy-archive`` directory of one app directory."""

    def __init__(self, app_path: Path) -> None:
        self.root = app_path / DIRECTORY

    def keep(self, data: bytes) -> Path:
        """Store ``data`` under its checksum (once); return where it is."""
        path = self.root / hashlib.sha256(data).hexdigest()
        try:
            if not path.exists():
                shared.make_dir(self.root)  # config files may hold secrets: never others'
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                shared.give_to_group(tmp)
                os.replace(tmp, path)
        except PermissionError as error:
            raise shared.refused(self.root, error) from None
        return path

    def find(self, sha256: str) -> Path | None:
        """The kept copy of a content, if the archive has it."""
        path = self.root / sha256
        return path if path.is_file() else None

    def snapshot(self, files: Iterable[Path], command: str) -> list[Version]:
        """Keep each readable file and log those that changed since last seen (or went)."""
        seen: dict[str, str] = {}
        for path in files:
            try:
                seen[path.name] = self.keep(path.read_bytes()).name
            except OSError:
                continue  # the command itself says what is wrong with it
        with self._locked():
            last = self.latest()
            changed = {name: sha for name, sha in seen.items() if last.get(name) != sha}
            gone = {name: "" for name, sha in last.items() if sha and name not in seen}
            versions = [
                Version(name, sha, now(), getpass.getuser(), command)
                for name, sha in sorted((changed | gone).items())
            ]
            if versions:
                lines = "".join(json.dumps(dataclasses.asdict(v)) + "\n" for v in versions)
                shared.append_line(self.root / LOG, lines.encode())
        return versions

    def change(self, before: str, after: str) -> str:
        """``+A -B`` lines from one kept content to another ('new' for a first version)."""
        if not before:
            return "new"
        old, new = self.find(before), self.find(after) if after else None
        if old is None or (after and new is None):
            return "?"
        import difflib  # for the config table only: not on every command's way

        old_lines = old.read_bytes().decode("latin-1").splitlines()
        new_lines = new.read_bytes().decode("latin-1").splitlines() if new else []
        diff = list(difflib.unified_diff(old_lines, new_lines, lineterm="", n=0))
        added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
        return f"+{added} -{removed}"

    def versions(self) -> list[Version]:
        """Every logged version, oldest first (a damaged line is skipped)."""
        return list(self._read())

    def latest(self) -> dict[str, str]:
        """Each file's last logged checksum."""
        return {version.file: version.sha256 for version in self._read()}

    def _read(self) -> Iterator[Version]:
        try:
            lines = (self.root / LOG).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        fields = {field.name for field in dataclasses.fields(Version)}
        for line in lines:
            try:
                data: Any = json.loads(line)
                yield Version(**{key: str(data[key]) for key in fields})
            except (ValueError, TypeError, KeyError):
                continue

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Two commands may snapshot at once: one at a time reads and appends."""
        shared.make_dir(self.root)
        with shared.locked(self.root / f"{LOG}.lock"):
            yield

"""What the coordinator already knows of the WARs in an app directory.

Reading a 30 MB WAR whole (every entry decompressed, to find a damaged one
before Jetty does) and hashing it costs a few hundred milliseconds a run. A WAR
that was checked once and has not changed since need not be read again:
`Known` remembers, in ``.deploy-wars.json`` beside the WARs, each checked WAR's
stamp (size, modification and change times, inode) and sha256. Any write to
the file, a copy over it or a ``touch`` changes the stamp, and the WAR is read
whole again. The file is a cache: when it cannot be read or written the WAR is
simply read, never refused.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

NAME = ".deploy-wars.json"
KEEP = 32  # WARs remembered; an app directory rarely holds more at once


def stamp(path: Path) -> str:
    """What changes whenever the file's bytes may have changed."""
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"


class Known:
    """The checked WARs of one app directory, by file name."""

    def __init__(self, app_dir: Path) -> None:
        self.path = app_dir / NAME

    def sha256(self, war: Path) -> str | None:
        """The sha256 of ``war`` if it was checked as it is now, else None."""
        try:
            entry = self._read().get(war.name)
            return entry["sha256"] if entry and entry["stamp"] == stamp(war) else None
        except (OSError, KeyError, TypeError):
            return None

    def remember(self, war: Path, sha256: str, stamped: str) -> None:
        """Note that ``war`` was read whole and is sound, with its checksum, unless it
        changed since it was ``stamped``, before it was read (a copy still landing)."""
        try:
            if stamp(war) != stamped:
                return
            entries = self._read()
            entries.pop(war.name, None)
            entries[war.name] = {"stamp": stamp(war), "sha256": sha256}
            self._write(dict(list(entries.items())[-KEEP:]))
        except OSError:
            pass  # a cache that cannot be written costs a re-read next time, nothing more

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        """Whole or not at all: a run killed mid-write leaves the old file. tempfile is
        imported here: it brings shutil (and bz2, lzma), which the status table, that
        never writes this cache, would load for nothing."""
        import tempfile

        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f"{NAME}.")
        try:
            with os.fdopen(fd, "w") as stream:
                json.dump(entries, stream)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

"""Host keys: checked against a known_hosts file, never accepted silently.

paramiko's own loader stops at a line it cannot parse (``@cert-authority``,
key types it does not know) and its AutoAddPolicy rewrites the whole file,
dropping such lines. Here every line paramiko understands is loaded, the rest
is left alone, and a key accepted on first use (only when ``.config`` opts in)
is appended as one line under a file lock, so parallel connections cannot lose
each other's keys.
"""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

_APPEND = threading.Lock()


def load(client: paramiko.SSHClient, path: Path) -> None:
    """Add every usable entry of ``path`` to the client's host keys."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return
    keys = client.get_host_keys()
    for line in lines:
        if not line.strip() or line.lstrip().startswith(("#", "@")):
            continue
        try:
            entry = HostKeyEntry.from_line(line)
        except Exception:  # InvalidHostKey, binascii and others: the line is not ours
            entry = None
        if entry is None or entry.key is None:
            continue
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)


class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Accept an unknown key and record it, for ``accept_unknown_hosts = yes``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _APPEND, self.path.open("a", encoding="utf-8") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            stream.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)

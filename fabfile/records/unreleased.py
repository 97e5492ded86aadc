"""Node locks a run of this app directory ended without releasing.

A run that cannot reach a node at its end (the network, or sshd, is down just then)
leaves its deploy lock there (`fabfile.cluster.nodelock`) until the lease ends. It
writes here which hosts and which run: the next run from this app directory knows, by
that run's own word, that it is over, and takes those locks over at once, saying so.
Other coordinators cannot read this file; for them, the lease ends as usual.

``.deploy.lock.unreleased`` beside ``.deploy.lock``, one JSON line per host, changed
only under the app directory's lock and replaced whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


class Unreleased:
    """The node locks this app directory's runs ended without releasing, by host."""

    def __init__(self, lock_path: Path) -> None:
        self.path = lock_path.with_name(lock_path.name + ".unreleased")

    def tokens(self) -> dict[str, list[str]]:
        """The runs that left a lock on each host (a damaged line is skipped)."""
        found: dict[str, list[str]] = {}
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return found
        for line in lines:
            try:
                entry = json.loads(line)
                found.setdefault(str(entry["host"]), []).append(str(entry["token"]))
            except (ValueError, TypeError, KeyError):
                continue
        return found

    def add(self, hosts: Iterable[str], token: str) -> None:
        """Run ``token`` ended and left its lock on ``hosts``."""
        entries = [(host, tok) for host, toks in self.tokens().items() for tok in toks]
        self._write(entries + [(host, token) for host in hosts])

    def drop(self, hosts: Iterable[str]) -> None:
        """Those hosts' locks were taken over (or found gone): nothing left there."""
        gone = set(hosts)
        kept = [(host, tok) for host, toks in self.tokens().items() for tok in toks]
        if any(host in gone for host, _ in kept):
            self._write([(host, tok) for host, tok in kept if host not in gone])

    def _write(self, entries: list[tuple[str, str]]) -> None:
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        text = "".join(json.dumps({"host": h, "token": t}) + "\n" for h, t in entries)
        fresh = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fresh.write_text(text)
        os.replace(fresh, self.path)

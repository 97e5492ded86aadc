"""One connection to each jump host, shared by every node behind it.

A node behind a bastion is a channel of the bastion's connection; dialling the
bastion once per node made 32 logins at once to it, above OpenSSH's default
``MaxStartups 10:30:100`` (it then refuses logins at random). Here the nodes of a
process that go through the same hops, as the same user with the same keys and
known_hosts, hold one `Jump`: opened once (under a lock: nodes open in parallel),
dialled again if it died, and closed when the last node holding it lets it go.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable
from typing import Any

from fabric import Connection

_held: dict[Hashable, Jump] = {}
_lock = threading.RLock()  # making a jump takes the one before it


class Jump(Connection):  # type: ignore[misc]  # Fabric ships no type hints
    """A jump host's connection, shared: `take` hands it out, `give_back` closes it
    after its last holder."""

    # class attributes: Fabric treats an attribute it does not know as configuration
    key: Hashable = None
    holders = 0
    _opening: threading.Lock | None = None

    def open(self) -> Any:
        assert self._opening is not None  # set by `take`
        with self._opening:
            if self.is_connected:
                return None
            if self.client.get_transport() is not None:  # a dead link: dial afresh
                self.client.close()
            return super().open()

    def shut(self) -> None:
        """Close it for good, and let go of the jump host it goes through, if any."""
        with contextlib.suppress(Exception):  # a dead link may fail to close
            super().close()
        if isinstance(self.gateway, Jump):
            give_back(self.gateway)


def take(key: Hashable, make: Callable[[], Jump]) -> Jump:
    """The jump connection for ``key`` (the hops and how they are logged in to), made
    with ``make`` when no node holds one; it is not opened here."""
    with _lock:
        jump = _held.get(key)
        if jump is None:
            jump = make()
            jump.key, jump._opening = key, threading.Lock()
            _held[key] = jump
        jump.holders += 1
        return jump


def give_back(jump: Jump) -> None:
    """One node is done with ``jump``; the last one closes it."""
    with _lock:
        jump.holders -= 1
        last = jump.holders <= 0
        if last and _held.get(jump.key) is jump:
            del _held[jump.key]
    if last:
        jump.shut()


def holders(key: Hashable) -> int:
    """How many nodes hold the jump connection for ``key`` (0: none is open)."""
    with _lock:
        jump = _held.get(key)
        return jump.holders if jump is not None else 0

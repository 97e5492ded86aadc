"""Retiring old versions (parallel deployment): undeploy each once its last session ends.

Every host is polled, since with sticky routing a version may be idle on one
host and still hold users on another; on each host a version is undeployed
as soon as it holds no session there, never the newest running one (new
sessions go to it). The wait is bounded by ``retire_timeout``; what is left
keeps serving its users, and ``deploy retire --now`` undeploys it anyway
(its users are logged out). Stopping at any moment leaves every version not
yet undeployed serving: an undeploy is one call to the manager.

The wait holds no lock, so a rollback is never kept waiting behind it: the app's
deploy lock (`Guard`) is taken only for a round of undeploys, and under it the
versions and the history's verified tags are read again (a rollback may have
finished meanwhile, and what it made newest is never retired). While another run
holds the lock, retire undeploys nothing and looks again at its next poll.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Protocol

from ..app.config import NodeConfig
from ..cluster.manager import Deployed, Manager
from ..errors import LockError, NodeError

POLL = 1.0  # seconds between two looks at the sessions


@dataclasses.dataclass(frozen=True)
class Held:
    """An old version still deployed on one node."""

    node: str  # the node's label
    version: Deployed


class View(Protocol):
    """Shows the countdown: what is left, and how long retire still waits."""

    def show(self, left: Sequence[Held], seconds: float) -> None: ...

    def note(self, text: str) -> None: ...


class Guard(Protocol):
    """The app's deploy lock, held only while undeploying, and the history read under it."""

    def hold(self) -> AbstractContextManager[object]:
        """The lock; `LockError` at once when another run holds it."""
        ...

    def verified(self) -> dict[str, str]:
        """The version tag each node last passed verification with (node -> tag)."""
        ...


@dataclasses.dataclass
class Retirement:
    """One retire run over ``nodes``; `run` returns what is still held."""

    manager: Manager
    nodes: tuple[NodeConfig, ...]
    view: View
    timeout: float
    now: bool = False  # undeploy old versions whatever their sessions
    verified: dict[str, str] = dataclasses.field(default_factory=dict)  # node -> last tag
    retired: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # node -> why
    guard: Guard | None = None  # None: no lock (the caller holds one, or tests)
    locked_out: str = ""  # why the last round could not undeploy: another run's lock
    _said: set[str] = dataclasses.field(default_factory=set)

    def run(self) -> list[Held]:
        deadline = time.monotonic() + (0 if self.now else self.timeout)
        while True:
            left = self._round()
            self.view.show(left, max(0.0, deadline - time.monotonic()))
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))

    def _round(self) -> list[Held]:
        """One look at every node, undeploying what no session holds any more; what is
        still held. The lock is taken only when there is something to undeploy."""
        if self.guard is None:
            return [h for h in self._old_versions() if not self._undeployed(h)]
        self.verified = self.guard.verified()  # a rollback may have verified another
        held = self._old_versions(say=False)
        if not any(self.now or not h.version.sessions for h in held):
            return held
        try:
            with self.guard.hold():
                self.locked_out = ""
                self.verified = self.guard.verified()  # what is true now, under the lock
                return [h for h in self._old_versions() if not self._undeployed(h)]
        except LockError as error:
            if not self.locked_out:
                self.view.note(f"{error}\nretire undeploys nothing while that runs")
            self.locked_out = str(error)
            return held

    def _old_versions(self, say: bool = True) -> list[Held]:
        """Every node's old versions, all nodes read at once; a node whose manager does
        not answer is left alone (and said), the others go on. ``say``: the verified tags
        are current (read under the lock), so a version kept for them is said."""
        with ThreadPoolExecutor(max_workers=min(32, len(self.nodes) or 1)) as pool:
            listed = list(pool.map(self._versions, self.nodes))
        held = []
        for node, versions in zip(self.nodes, listed, strict=True):
            kept, old = _split(versions, self.verified.get(node.label, ""))
            held += [Held(node.label, version) for version in old]
            if kept and say and node.label not in self._said:
                self._said.add(node.label)
                self.view.note(
                    f"{node.label}: {', '.join(d.label for d in kept[1:])} never passed this "
                    f"tool's verification; retire keeps it and {kept[0].label}, the newest "
                    "verified version: deploy again, or undeploy it yourself"
                )
        return held

    def _versions(self, node: NodeConfig) -> list[Deployed]:
        try:
            return self.manager.versions(node)
        except NodeError as error:
            if node.label not in self.failed:
                self.view.note(f"{error}; nothing retired there")
            self.failed[node.label] = str(error)
            return []

    def _undeployed(self, held: Held) -> bool:
        """Undeploy ``held`` if no session is left on it (or --now); True if it was."""
        if held.version.sessions and not self.now:
            return False
        node = next(node for node in self.nodes if node.label == held.node)
        try:
            self.manager.undeploy(node, held.version.tag)
        except NodeError as error:
            if held.node not in self.failed:
                self.view.note(f"{error}; it keeps serving")
            self.failed[held.node] = str(error)
            return False
        self.retired.setdefault(held.node, []).append(held.version.label)
        sessions = f", {held.version.sessions} session(s) ended" if held.version.sessions else ""
        self.view.note(f"{held.node}: undeployed {held.version.label}{sessions}")
        return True


def _split(versions: Sequence[Deployed], verified: str) -> tuple[list[Deployed], list[Deployed]]:
    """(the versions kept though newer than the newest verified one, which comes first;
    the old versions to retire). The newest running version is kept, or, when a newer
    one never passed verification (a deploy killed half-way), the verified one: retiring
    it would leave only what was never verified. A stopped version serves nobody."""
    running = [version for version in versions if version.state == "running"]
    if not running:
        return [], []  # nothing serves new sessions: undeploying would leave nothing at all
    keep = next((v for v in running if v.tag == verified), running[-1])
    newer = [v for v in running if v.tag > keep.tag]
    old = [v for v in versions if v not in newer and v is not keep]
    return ([keep, *newer] if newer else []), old

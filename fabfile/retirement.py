"""Retiring old versions (parallel deployment): undeploy each once its last session ends.

Every host is polled, since with sticky routing a version may be idle on one
host and still hold users on another; on each host a version is undeployed
as soon as it holds no session there, never the newest running one (new
sessions go to it). The wait is bounded by ``retire_timeout``; what is left
keeps serving its users, and ``deploy retire --now`` undeploys it anyway
(its users are logged out). Stopping at any moment leaves every version not
yet undeployed serving: an undeploy is one call to the manager.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from .config import NodeConfig
from .manager import Deployed, Manager

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


@dataclasses.dataclass
class Retirement:
    """One retire run over ``nodes``; `run` returns what is still held."""

    manager: Manager
    nodes: tuple[NodeConfig, ...]
    view: View
    timeout: float
    now: bool = False  # undeploy old versions whatever their sessions
    retired: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def run(self) -> list[Held]:
        deadline = time.monotonic() + (0 if self.now else self.timeout)
        while True:
            left = [held for held in self._old_versions() if not self._undeployed(held)]
            self.view.show(left, max(0.0, deadline - time.monotonic()))
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))

    def _old_versions(self) -> list[Held]:
        """Every node's versions but the newest running one, all nodes read at once."""
        with ThreadPoolExecutor(max_workers=min(32, len(self.nodes) or 1)) as pool:
            listed = list(pool.map(self.manager.versions, self.nodes))
        return [
            Held(node.label, version)
            for node, versions in zip(self.nodes, listed, strict=True)
            for version in _old(versions)
        ]

    def _undeployed(self, held: Held) -> bool:
        """Undeploy ``held`` if no session is left on it (or --now); True if it was."""
        if held.version.sessions and not self.now:
            return False
        node = next(node for node in self.nodes if node.label == held.node)
        self.manager.undeploy(node, held.version.tag)
        self.retired.setdefault(held.node, []).append(held.version.label)
        sessions = f", {held.version.sessions} session(s) ended" if held.version.sessions else ""
        self.view.note(f"{held.node}: undeployed {held.version.label}{sessions}")
        return True


def _old(versions: Sequence[Deployed]) -> list[Deployed]:
    """All but the newest running version (the manager lists them oldest tag first)."""
    running = [version for version in versions if version.state == "running"]
    if not running:
        return []  # nothing serves new sessions: undeploying would leave nothing at all
    return [version for version in versions if version is not running[-1]]

"""What to roll out where: a `Plan` is the release, the local copies of its files and
the nodes, as `fabfile.engine.planning` makes it and `fabfile.engine.rollout.Rollout` runs it.

The strategies and the runtimes read it; it reads nothing of theirs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..app.config import NodeConfig
from ..app.pace import Pace
from ..app.release import Release
from ..records.history import Action


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to roll out where: the release, the local copy of each blob, the nodes."""

    action: Action
    release: Release
    sources: dict[str, Path]  # sha256 -> file on the coordinator
    nodes: tuple[NodeConfig, ...]
    force: bool = False
    next_step: str = ""  # the sentence that tells the user how to undo or finish
    command: str = "deploy"  # the command line that runs this plan again
    pace: Pace = dataclasses.field(default_factory=Pace)

    def release_for(self, node: NodeConfig) -> Release:
        """What ``node`` installs: the release with its host's own config files."""
        return self.release.for_host(node.host)

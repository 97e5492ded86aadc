"""Which limit fired when a node was not ready in time, and what would have been enough.

A node that does not report the release within ``ready_timeout`` fails the rollout
(`fabfile.engine.runtimes.restart`, and `fabfile.engine.runtimes.parallel` for a version
Tomcat deployed beside the running one). The user then needs the key's name, where it is set
(a line of ``.config``, or the default), how long this node took from restart to ready
in the runs the history recorded, and from those a value that would have covered it,
or the sign that it is slower than ever now (it may never have become ready).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..app.config import AppConfig, NodeConfig
from ..records.history import Record

KEY = "ready_timeout"
SHOWN = 5  # the node's most recent restart-to-ready times named in the message
MARGIN = 2  # a suggested ready_timeout is this many times the longest start seen


def needed(records: Sequence[Record], label: str) -> list[float]:
    """The node's restart-to-ready seconds in the runs recorded, oldest first."""
    found = (record.hosts.get(label) for record in records)
    return [host.restart_to_ready for host in found if host and host.restart_to_ready]


def missed(
    config: AppConfig, node: NodeConfig, records: Sequence[Record], start: str = "restart"
) -> str:
    """The lines that say which limit fired on ``node``, and what would have been enough;
    ``start``: what a start is on this node (a JVM's restart, a version's deploy)."""
    limit = node.ready_timeout
    lines = [f"The limit was {KEY} = {limit:g} s ({config.origin(node, KEY)})."]
    times = needed(records, node.label)
    if not times:
        lines.append(
            f"No start of {node.label} is recorded yet, so nothing tells what it needs: if it "
            f"only starts slowly, raise {KEY}; if it never answers, read its log."
        )
        return "\n".join(lines)
    recent = ", ".join(f"{seconds:.1f} s" for seconds in times[-SHOWN:])
    longest = max(times)
    lines.append(
        f"{node.label} took {recent} from {start} to ready in its last recorded runs "
        f"(longest {longest:.1f} s of {len(times)})."
    )
    if longest >= limit:
        enough = math.ceil(longest * MARGIN)
        lines.append(
            f"It needed more than {limit:g} s before: {KEY} = {enough} ({MARGIN}x its longest "
            "start) would have been enough, if it starts as it did then."
        )
    else:
        lines.append(
            f"Every recorded start fitted within {limit:g} s: this one is slower than any "
            "before, or the node never became ready; read its log before raising "
            f"{KEY}."
        )
    return "\n".join(lines)

"""Which limit fired when a node was not ready in time, and what would have been enough.

A node that does not report the release within ``ready_timeout`` fails the rollout
(`fabfile.engine.runtimes.restart`, and `fabfile.engine.runtimes.parallel` for a version
Tomcat deployed beside the running one). The user then needs the key's name, where it is set
(a line of ``.config``, or the default), how long this node took from restart to ready
in the runs the history recorded, and from those the value `deploy history --stats`
suggests too (`metrics.suggested_ready_timeout`), or the sign that the limit left room
for its usual starts and this one was slower (it may never have become ready).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..app.config import AppConfig, NodeConfig
from ..records.history import Record

KEY = "ready_timeout"
SHOWN = 5  # the node's most recent restart-to-ready times named in the message


def needed(records: Sequence[Record], label: str) -> list[float]:
    """The node's restart-to-ready seconds in the runs recorded, oldest first."""
    found = (record.hosts.get(label) for record in records)
    return [host.restart_to_ready for host in found if host and host.restart_to_ready]


def missed(
    config: AppConfig, node: NodeConfig, records: Sequence[Record], start: str = "restart"
) -> str:
    """The lines that say which limit fired on ``node``, and what would have been enough;
    ``start``: what a start is on this node (a JVM's restart, a version's deploy)."""
    # the delivery metrics (and their statistics) only when a node missed its limit
    from ..records.metrics import ROOM, suggested_ready_timeout

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
    enough = suggested_ready_timeout(times, limit)
    if enough is not None:
        lines.append(
            f"{limit:g} s leaves it too little room: {KEY} = {enough} ({ROOM:g}x the p95 of "
            "its recorded starts) would be enough, if it starts as it did then."
        )
    else:
        lines.append(
            f"{limit:g} s leaves room for its recorded starts ({ROOM:g}x their p95): this one "
            f"is slower than usual, or the node never became ready; read its log before "
            f"raising {KEY}."
        )
    return "\n".join(lines)

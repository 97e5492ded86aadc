"""How a run that did not go to the end is told: where it stopped, who is on what, what next.

These sentences end the error the user reads and the message the history keeps;
``next_step`` is the plan's sentence on how to undo or finish.
"""

from __future__ import annotations

from collections.abc import Sequence

from .phase import Phase
from .target import Outcome, Target

_PASSED = (Outcome.DEPLOYED, Outcome.UNCHANGED, Outcome.VERIFIED, Outcome.LIVE)


def interruption(targets: Sequence[Target], next_step: str, cause: str = "Ctrl-C") -> str:
    """Where ``cause`` (Ctrl-C, SIGTERM, SIGHUP) stopped the run and what to run next; a
    node caught changing ends interrupted, one caught staging untouched."""
    active = [t for t in targets if t.phase not in (Phase.PENDING, Phase.DONE)]
    # a node being drained is where the run stood too (not yet changed), not one staged
    changing = [t for t in active if t.phase.changes_node or t.phase == Phase.DRAINING]
    # a blue/green colour verified before the stop still shows its last phase: name the
    # node the stop caught half-way, not one that had already passed
    caught = [t for t in changing if t.outcome not in _PASSED]
    where = next(
        iter(caught or changing),
        next((t for t in active if t.phase == Phase.STAGING), active[-1] if active else None),
    )
    for target in targets:
        if target.phase.changes_node and target.outcome != Outcome.DEPLOYED:
            target.end(Outcome.INTERRUPTED, f"while {target.phase.value}")
        elif target.phase == Phase.STAGING:
            target.end(Outcome.UNTOUCHED, "interrupted while staging; runs what it ran")
    if where is None:
        return f"interrupted by {cause} before any node was contacted; nothing changed"
    return (
        f"interrupted at node {where.host} in phase '{where.phase.value}' by {cause}. "
        "Run `deploy` to see what each node runs; run the same deploy again to finish"
        + (f". {next_step}" if next_step else "")
    )


def stopped_there(targets: Sequence[Target], next_step: str) -> str:
    """Who is on what now, and the command to run: the context of a node's failure."""
    done = [t.host for t in targets if t.outcome.on_release]
    left = [t.host for t in targets if t.outcome == Outcome.UNTOUCHED]
    failed = [t.host for t in targets if t.outcome == Outcome.FAILED]
    lines = [
        f"Stopped there. On the new release: {', '.join(done) or 'none'}. "
        f"Untouched (still on their old release): {', '.join(left) or 'none'}."
    ]
    if len(failed) > 1:
        lines[0] += f" Failed: {', '.join(failed)}."
    if next_step:
        lines.append(next_step)
    return "\n".join(lines)


def finished_summary(targets: Sequence[Target], next_step: str) -> str:
    """Every node was reached, past failures the pace allows: who is on the release."""
    done = [t.host for t in targets if t.outcome.on_release]
    lines = [f"On the new release: {', '.join(done) or 'none'}."]
    if next_step:
        lines.append(next_step)
    return "\n".join(lines)

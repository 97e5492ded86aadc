"""How a blue/green run paces its hosts, in the dry run's words.

The idle colours start ``idle_starts`` hosts at a time (all at once by default), each
verified on its own port; then one warm-up; then haproxy switches ``batch`` hosts
together (`fabfile.engine.strategies.bluegreen`).
"""

from __future__ import annotations

from ...app.pace import Pace, Share


def order(pace: Pace, hosts: int) -> str:
    """The dry run's line on how a run over ``hosts`` hosts goes."""
    canary = f"the first {pace.canary} host(s) as canary, then " if pace.canary else ""
    starts = _together(pace.starts(hosts), hosts, "idle_starts", pace.idle_starts)
    switches = _together(pace.size(hosts), hosts, "batch", pace.batch)
    return (
        f"order: {canary}idle colours {starts}, each verified on its own port; then one "
        f"warm-up; then the switches {switches}"
    )


def _together(size: int, hosts: int, key: str, value: Share) -> str:
    if size >= hosts:
        return f"of all {hosts} host(s) at once"
    if size == 1:
        return f"one host after another ({key} = 1)"
    return f"{size} hosts at a time ({key} = {value})"

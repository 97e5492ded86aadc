"""How a blue/green run paces its hosts, in the dry run's words.

The idle colours start ``idle_starts`` hosts at a time (all at once by default), each
verified on its own port; then one warm-up; then haproxy switches ``batch`` hosts
together (`fabfile.engine.strategies.bluegreen`), the hosts switched so far judged
before each next switch batch and, for ``watch`` seconds, after the last.
"""

from __future__ import annotations

from ...app.pace import Pace, Share

_ON_FAILURE = {"ask": "asks what to do", "rollback": "switches every switched host back"}


def order(pace: Pace, hosts: int) -> str:
    """The dry run's line on how a run over ``hosts`` hosts goes."""
    canary = f"the first {pace.canary} host(s) as canary, then " if pace.canary else ""
    starts = _together(pace.starts(hosts), hosts, "idle_starts", pace.idle_starts)
    switches = _together(pace.size(hosts), hosts, "batch", pace.batch)
    words = [
        f"order: {canary}idle colours {starts}, each verified on its own port; then one "
        f"warm-up; then the switches {switches}"
    ]
    if pace.judged and pace.size(hosts) < hosts:  # no time added: judged as they go
        words.append("the hosts switched so far judged before each next switch batch")
    if pace.judged and pace.watch:
        words.append(f"then every new colour is watched for {pace.watch:g} s")
    if pace.judged and pace.on_failure in _ON_FAILURE:
        words.append(f"a Failed verdict {_ON_FAILURE[pace.on_failure]} (on_failure)")
    return "; ".join(words)


def _together(size: int, hosts: int, key: str, value: Share) -> str:
    if size >= hosts:
        return f"of all {hosts} host(s) at once"
    if size == 1:
        return f"one host after another ({key} = 1)"
    return f"{size} hosts at a time ({key} = {value})"

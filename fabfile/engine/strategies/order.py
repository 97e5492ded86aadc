"""How a run in batches (rolling, parallel) goes over its nodes, in the dry run's words.

The canary nodes first; then ``batch`` nodes at a time; the run stops once more than
``max_failures`` nodes failed (`fabfile.engine.batches.split` makes the batches).
"""

from __future__ import annotations

from ...app.pace import Pace


def in_batches(pace: Pace, nodes: int) -> str:
    """The dry run's line on how a run over ``nodes`` nodes goes, in the order listed."""
    canary = pace.canary if pace.canary < nodes else 0  # nothing would wait for a verdict
    first = f"the first {canary} node(s) as canary, then " if canary else ""
    size = pace.size(nodes)
    if size >= nodes:
        together = f"all {nodes} node(s) at once"
    elif size == 1:
        together = "one node after another (batch = 1)"
    else:
        together = f"{size} nodes at a time (batch = {pace.batch})"
    tolerated = pace.tolerated(nodes)
    stop = (
        f"stops once more than {tolerated} fail (max_failures = {pace.max_failures})"
        if tolerated
        else "stops at the first failure"
    )
    return f"order: {first}{together}; {stop}"


_ON_FAILURE = {"ask": "asks what to do", "rollback": "rolls every changed node back"}


def judged_in_batches(pace: Pace, nodes: int, each: str = "") -> str:
    """Rolling: `in_batches`, then (``each``) how a later batch is judged, the watch
    window and what a Failed verdict does."""
    words = [in_batches(pace, nodes)]
    if pace.judged and each and pace.size(nodes) < nodes:  # a later batch to judge
        words.append(each)
    if pace.judged and pace.watch:
        words.append(f"then every node on the release is watched for {pace.watch:g} s")
    if pace.judged and pace.on_failure in _ON_FAILURE:
        words.append(f"a Failed verdict {_ON_FAILURE[pace.on_failure]} (on_failure)")
    return "; ".join(words)


def judged_over_each_batch(pace: Pace, nodes: int) -> str:
    """Parallel: `judged_in_batches`; a batch is judged over the batch itself, since
    a version serves new sessions from the moment Tomcat deploys it."""
    each = (
        "after every batch but the last, the nodes on the release are judged over that "
        "batch, from its start to its end (a version serves new sessions once deployed; "
        "too few requests to judge goes on)"
    )
    return judged_in_batches(pace, nodes, each)

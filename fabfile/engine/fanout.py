"""Work on many nodes at once; an interruption cuts the calls in flight short.

Pre-flight, staging, a batch of more than one node and pruning run each node's work in
a thread of one `fabfile.cluster.inflight.Flight`. Ctrl-C, SIGTERM or SIGHUP reaches the
main thread, where it waits here; it stops the flight: the SSH connections the threads
hold are closed, so their calls fail at once, their waits end, and each thread cleans
up as its strategy does after Ctrl-C (a node caught mid-restart left drained, say). The
main thread gives them `GRACE` seconds for that, then raises the interruption, with the
notes they added, whether or not all of them have ended: one still in an HTTP request
ends at its timeout, and can no longer reach a node over SSH. A second Ctrl-C cuts the
grace short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ..cluster import inflight

T = TypeVar("T")
R = TypeVar("R")
WORKERS = inflight.WORKERS
GRACE = inflight.GRACE  # seconds the threads get to clean up once the run is interrupted


def each(work: Callable[[T], R], targets: Sequence[T]) -> list[R]:
    """``work`` on every target at once (at most `WORKERS` threads); the results in
    the targets' order, or the first target's error. An interruption meanwhile is
    raised within about `GRACE` seconds."""
    return inflight.each(work, targets, WORKERS, GRACE)

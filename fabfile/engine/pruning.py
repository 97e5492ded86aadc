"""Pruning: once the rollout is done, each host drops the files of old releases.

It keeps the newest ``keep_releases`` distinct releases (at least 2, so there is
a way back), counted apart from their logback.xml, and whatever an instance on
the host runs. Best effort: old files cost disk, not correctness.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

from ..app.release import Release
from ..errors import NodeError
from . import fanout
from .clusterlock import ClusterLock
from .plan import Plan
from .staging import first_of_each_host
from .target import Target


def prune(
    targets: Sequence[Target],
    plan: Plan,
    note: Callable[[str], None],
    lock: ClusterLock | None = None,
) -> None:
    """Drop blobs of releases older than ``keep_releases``, on every host at once
    (once per host: its instances share the releases directory). Under the run's
    ``lock``, in the command that releases it on each host (`ClusterLock.part_with`):
    at 100 nodes the run's last round trip to every node, rather than two."""
    first = list(first_of_each_host(targets).values())
    if lock is None:
        fanout.each(functools.partial(_prune, plan, note), first)
        return
    for target in first:
        if target.holdings is not None:
            keep = plan.release_for(target.config).blobs | _kept_blobs(target)
            if script := target.node.prune_script(target.holdings, keep):
                lock.part_with(target.node.host, script)


def _prune(plan: Plan, note: Callable[[str], None], target: Target) -> None:
    if target.holdings is None:
        return
    keep = plan.release_for(target.config).blobs | _kept_blobs(target)
    try:
        target.node.prune(target.holdings, keep)
    except NodeError as error:  # best effort: old files cost disk, not correctness
        note(f"could not remove old releases: {error}")


def _kept_blobs(target: Target) -> frozenset[str]:
    """Blobs of the node's newest ``keep_releases`` distinct releases (at least 2)."""
    assert target.holdings is not None
    keep_count = max(2, target.config.keep_releases)
    kept: list[Release] = []  # releases apart from their logback.xml (`deploy logging`)
    blobs: set[str] = set()
    for release in reversed(target.holdings.installed):
        key = dataclasses.replace(release, logback="")
        if key not in kept:
            if len(kept) >= keep_count:
                break
            kept.append(key)
        blobs |= release.blobs
    for held in (target.holdings.current, *target.holdings.held):
        if held is not None:
            blobs |= held.blobs  # what an instance on the node runs stays
    return frozenset(blobs)

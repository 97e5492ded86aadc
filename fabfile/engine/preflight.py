"""Pre-flight: every target read in parallel, and refused before any release changes.

First it takes the deploy lock on every target node, all or nothing, in the round
trip that reads each node's releases directory (`fabfile.engine.clusterlock`): a node
held by another run refuses this one before anything is tidied or changed. Then, for
each node, it reads ``/status``, lets the runtime settle a restart still claimed there
(`fabfile.engine.runtimes.Runtime.settle`), says which config files were edited on the
node, and asks whether the node has room for what it lacks; the strategy adds checks
of its own (the load balancer's).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Protocol

from ..cluster import probe
from ..cluster.holdings import Holdings
from ..errors import NodeError, PreflightError
from . import fanout
from .clusterlock import ClusterLock, Taken
from .phase import Phase
from .plan import Plan
from .runtimes import Runtime
from .strategies.contract import Strategy
from .target import Target


class Preflight(Protocol):
    """The rollout as pre-flight uses it: what it reads with, and its questions about a node."""

    plan: Plan
    strategy: Strategy
    runtime: Runtime
    lock: ClusterLock | None

    @property
    def targets(self) -> Sequence[Target]: ...

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None: ...

    def note(self, text: str) -> None: ...

    def drift(self, target: Target) -> list[str]: ...

    def room(self, target: Target, holdings: Holdings) -> str: ...


def preflight(rollout: Preflight) -> None:
    """Read every target in parallel; refuse before any release changes if one is unfit.

    (It does create the releases directory, remove partial uploads and clear
    restart claims that are over.)
    """
    for target in rollout.targets:
        rollout.set_phase(target, Phase.CHECKING)
    taken = rollout.lock.take(read=True) if rollout.lock is not None else Taken({}, {})
    check = functools.partial(_check, rollout, taken)
    errors = [e for e in fanout.each(check, rollout.targets) if e]
    errors += rollout.strategy.check(rollout.plan.nodes)
    if errors:
        raise PreflightError(
            f"pre-flight refused on {len(errors)} of {len(rollout.targets)} node(s); "
            "nothing was changed:\n" + "\n".join(f"  {e}" for e in errors)
        )


def _check(rollout: Preflight, taken: Taken, target: Target) -> str:
    try:
        if error := taken.errors.get(target.config.host):
            raise NodeError(error)  # the lock's round trip failed: not dialled twice
        target.holdings = taken.holdings.get(target.host) or target.node.holdings()
        rollout.runtime.settle(target)
    except NodeError as error:
        rollout.set_phase(target, Phase.FAILED, str(error))
        return str(error)
    target.status = probe.probe(target.config)
    if drifted := rollout.drift(target):
        rollout.note(
            f"{target.host}: {', '.join(drifted)} on the node differs from what was deployed "
            "(edited there?); this deploy puts the deployed one back"
        )
    return rollout.room(target, target.holdings)

"""Staging: each host is sent the release's files it lacks, before any restart.

Staging sends bytes to every node but touches no running release, so a failure
here leaves every node on what it ran. The instances of one host share its
releases directory: the first of them receives the files for all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Protocol

from ..errors import NodeError, RolloutError
from . import fanout
from .phase import Phase
from .plan import Plan
from .strategies.contract import Strategy
from .target import Target


class Staging(Protocol):
    """The rollout as staging uses it: the local copy of each file, and what a node lacks."""

    plan: Plan
    strategy: Strategy

    @property
    def targets(self) -> Sequence[Target]: ...

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None: ...

    def note(self, text: str) -> None: ...

    def missing(self, target: Target) -> list[str]: ...

    def unchanged(self, target: Target) -> bool: ...

    def prepare_one(self, target: Target, fresh: frozenset[str] = frozenset()) -> str: ...

    def discard(self, targets: Sequence[Target]) -> None: ...


def stage(rollout: Staging, recheck: bool = True, prepare: bool = False) -> None:
    """Send each host the blobs it lacks, in parallel, before any restart.

    The instances of one host share its releases directory: the first of
    them receives the files, the others are staged with it. Without ``recheck``, the
    files a host held already are not hashed again here: the run's next step copies
    each one beside its place, checked, before any node leaves rotation
    (`Strategy.prepares`), and one that changed is sent again then. With ``prepare``,
    that step is taken here, each host's copies made as soon as its files are there
    (`Staging.prepare_one`): no host waits for the slowest upload, and the node's work
    overlaps this machine's sending to the others."""
    first = first_of_each_host(rollout.targets)
    changing = _installing(rollout) if recheck else set()
    send = functools.partial(_stage, rollout, changing, prepare)
    failed = [(step, e) for step, e in fanout.each(send, list(first.values())) if e]
    for target in rollout.targets:
        if first[target.node.host] is not target:
            rollout.set_phase(target, Phase.STAGED, f"with {first[target.node.host].host}")
    if failed:
        rollout.discard(rollout.targets)  # the copies made on the hosts that were staged
        step = failed[0][0] if all(s == failed[0][0] for s, _ in failed) else STAGING
        raise RolloutError(
            f"{step} failed; no node was restarted, every node still runs what it ran:\n"
            + "\n".join(f"  {e}" for _, e in failed)
        )


STAGING = "staging"
PREPARING = "preparing the release's files"


def _stage(rollout: Staging, changing: set[str], prepare: bool, target: Target) -> tuple[str, str]:
    """(the step that failed, why), or ('', '') when the host was staged (and prepared)."""
    missing = rollout.missing(target)
    if missing:
        rollout.set_phase(target, Phase.STAGING, f"{len(missing)} file(s)")
    # the host's targets to prepare: the first one's copies check the files it installs
    # as they are made (a part becomes a blob only then); any other file (a sibling
    # instance's) is checked on arrival
    host = target.node.host
    mine = [t for t in rollout.targets if t.node.host == host and not rollout.unchanged(t)]
    mine = mine if prepare else []
    first = any(t is target for t in mine)
    copied = rollout.plan.release_for(target.config).blobs if first else frozenset()
    fresh = frozenset(sha for sha in missing if sha in copied)
    try:
        for sha in missing:
            source = rollout.plan.sources[sha]
            target.sent += target.node.upload(source, sha, check=sha not in fresh)
        if target.node.host in changing:
            _recheck(rollout, target, set(missing))
    except NodeError as error:
        rollout.set_phase(target, Phase.FAILED, str(error))
        return STAGING, str(error)
    rollout.set_phase(target, Phase.STAGED, f"{target.sent} bytes sent")
    made = [rollout.prepare_one(t, fresh if t is target else frozenset()) for t in mine]
    errors = "; ".join(error for error in made if error)
    return (PREPARING, errors) if errors else ("", "")


def _installing(rollout: Staging) -> set[str]:
    """The hosts where the run installs the release: only there must the files already
    held be hashed again (a blue/green switch to a colour that runs it has none)."""
    unchanged: dict[str, list[bool]] = {}
    for target in rollout.targets:
        unchanged.setdefault(target.node.host, []).append(rollout.unchanged(target))
    unit = rollout.strategy.unit
    return {host for host, each in unchanged.items() if unit.installs(each)}


def _recheck(rollout: Staging, target: Target, sent: set[str]) -> None:
    """The files the host already held are hashed again: one that changed on the node
    since it was staged (a blob is trusted by its name only once checked) is sent again
    now, before anything is restarted; the install checks each copy once more."""
    held = rollout.plan.release_for(target.config).blobs - sent
    changed = target.node.changed_blobs(held) if held else {}
    if changed:
        target.sent += target.node.resend(changed, rollout.plan.sources)
        rollout.note(
            f"{target.node.host}: {len(changed)} staged file(s) had changed on the node since "
            "they were staged; sent again and checked"
        )


def first_of_each_host(targets: Sequence[Target]) -> dict[str, Target]:
    """The first target of each host, by host, in ``.config`` order."""
    first: dict[str, Target] = {}
    for target in targets:
        first.setdefault(target.node.host, target)
    return first

"""`deploy WAR --dry-run`: the plan, read from the nodes, with nothing changed.

It reads what the pre-flight reads (each node's releases directory without
tidying it, its ``/status``, its config files) and asks the rollout's own
questions (`Rollout.unchanged`, `Rollout.missing`, `Rollout.drift`), so the
plan printed is the plan a deploy would run, in the strategy's own words
(`Strategy.preview`). It takes no lock and writes no history; it says who holds
the lock, if anyone does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..app import extensions
from ..app.overrides import HostFiles
from ..cluster import drift, probe, takenout
from ..cluster.balancer import Rotation, State
from ..engine.preflight import foreign
from ..engine.rollout import Rollout
from ..engine.target import Target
from ..errors import NodeError

UNCHANGED = "unchanged (verified on /status, skipped)"
LOGGING_ONLY = "logback.xml only: put in place live (no restart)"


@dataclasses.dataclass(frozen=True)
class Step:
    """What the deploy would do on one node."""

    node: str
    action: str  # "unchanged", "install + restart", ...
    running: str  # what /status answers now
    files: tuple[str, ...]  # names of the files it would be sent
    bytes: int
    edited: tuple[str, ...]  # config files changed on the node since the deploy
    diffs: tuple[drift.FileDrift, ...]
    error: str = ""
    changes: bool = False  # the deploy would change what the node runs
    restarts: bool = False  # ... by restarting it
    held: str = ""  # out of rotation by someone else: left so (`Preview.held`)


def steps(
    rollout: Rollout,
    merged: dict[str, HostFiles],
    kept: Collection[str] | None = None,
    rotation: Rotation | None = None,
) -> list[Step]:
    """Every node's step, read in parallel; a node that cannot be read says why.
    ``kept``: the nodes the run leaves as they are (`Strategy.kept`: blue/green's live
    colours), asked of the rollout's strategy when not given. ``rotation``: haproxy, to
    say which nodes someone else keeps out of rotation (`Preview.held`)."""
    if kept is None:
        kept = rollout.strategy.kept(rollout.plan.nodes)
    states = _states(rollout, rotation)
    first: dict[str, Target] = {}
    for target in rollout.targets:
        first.setdefault(target.node.host, target)
    sends = {id(t) for t in first.values()}  # a host's instances share its files

    def one(target: Target) -> Step:
        try:
            if target.host in kept:
                return Step(target.host, rollout.strategy.preview.kept, "", (), 0, (), ())
            step = _step(rollout, target, merged, id(target) in sends)
            return _held(rollout, target, step, states.get(target.host))
        except NodeError as error:
            return Step(target.host, "cannot be read", "", (), 0, (), (), str(error))
        finally:
            target.node.close()

    with ThreadPoolExecutor(max_workers=min(32, len(rollout.targets))) as pool:
        return list(pool.map(one, rollout.targets))


def _step(rollout: Rollout, target: Target, merged: dict[str, HostFiles], sends: bool) -> Step:
    target.holdings = target.node.holdings(tidy=False)
    target.status = probe.probe(target.config)
    release = rollout.plan.release_for(target.config)
    names = {release.war: release.war_name, release.config: "config.properties"}
    names |= {release.jettyrc: ".jettyrc", release.logback: "logback.xml"}
    names |= {sha: path for sha, path in extensions.entries(release.extensions)}
    missing = rollout.missing(target) if sends else []
    size = sum(rollout.plan.sources[s].stat().st_size for s in missing if s in rollout.plan.sources)
    strategy = rollout.strategy
    diffs = tuple(
        d
        for d in drift.compare(target.node, merged[target.node.host], strategy.versioned)
        if d.diff
    )
    if rollout.unchanged(target):
        action, changes, restarts = strategy.preview.unchanged or UNCHANGED, False, False
    else:
        action, changes, restarts = strategy.preview.change, True, strategy.restarts
    if target.host in rollout.logging_live:
        action, changes, restarts = LOGGING_ONLY, True, False
    return Step(
        target.host,
        action,
        target.status.describe(),
        tuple(names.get(sha, sha[:12]) for sha in missing),
        size,
        tuple(rollout.drift(target)),
        diffs,
        foreign(rollout.app, rollout.plan, target) or rollout.room(target, target.holdings),
        changes,
        restarts,
    )


def _states(rollout: Rollout, rotation: Rotation | None) -> dict[str, State]:
    """haproxy's state of each node, when the strategy leaves alone what others took out."""
    if rotation is None or not rollout.strategy.preview.held or rollout.plan.force:
        return {}
    try:
        return rotation.states(rollout.plan.nodes)
    except NodeError:
        return {}  # the pre-flight says it; the plan reads on without it


def _held(rollout: Rollout, target: Target, step: Step, state: State | None) -> Step:
    """The step, saying so when someone else keeps the node out of rotation."""
    mark = target.holdings.taken_out if target.holdings is not None else None
    if state is None or not takenout.theirs(state, mark):
        return step
    return dataclasses.replace(step, held=rollout.strategy.preview.held.format(state=state))


def order(rollout: Rollout) -> list[str]:
    """How the run would group its nodes (hosts), in the strategy's words (`Preview.order`)."""
    words = rollout.strategy.preview.order
    if words is None:
        return []
    return [words(rollout.pace, rollout.strategy.unit.of(rollout.plan.nodes))]


def traffic(rollout: Rollout, kept: Collection[str], rotation: Rotation | None) -> list[str]:
    """What the run changes in haproxy, in the strategy's words (`Preview.rotation`), and
    how each host's traffic moves from its kept node to the other (`Preview.switch`)."""
    words = rollout.strategy.preview
    if rotation is None:
        return []
    out = [words.rotation] if words.rotation else []
    by_host: dict[str, list[str]] = {}
    for node in rollout.plan.nodes:
        by_host.setdefault(node.host, []).append(node.label)
    for host, labels in by_host.items():
        old = [label for label in labels if label in kept]
        new = [label for label in labels if label not in kept]
        if words.switch and len(old) == 1 and len(new) == 1:
            out.append(words.switch.format(host=host, old=old[0], new=new[0]))
    return out


def lines(steps: Sequence[Step], order: Sequence[str] = ()) -> list[str]:
    """The plan as text, one paragraph per node, then how the run goes (``order``), then
    the totals."""
    out = []
    for step in steps:
        if step.error:
            out.append(f"{step.node}: cannot be read: {step.error}")
            continue
        sent = (
            f"send {len(step.files)} file(s), {step.bytes} bytes" if step.files else "send nothing"
        )
        listed = f" ({', '.join(step.files)})" if step.files else ""
        now = f"; now {step.running}" if step.running else ""
        out.append(f"{step.node}: {step.action}; {sent}{listed}{now}")
        if step.held:
            out.append(f"  {step.held}")
        if step.edited:
            out.append(f"  edited on the node: {', '.join(step.edited)} (the deploy puts it back)")
        for item in step.diffs:
            out += ["  " + line for line in item.diff.rstrip("\n").splitlines()]
    out += order
    changed = [s for s in steps if not s.error and s.changes]
    restarts = [s for s in changed if s.restarts]
    total = sum(s.bytes for s in steps)
    out.append(
        f"plan: {len(changed)} of {len(steps)} node(s) change, {len(restarts)} restart, "
        f"{total} bytes to send; nothing was changed"
    )
    return out
